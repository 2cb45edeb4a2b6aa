"""Extractive fallback: when every sentence the model wrote was removed for a figure the passages do not hold, but
one passage sentence states the kind of content the question asks for (期限, 金额, 电话 …) under the question's
own terms, that sentence is quoted instead of refusing. A small model that reads "窗口当场办结；…3个工作日内办结"
and writes "需要1个工作日" had the answer in front of it: the user gets the passage's words, never the model's.

Only typed questions (answer_type.asked_kind) qualify, and the sentence together with its passage's heading must
carry most of the question's idf weight, so an off-topic figure ("预算总额是多少亿元" against a passage about
another sum) is not quoted."""
from __future__ import annotations

from dataclasses import dataclass

from assistant.components.store.tokens import tokenize
from assistant.grounding.answer_type import AnswerKind, states
from ingest.chunking import split_sentences


@dataclass(frozen=True)
class Extract:
    n: int            # the passage's citation number
    sentence: str
    coverage: float   # share of the question's idf weight in the sentence and its passage's heading


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
