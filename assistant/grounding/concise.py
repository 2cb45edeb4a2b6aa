"""Answers that start with the answer (issue #13). The small model opens by restating the question before it says
anything ("北京市对于因疫情影响暂停举办的展会项目，如年内继续在京举办…", "救助机构对…流浪乞讨人员采取了以下措施：")
and closes with a remark of its own ("这些措施旨在帮助企业渡过难关。"), so the answer a reader wants is a third of
what they read. With `answer.concise` the sentence gate leaves out a lead-in that only frames what follows, the
restated question at the head of the first sentence, and a closing remark after the answer. Nothing is rewritten:
each cut is at a clause boundary, and a sentence that would be left without words of its own stays whole."""
from __future__ import annotations

import re

from assistant.text_heuristics import bigrams

_MARKERS = re.compile(r"\s*\[\d{1,2}\]")
_LIST_HEAD = re.compile(r"^\s*(?:[-*•]\s*|\d{1,2}[.、．)）]\s*|[（(]?[一二三四五六七八九十]{1,3}[、.．)）]\s*)")
# a lead-in frames a list or an answer to come: it ends with a colon (markers and spaces after it aside)
_LEAD_IN_END = re.compile(r"[：:]\s*(?:\[\d{1,2}\]\s*)*$")
# the words that close a restated question and open its answer: "…的访问路径是：", "…的标准为", "…包括"
_FRAME_END = ("是", "为", "包括", "有", "如下", "以下")
_CLAUSE_BREAK = "，,：:；;"
# a closing remark sums up or comments on what was said ("总之…", "这些措施旨在…", "以上信息仅供参考"), not a
# statement about what 以上 / 上述 refers to ("以上材料窗口核验原件后当场退还", "上述人员须居家隔离14天")
_CLOSING = re.compile(r"^\s*(?:总之|综上|总的来说|(?:通过)?(?:这些|以上|上述)(?:措施|政策|规定|做法|要求|方法|信息|内容|建议|举措)?"
                      r"[^。！？\n]{0,12}?(?:旨在|有助于|可以有效|能够有效|将有效|有效地|是为了|体现了|仅供参考|以便))")
MIN_ECHO = 6          # characters of the question restated before the cut is worth making
MIN_REST = 6          # characters the sentence keeps after the cut, or it stays whole


def is_lead_in(sentence: str) -> bool:
    """"X采取了以下措施：": a sentence that frames what follows and states nothing itself."""
    return bool(_LEAD_IN_END.search(sentence)) and len(_MARKERS.sub("", sentence).strip()) <= 60


def is_closing_remark(sentence: str) -> bool:
    return bool(_CLOSING.match(_LIST_HEAD.sub("", sentence)))


def echo_end(sentence: str, question: str) -> int:
    """How far the sentence opens with the question's own words (its character bigrams, a character inserted here
    and there: 的, 了), 0 when it does not."""
    grams = bigrams(question)
    end, i = 0, 0
    while i < len(sentence) - 1:
        if sentence[i:i + 2] in grams:
            end = i + 2
        elif i > end:            # one character between two echoed bigrams is allowed, no more
            break
        i += 1
    return end


def strip_echo(sentence: str, question: str) -> str:
    """The sentence without the question it restates at its head, cut where that restatement ends in a clause
    break ("…展会项目，如年内…" → "如年内…") or a frame word ("…的访问路径是：1. …"); unchanged when the rest would
    have fewer than MIN_REST characters, or when the echo runs into the answer's own words (no break there: "深圳市
    在疫情期间延期办理…" keeps 延期)."""
    head = _LIST_HEAD.match(sentence)
    start = head.end() if head else 0
    body = sentence[start:]
    end = echo_end(body, question)
    if end < MIN_ECHO:
        return sentence
    cut = None
    if end < len(body) and body[end] in _CLAUSE_BREAK:
        cut = end + 1
    elif body[:end].endswith(_FRAME_END):
        cut = end + (1 if end < len(body) and body[end] in _CLAUSE_BREAK else 0)
    if cut is None:
        return sentence
    rest = body[cut:].lstrip()
    if len(_MARKERS.sub("", rest).strip(" 。！？!?\n")) < MIN_REST:
        return sentence
    return sentence[:start] + rest
