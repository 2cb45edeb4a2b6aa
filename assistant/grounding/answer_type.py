"""What kind of content a question asks for — an amount, a date, a time limit, a proportion, a count, a phone
number — and whether a text holds one. A passage set (or an answer) on the question's topic that holds no content
of the asked kind does not answer it: "发行规模是多少？" is not answered by "超过40家金融机构参与".

Only question forms whose answer kind is unambiguous are typed; a question that is not typed is never refused here.
Each kind's pattern accepts the ways government text states it (当场办结 is a time limit, 免征 a rate)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.grounding.atoms import CN_NUM, Evidence, atom_spans, normalize

_N = rf"(?:\d+(?:\.\d+)?|[{CN_NUM}]+)"


@dataclass(frozen=True)
class AnswerKind:
    name: str                 # named in a refusal
    asks: re.Pattern          # the question asks for it
    states: re.Pattern        # a text states one


# in order: the first that the question asks for wins ("贴息比例是多少" is a proportion, not an amount)
KINDS = (
    AnswerKind("比例",
               re.compile(r"(?:比例|占比|比率|费率|税率|利率|贴息|百分之几|几成)[^，。？?]{0,4}(?:是|为|有)?(?:多少|几|怎样|如何)"),
               re.compile(rf"{_N}\s*%|百分之|{_N}\s*成|{_N}\s*个百分点|减半|免征|全额|全部|{_N}\s*倍|{_N}\s*分之")),
    AnswerKind("金额",
               re.compile(r"(?:多少|几)(?:钱|元|万元|亿元|块)|(?:金额|资金|补贴|补助|奖励|奖补|费用|额度|价格|租金|保费|贷款|"
                          r"发行规模|融资规模|资金规模|投资规模|预算)[^，。？?]{0,4}(?:是|为|有|达到?)?(?:多少|几)"),
               re.compile(rf"{_N}\s*(?:万亿|千亿|亿|千万|百万|万|千)?\s*(?:元|块)|免费|不收费|免收|全额|减半|{_N}\s*%|百分之")),
    AnswerKind("期限",
               re.compile(r"多久|多长时间|几天|多少天|几个工作日|多少个工作日|几个月|多少个月|(?:时限|期限|有效期|时长|周期)"
                          r"[^，。？?]{0,4}(?:是|为|有)?(?:多少|多久|多长|几)"),
               re.compile(rf"{_N}\s*(?:个)?(?:工作日|自然日|日|天|个月|月|年|小时|周|分钟)|当场|当天|当日|即时|即办|立即|"
                          r"随到随办|长期有效|截至|之前|以前|前(?:完成|办结)")),
    AnswerKind("日期",
               re.compile(r"哪天|哪一天|哪日|何时|什么时候|什么时间|几月几[日号]|哪一?年|哪个月|(?:日期|时间)是(?:什么|多少|哪)"),
               # "until when" is also answered by a condition: 至疫情解除为止, 视情况另行通知, 解除后两个月内
               re.compile(rf"{_N}\s*年|{_N}\s*月|{_N}\s*[日号]|即日起|当天|当日|\d{{4}}[-./]\d{{1,2}}|为止|解除|结束|"
                          r"另行通知|另行公告|之前|以前|之后|视\S{0,20}(?:确定|而定)")),
    AnswerKind("数量",
               # "哪几个部门" asks for a list, not a count
               re.compile(r"(?<!哪)(?:多少|几)(?:家|个|人|名|项|件|户|所|批|条|台|套|次|种|类|座|张|份|吨|万人|亿人)"),
               re.compile(rf"{_N}\s*(?:余|多)?\s*(?:万|亿)?\s*(?:家|个|人|名|项|件|户|所|批|条|台|套|次|种|类|座|张|份|吨)")),
    AnswerKind("电话",
               re.compile(r"(?:电话|热线|咨询号码|服务号码|手机号)(?:号码)?[^，。？?]{0,4}(?:是|为)?(?:多少|什么|哪|几)|"
                          r"拨打(?:什么|哪个|哪)"),
               re.compile(r"\d{3,4}[-－—\s]?\d{5,8}|\b1\d{10}\b|\b\d{5,6}\b|12345|12366|12333")),
)


def asked_kind(question: str) -> AnswerKind | None:
    """The kind of content the question asks for, when its form says so unambiguously."""
    q = normalize(question)
    for kind in KINDS:
        if kind.asks.search(q):
            return kind
    return None


def asked_span(question: str) -> str:
    """The words of the question that ask for its kind ("日期是什么", "多少钱"), "" when it is not typed."""
    q = normalize(question)
    for kind in KINDS:
        if m := kind.asks.search(q):
            return m.group(0)
    return ""


def states(kind: AnswerKind, text: str) -> bool:
    return bool(kind.states.search(normalize(text)))


def answers_kind(kind: AnswerKind, answer: str, question: str) -> bool:
    """The answer states the asked kind in what it adds to the question: "2022年春运首日火车票今天正式开售" does not
    say when, though it repeats the question's 2022年."""
    asked = Evidence.of(question)
    t = list(normalize(answer))
    for atom, (start, end) in atom_spans(answer, names=False):
        if asked.supports(atom):
            t[start:end] = " " * (end - start)
    return bool(kind.states.search("".join(t)))
