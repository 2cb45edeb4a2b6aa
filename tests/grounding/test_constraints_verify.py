"""Question constraints and sentence verification."""
from __future__ import annotations

from assistant.answering import _SentenceGate
from assistant.grounding.atoms import Evidence
from assistant.grounding.constraints import (describe_missing, missing_constraints, passage_evidence,
                                             question_constraints)
from assistant.grounding.verify import AnchorPassage, AnchorQuestion, anchor, main_terms, split_sentences, verify_text

SEED_META = {"title": "上海市数据局2025年工作要点", "agency": "上海市数据局办公室", "date": "2025-03-10"}


def constraint_texts(q: str) -> list[tuple[str, str]]:
    return [(c.kind, c.text) for c in question_constraints(q)]


def test_constraints_named_by_a_question():
    assert constraint_texts("深圳市政务服务数据管理局2024年的工作重点有哪些？") == \
        [("agency", "深圳市政务服务数据管理局"), ("date", "2024年")]
    assert constraint_texts("河南省网上政务服务有哪些措施？") == [("place", "河南省")]
    assert constraint_texts("《数据安全法》第二十一条规定了什么？") == [("document", "《数据安全法》"), ("article", "第二十一条")]
    assert constraint_texts("关于数据出境，文件提出要持续完善什么？") == []
    assert constraint_texts("全国范围内对小微企业有哪些减税政策？") == []          # national scope constrains nothing
    assert constraint_texts("东营市对雇佣大学生的企业有何补贴？") == [("place", "东营市")]   # admin_divisions.txt
    other = [passage_evidence("对吸纳高校毕业生的企业给予一次性吸纳就业补贴。", {"title": "铁岭市稳就业若干措施"})]
    assert describe_missing(missing_constraints(question_constraints("东营市对雇佣大学生的企业有何补贴？"), other)) \
        == "「东营市」"


def test_another_citys_question_is_missing_its_agency_and_year():
    ev = [passage_evidence("持续完善数据出境“负面清单”。", SEED_META)]
    missing = missing_constraints(question_constraints("深圳市政务服务数据管理局2024年的工作重点有哪些？"), ev)
    assert describe_missing(missing) == "「深圳市政务服务数据管理局」「2024年」"
    assert missing_constraints(question_constraints("上海市数据局2025年的工作重点有哪些？"), ev) == []


def test_year_from_the_documents_date_satisfies_the_constraint():
    ev = [passage_evidence("推进公共数据开放。", {"title": "工作要点", "date": "2025-03-10"})]
    assert missing_constraints(question_constraints("2025年有哪些工作？"), ev) == []


def test_unsupported_sentences_are_removed_with_their_atoms():
    evidences = {1: Evidence.of("上海市数据局2025年工作要点 持续完善数据出境“负面清单”。"),
                 2: Evidence.of("全年安排资金5000万元。")}
    kept, checks = verify_text("上海市数据局2025年的部门预算是10亿元[1]。文件提出持续完善数据出境负面清单[1]。"
                               "安排资金5000万元[2]。", evidences)
    assert kept == "文件提出持续完善数据出境负面清单[1]。安排资金5000万元[2]。"
    assert [(c.supported, c.unsupported) for c in checks] == [(False, ["10亿元"]), (True, []), (True, [])]


def test_a_figure_from_another_passage_is_not_supported_by_the_one_cited():
    evidences = {1: Evidence.of("办理时限为3个工作日。"), 2: Evidence.of("收费标准为每件200元。")}
    kept, checks = verify_text("办理时限为200元[1]。", evidences)
    assert kept == "" and checks[0].unsupported == ["200元"]


def test_sentence_gate_streams_only_verified_sentences_with_their_markers():
    gate = _SentenceGate({1: Evidence.of("需要提交身份证和户口簿。办理时限5个工作日。")})
    out = "".join(gate.feed(t) for t in ["需要提交身", "份证。[", "1]办理时限", "为10个工作日。[1", "]另外", "需要户口簿[1]。"])
    out += gate.close()
    assert out == "需要提交身份证。[1]另外需要户口簿[1]。"
    assert [c.supported for c in gate.checks] == [True, False, True]


