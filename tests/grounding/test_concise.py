"""Answers that start with the answer (grounding/concise.py) and the sentence gate that applies it (answer.concise).
The cases are answers the 1.5B gave to NCP dev questions."""
from __future__ import annotations

from assistant.answering import _SentenceGate
from assistant.grounding.atoms import Evidence
from assistant.grounding.concise import echo_end, is_closing_remark, is_lead_in, strip_echo


def test_the_question_restated_at_the_head_is_cut_at_its_clause_break():
    q = "北京市对于因疫情影响暂停举办的展会项目有何支持政策？"
    a = "北京市对于因疫情影响暂停举办的展会项目，如年内继续在京举办且参展中小微企业数量超过参展企业总数的50%，给予场租补贴[1]。"
    assert strip_echo(a, q) == "如年内继续在京举办且参展中小微企业数量超过参展企业总数的50%，给予场租补贴[1]。"
    # at a frame word (包括 / 是 / 为), with or without a comma after it
    assert strip_echo("河南省制定运输需求计划的内容包括农民工数量、出发时间、乘车方式等[1]。",
                      "河南省制定运输需求计划的内容包括什么？") == "农民工数量、出发时间、乘车方式等[1]。"
    assert strip_echo("广西壮族自治区红十字会接收捐款账户信息是：工商银行桃源支行，账号为2102108009249007743[2]。",
                      "广西壮族自治区红十字会接收捐款账户信息是什么？") == "工商银行桃源支行，账号为2102108009249007743[2]。"
    # a list item's number stays where it was
    assert strip_echo("1. 各地人社部门为缓解疫情影响，实施援企稳岗政策[2]。", "各地人社部门为缓解疫情影响有何举措？") == \
        "1. 实施援企稳岗政策[2]。"


def test_an_echo_that_runs_into_the_answers_words_is_left_whole():
    q = "深圳市在疫情期间有哪些延期政策？"
    a = "深圳市在疫情期间延期办理参保登记，逾期不影响个人权益[1]。"
    assert echo_end(a, q) == len("深圳市在疫情期间延期")
    assert strip_echo(a, q) == a                         # no break after 延期: cutting there would drop it
    assert strip_echo("四川省关于免费健康申报证明有效期至新冠肺炎疫情解除为止[2]。", "四川省关于免费健康申报证明有效期至什么时候？") \
        == "四川省关于免费健康申报证明有效期至新冠肺炎疫情解除为止[2]。"      # 至 is no frame word
    # too little would be left, or too little was restated
    assert strip_echo("重庆市税务网上申报率为99.6%[1]。", "重庆市税务网上申报率为多少？") == "重庆市税务网上申报率为99.6%[1]。"
    assert strip_echo("市民可以，拨打热线电话咨询[1]。", "市民如何咨询？") == "市民可以，拨打热线电话咨询[1]。"


def test_lead_ins_and_closing_remarks():
    assert is_lead_in("救助机构对发热的生活无着的流浪乞讨人员采取了以下措施：[2]\n\n")
    assert is_lead_in("浙江省新型肺炎公共服务与管理平台的访问路径是：\n")
    assert not is_lead_in("开户行：工商银行桃源支行。")
    assert is_closing_remark("这些措施旨在帮助企业渡过难关，同时确保职工个人权益不受影响。")
    assert is_closing_remark("以上信息仅供参考。") and is_closing_remark("总之，要做好防控。")
    # what 以上 / 上述 refers to is a statement, not a remark
    assert not is_closing_remark("以上材料窗口核验原件后当场退还。") and not is_closing_remark("上述人员须居家隔离14天。")
    assert not is_closing_remark("对以上人员实行居家隔离[1]。")


PASSAGE = Evidence.of("救助管理机构应当立即上报当地疫情防控指挥机构并按其规定和要求及时、妥善处置，"
                      "同时上报主管民政部门和当地卫生健康部门，保障流浪乞讨人员的健康。")
STREAM = ["救助机构对发热的流浪乞讨人员采取了以下措施：[1]\n\n", "1. 立即上报当地疫情防控指挥机构并按其规定和要求及时、妥善处置；[1]\n",
          "2. 同时上报主管民政部门和当地卫生健康部门[1]。\n", "这些措施旨在保障流浪乞讨人员的健康[1]。"]


