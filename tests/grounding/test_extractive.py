"""best_quote on hand-checked passages: the place that holds the question's terms, what follows it, and the
cases it must leave alone (another year, a typed question's missing term, a heading that restates the question)."""
from __future__ import annotations

from assistant.grounding.answer_type import asked_kind
from assistant.grounding.extractive import best_quote
from assistant.grounding.verify import AnchorPassage, AnchorQuestion
from assistant.retrieval import query_terms


def quote(question: str, *passages: tuple[str, str], min_share: float = 0.8):
    aq = AnchorQuestion.of(question, query_terms(question))
    return best_quote(aq, [(n, AnchorPassage(text, head)) for n, (text, head) in enumerate(passages, 1)], min_share,
                      asked_kind(question))


def test_the_clause_under_the_question_is_quoted_with_what_follows_it():
    x = quote("本溪市如何减轻企业负担？",
              ("三是稳定就业。四是减轻企业负担。提出了纾缓企业用能成本压力、减免中小企业房租5项具体举措。", "本溪市支持中小企业"))
    assert x.n == 1 and x.rule == "anchor" and x.coverage == 1.0
    assert x.sentence == "四是减轻企业负担。提出了纾缓企业用能成本压力、减免中小企业房租5项具体举措。"


def test_ties_go_to_the_section_whose_heading_names_the_terms():
    x = quote("新生儿入户需要哪些材料？",
              ("材料齐全的，3个工作日内办结。", "新生儿入户办事指南 二、办理时限"),
              ("出生医学证明原件；父母双方户口簿。", "新生儿入户办事指南 一、申请材料"))
    assert x.n == 2 and x.sentence.startswith("出生医学证明原件")


def test_the_quote_stops_at_max_chars_between_clauses():
    x = best_quote(AnchorQuestion.of("减轻企业负担有哪些举措？", query_terms("减轻企业负担有哪些举措？")),
                   [(1, AnchorPassage("减轻企业负担的举措如下；一是减免房租；" + "二是延期交纳税款；" * 20))], 0.8,
                   max_chars=40)
    assert x.sentence.startswith("减轻企业负担的举措如下；一是减免房租；") and len(x.sentence) <= 40


def test_nothing_is_quoted_below_the_share_for_another_year_or_as_a_restatement():
    # lacks 访问量 (typed: every term and a count stated are needed)
    assert quote("公共数据开放平台全年的访问量是多少次？", ("全年新增开放数据集200个。", "公共数据开放平台")) is None
    assert quote("公共数据开放平台全年的访问量是多少次？", ("全年访问量达300万次。", "公共数据开放平台")) is not None
    # the question's year is 2024; the only clause about 开放数据集 states 2025
    assert quote("2024年新增开放数据集的情况", ("2025年全年新增开放数据集200个。", "")) is None
    assert quote("2025年新增开放数据集的情况", ("2025年全年新增开放数据集200个。", "")).sentence.startswith("2025年")
    # the heading says only what the question asked
    assert quote("阜阳市如何全力支持疫情防控企业扩大产能？", ("二、全力支持疫情防控企业扩大产能。", "阜阳市")) is None
    assert quote("阜阳市如何全力支持疫情防控企业扩大产能？",
                 ("二、全力支持疫情防控企业扩大产能。对新增产能给予补助。", "阜阳市")).sentence.endswith("给予补助。")
    # half the terms: below 0.8
    assert quote("北京市对展会项目有何场租补贴？", ("给予出租车企业运营补贴。", "北京市")) is None