def test_split_sentences_keeps_markers_with_their_sentence():
    assert split_sentences("甲。[1][2]乙[1]。\n丙") == ["甲。[1][2]", "乙[1]。\n", "丙"]


def test_a_figure_stated_by_another_passage_gets_that_passages_marker():
    evidences = {1: Evidence.of("材料齐全的当场受理。"), 2: Evidence.of("线上申请的，自受理之日起3个工作日内办结。")}
    kept, checks = verify_text("线上申请3个工作日内办结[1]。", evidences)
    assert kept == "线上申请3个工作日内办结[1][2]。"
    assert checks[0].supported and checks[0].added_cites == [2] and checks[0].cites == [1, 2]
    kept, _ = verify_text("线上申请3个工作日内办结。", {1: evidences[1], 2: evidences[2]})
    assert kept == "线上申请3个工作日内办结。"                      # no marker: checked against all passages


def test_a_sentence_whose_wording_is_not_in_its_passage_is_unsupported_with_min_support():
    from assistant.grounding.atoms import Evidence
    from assistant.grounding.verify import check_sentence, content_support
    question = "上海公安机关是如何完成重点区域的巡查工作的？"
    passage = Evidence.of("", "上海公安在重点区域加强巡逻，对人员密集场所开展巡查。")
    invented = "上海公安机关通过在重点区域设置检查站，对进出上海的车辆进行严格检查[1]。"
    assert content_support(invented, passage.text, question) < 0.2
    check = check_sentence(invented, {1: passage}, passage, question, min_support=0.5)
    assert not check.supported and check.kinds == ["content"] and check.support < 0.2
    assert check_sentence(invented, {1: passage}, passage, question).supported    # off: recorded, not acted on
    copied = "上海公安在重点区域加强巡逻，对人员密集场所开展巡查[1]。"
    assert check_sentence(copied, {1: passage}, passage, question, min_support=0.5).support == 1.0
    # too little wording of its own (it repeats the question) to judge: kept whatever its support
    short = check_sentence("上海公安机关完成了重点区域巡查[1]。", {1: passage}, passage, question, 0.5)
    assert short.supported and short.own < 6
    assert check_sentence("上海公安机关是如何完成重点区域的巡查工作的[1]？", {1: passage}, passage, question).support is None


def test_a_short_answer_is_substantive_when_any_of_its_own_words_is_in_a_passage():
    from assistant.grounding.atoms import Evidence
    from assistant.grounding.verify import check_sentence, substantive
    passage = Evidence.of("", "《李茂扮太子》是由马伟豪执导的喜剧片，讲述了一个现代青年穿越的故事。")
    short = check_sentence("《李茂扮太子》是一部喜剧电影。", {1: passage}, passage, "《李茂扮太子》是什么类型的电影", 0.45)
    assert short.supported and short.own < 6 and 0 < short.support < 0.45 and substantive(short, 0.45)
    restated = check_sentence("《李茂扮太子》的类型如下：", {1: passage}, passage, "《李茂扮太子》是什么类型的电影", 0.45)
    assert restated.supported and not substantive(restated, 0.45)
    # answer boilerplate is no wording of its own ("根据【参考资料】中的信息，…")
    ship = Evidence.of("", "中国第三艘航空母舰下水，命名为“中国人民解放军海军福建舰”。")
    named = check_sentence("根据【参考资料】中的信息，中国第三艘航母的名字是“福建舰”。", {1: ship}, ship, "中国第三艘航母名字", 0.45)
    assert named.supported


