"""Extractive fallback: when every sentence the model wrote was removed for a figure the passages do not hold, but
one passage sentence states the kind of content the question asks for (期限, 金额, 电话 …) under the question's
own terms, that sentence is quoted instead of refusing. A small model that reads "窗口当场办结；…3个工作日内办结"
and writes "需要1个工作日" had the answer in front of it: the user gets the passage's words, never the model's.

Only typed questions (answer_type.asked_kind) qualify, and the sentence together with its passage's heading must
carry most of the question's idf weight, so an off-topic figure ("预算总额是多少亿元" against a passage about
another sum) is not quoted.

Any question (best_quote): when the model's sentences were all removed, or none stood where its passage speaks of
the question (anchoring), the passage clause that with its passage's title and heading holds most of the question's
terms is quoted with what follows it, if that share is high. The model read "提出了纾缓企业用能成本
压力、减免中小企业房租…5项具体举措" under "四是减轻企业负担" and wrote generic advice: the passage said it."""
from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.components.store.tokens import tokenize
from assistant.grounding.answer_type import AnswerKind, states
from assistant.grounding.atoms import extract_atoms
from assistant.grounding.verify import AnchorPassage, AnchorQuestion, own_grams
from ingest.chunking import split_sentences


@dataclass(frozen=True)
class Extract:
    n: int            # the passage's citation number
    sentence: str
    coverage: float   # share of the question's idf weight in the sentence and its passage's heading
    rule: str = "kind"  # kind: a sentence stating the asked kind; anchor: the place best covering the question


def best_extract(kind: AnswerKind, terms: set[str], weights: dict[str, float],
                 passages: list[tuple[int, str, str]], min_coverage: float, max_chars: int = 300) -> Extract | None:
    """passages: (citation number, heading, text). The passage whose sentences stating `kind` best cover `terms`
    (ties: the earlier passage), when they cover at least min_coverage of their weight; its qualifying sentences
    are quoted in order ("当场办结。" and "线上申请的，…3个工作日内办结。" both answer 多久)."""
    total = sum(weights.get(t, 1.0) for t in terms)
    if not terms or total <= 0:
        return None
    best: Extract | None = None
    for n, heading, text in passages:
        head = set(tokenize(heading))
        quoted, top = [], 0.0
        for sentence in split_sentences(text):
            if not states(kind, sentence):
                continue
            have = (set(tokenize(sentence)) | head) & terms
            cov = round(sum(weights.get(t, 1.0) for t in have) / total, 3)
            if cov >= min_coverage and len("".join(quoted)) + len(sentence) <= max_chars:
                quoted.append(sentence.strip())
                top = max(top, cov)
        if quoted and (best is None or top > best.coverage):
            best = Extract(n, "".join(quoted), top)
    return best


def best_quote(question: AnchorQuestion, passages: list[tuple[int, AnchorPassage]], min_share: float,
               kind: AnswerKind | None = None, max_chars: int = 120) -> Extract | None:
    """passages: (citation number, passage). The clause that, with its passage's title and heading, holds the
    largest share of the question's anchor terms, when at least min_share, quoted as written with the clauses after
    it in its passage up to max_chars (a lead-in "二、全力支持企业扩大产能。" is followed by what it introduces).
    Ties go to the place whose title and heading hold more of the terms (a section headed 申请材料 over a clause
    saying 材料齐全的), then to the earlier. A question that names a year is quoted only where the quote or its
    heading states that year ("2021年香港GDP增长了多少" is not answered by "上世纪60年代…GDP年均增长近9%"). A typed
    question (多少次, 何时 …) takes only a clause stating its kind whose place holds every term: "全年新增开放数据集
    200个" is no 访问量. A quote that only restates the question answers nothing."""
    terms = question.terms
    if not terms or not min_share:
        return None
    if kind is not None:
        min_share = 1.0
    asked_years = _years(question.text)
    best: tuple[tuple[float, int], int, str] | None = None
    for n, p in passages:
        in_head = sum(t in p.head for t in terms)
        for i, low in enumerate(p.lower):
            share = 1 - sum(t not in p.head + low for t in terms) / len(terms)
            if share < min_share or (best is not None and (share, in_head) <= best[0]):
                continue
            if kind is not None and not states(kind, p.raw[i]):
                continue
            quoted = _following(p.raw, i, max_chars)
            if asked_years and not (_years(quoted) | _years(p.head)) & asked_years:
                continue
            best = ((share, in_head), n, quoted)
    if best is None:
        return None
    (share, _), n, quoted = best
    if not own_grams(quoted, question.text):
        return None      # a heading that restates the question ("二、全力支持企业扩大产能。") answers nothing
    return Extract(n, quoted, round(share, 3), rule="anchor")


def _following(clauses: tuple[str, ...], i: int, max_chars: int) -> str:
    quoted = clauses[i].strip()
    for clause in clauses[i + 1:]:
        if len(quoted) + len(clause.strip()) > max_chars:
            break
        quoted += clause.strip()
    return quoted


def _years(text: str) -> set[str]:
    """The years the text's dates state (date:2025-3-10 → 2025; a month and day alone state none)."""
    return {m.group(1) for a in extract_atoms(text) if a.kind == "date" and (m := _YEAR_KEY.match(a.key))}


_YEAR_KEY = re.compile(r"date:(\d{4})")