def _gate(concise: bool) -> tuple[str, _SentenceGate]:
    gate = _SentenceGate({1: PASSAGE}, "救助机构对发热的流浪乞讨人员采取了什么措施？", min_support=0.45, concise=concise)
    out = "".join(gate.feed(t) for t in STREAM) + gate.close()
    return out, gate


def test_the_gate_leaves_out_the_lead_in_and_the_closing_remark_and_kept_says_the_same():
    out, gate = _gate(concise=True)
    assert out == ("1. 立即上报当地疫情防控指挥机构并按其规定和要求及时、妥善处置；[1]\n"
                   "2. 同时上报主管民政部门和当地卫生健康部门[1]。\n")
    assert gate.kept == out                                 # the final answer is what was streamed
    assert all(c.supported for c in gate.checks) and len(gate.checks) == 4   # each sentence still checked


def test_without_concise_the_gate_says_every_supported_sentence():
    out, gate = _gate(concise=False)
    assert out.startswith("救助机构对发热的流浪乞讨人员采取了以下措施：") and "这些措施旨在" in out
    assert gate.kept == out


def test_a_lead_in_with_nothing_after_it_is_no_answer_either_way():
    gate = _SentenceGate({1: PASSAGE}, "救助机构采取了什么措施？", min_support=0.45, concise=True)
    out = gate.feed("救助机构采取了以下措施：") + gate.close()
    assert out == "" and gate.hollow


def test_a_sentence_left_out_never_takes_a_citation_with_it():
    """A lead-in or closing remark whose marker nothing else in the answer carries stays (NCP: the lead-in's [2]
    was the only citation of the gold document, the items cited [3])."""
    second = Evidence.of("对承租国有资产类经营用房的企业，1个月房租免收、2个月租金减半。")
    gate = _SentenceGate({1: PASSAGE, 2: second}, "江西对承租国有资产类经营用房的企业实施哪些优惠政策？",
                         min_support=0.45, concise=True)
    stream = ["江西对承租国有资产类经营用房的企业实施以下优惠政策：[1]\n", "1. 1个月房租免收[2]。\n", "2. 2个月租金减半[2]。\n",
              "这些措施旨在保障流浪乞讨人员的健康[1]。"]
    out = "".join(gate.feed(t) for t in stream) + gate.close()
    assert out == "".join(stream[:3]) and gate.kept == out       # the lead-in stays for [1]; so the remark goes
    gate = _SentenceGate({1: PASSAGE, 2: second}, "江西对承租国有资产类经营用房的企业实施哪些优惠政策？",
                         min_support=0.45, concise=True)
    stream[0] = "江西对承租国有资产类经营用房的企业实施以下优惠政策：[2]\n"
    out = "".join(gate.feed(t) for t in stream) + gate.close()
    assert out == "".join(stream[1:]) and gate.kept == out        # [1] is carried by the closing remark


def test_an_unmarked_answer_is_cited_as_it_was_before_the_cut():
    """The model wrote no marker: markers are attached by overlap (attach_citations), where the lead-in's words are
    what tie the answer to the passage it restates; the lead-in left out, its passage is still cited, at the head."""
    from assistant.answering import Citation, finalize_answer
    cites = [Citation(1, "d1", "c1", "《江西省稳定经济增长20条政策措施》", "", "",
                      "疫情期间，江西将对承租国有资产类生产经营用房的企业实施优惠政策。", {}, False),
             Citation(2, "d2", "c2", "《新闻》", "", "", "1个月房租免收、2个月租金减半。", {}, False)]
    said = "疫情期间，江西将对承租国有资产类生产经营用房的企业实施以下优惠政策：\n1. 1个月房租免收。\n2. 2个月租金减半。"
    kept = "1. 1个月房租免收。\n2. 2个月租金减半。"
    text, refused, out = finalize_answer(kept, cites, said)
    assert not refused and text == "1. 1个月房租免收[2][1]。\n2. 2个月租金减半[2]。"
    assert [c.cited for c in out] == [True, True]
    text, _, out = finalize_answer(kept, cites)                # without it: only what the kept text overlaps
    assert text == "1. 1个月房租免收[2]。\n2. 2个月租金减半[2]。" and [c.cited for c in out] == [False, True]