def test_a_full_date_in_the_question_is_met_by_its_month_and_day_and_may_be_repeated():
    from assistant.grounding.atoms import Evidence
    from assistant.grounding.constraints import missing_constraints, passage_evidence, question_constraints
    from assistant.grounding.verify import check_sentence
    question = "2022年1月5日全国新增确诊病例数？"
    news = "1月5日0—24时，31个省（自治区、直辖市）新增确诊病例189例。"
    assert missing_constraints(question_constraints(question), [passage_evidence(news, {})]) == []
    assert missing_constraints(question_constraints(question), [passage_evidence("1月6日新增189例。", {})])
    ev = Evidence.of("", news)
    assert check_sentence("2022年1月5日全国新增确诊病例189例[1]。", {1: ev}, ev, question).supported
    assert not check_sentence("2022年1月5日全国新增确诊病例200例[1]。", {1: ev}, ev, question).supported


def test_main_terms_drop_parts_years_and_the_country():
    assert main_terms({"人世", "世间", "人世间", "编剧", "2022", "中国", "gdp"}) == {"人世间", "编剧", "gdp"}


def _anchor(question: str, answer: str, *passages: str, head: str = ""):
    from assistant.retrieval import query_terms
    asked = AnchorQuestion.of(question, query_terms(question))
    return anchor(answer, asked, [AnchorPassage(p, head) for p in passages])


def test_anchor_reads_the_question_where_the_answers_content_sits():
    # RGB all-noise: 雪容融 sits in a sentence about the 冬残奥会; 冰墩墩 is the 冬奥会's
    noise = "北京冬残奥会吉祥物“雪容融”以灯笼为原型进行设计创作。雪，象征洁白、美丽。"
    # (北京 is a place the question names: every passage shown was held to it already, as to a year)
    assert _anchor("北京冬奥会吉祥物叫什么", "北京冬奥会吉祥物叫“雪容融”。", noise) == (0.5, ["冬奥会"])
    gold = "北京冬奥会吉祥物“冰墩墩”，以熊猫为原型进行设计创作。"
    assert _anchor("北京冬奥会吉祥物叫什么", "北京冬奥会吉祥物是“冰墩墩”。", noise, gold) == (1.0, [])
    # a figure places the sentence; the sentence before it and the heading count as its place
    assert _anchor("新生儿入户的办理时限是多久？", "3个工作日内办结。", "材料齐全的。3个工作日内办结。",
                   head="新生儿入户办事指南 > 办理时限")[0] == 1.0
    # 9.6% is a figure about wages, not the economy (2021 and 中国 are not terms a place must hold)
    assert _anchor("2021年中国经济增长了多少？", "2021年中国经济增长了9.6%。",
                   "2021年，全国居民人均工资性收入比上年名义增长9.6%。") == (0.5, ["经济"])
    # 11.67亿 counts cinema visits, not box office: none of the question's terms is where it sits
    assert _anchor("2021年中国电影市场总票房是多少？", "2021年中国电影市场总票房为11.67亿。",
                   "2021年，城市观影人次为11.67亿，相比2019年的17.3亿下降了5.6亿。")[0] == 0.0
    # a restatement has nothing of its own to place
    assert _anchor("北京冬奥会吉祥物叫什么", "北京冬奥会吉祥物：", noise) == (None, [])


def test_anchor_finds_an_organ_the_passage_names_another_way():
    # users write 工信部 / 人社局, documents 工业和信息化部 / 人力资源和社会保障局 (and the other way round)
    passage = "工业和信息化部组织重点企业扩大医用防护服产能。"
    assert _anchor("工信部采取了哪些措施保障医用防护服供应？", "组织重点企业扩大医用防护服产能。", passage)[1] == \
        ["供应", "保障", "措施", "采取"]                 # 工信部 is there, written in full
    assert "工信部" in _anchor("工信部采取了哪些措施保障医用防护服供应？", "组织重点企业扩大医用防护服产能。",
                              "国家药监局组织重点企业扩大医用防护服产能。")[1]      # another organ's passage: missing
