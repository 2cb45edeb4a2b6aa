"""Evaluation metrics: answer overlap (CMRC/DuReader-style; from assistant/text_metrics.py, which the product's
summary scoring shares), retrieval ranking, RRF, refusal. Pure functions (percentile matches numpy's default).
"""
from __future__ import annotations

import math
from typing import Iterable

from assistant.text_metrics import (char_f1, exact_match, lcs_length, mean, normalize_answer,  # noqa: F401
                                    rouge_l, rouge_l_lawbench)

# --- retrieval ---------------------------------------------------------------

def dedupe_keep_order(ids: Iterable) -> list:
    seen: set = set()
    return [x for x in ids if not (x in seen or seen.add(x))]


def recall_at_k(ranked_ids, gold_ids, k: int) -> float:
    """Document-level hit rate: 1.0 if any gold id is in the deduped top k."""
    gold = set(gold_ids)
    return float(any(d in gold for d in dedupe_keep_order(ranked_ids)[:max(k, 0)]))


def mrr_at_k(ranked_ids, gold_ids, k: int = 10) -> float:
    gold = set(gold_ids)
    for rank, d in enumerate(dedupe_keep_order(ranked_ids)[:max(k, 0)], 1):
        if d in gold:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked_ids, gold_ids, k: int = 10) -> float:
    """Binary-relevance nDCG on the deduped ranking; ideal DCG uses min(|gold|, k) hits."""
    gold = set(gold_ids)
    n_ideal = min(len(gold), max(k, 0))
    if n_ideal == 0:
        return 0.0
    top = dedupe_keep_order(ranked_ids)[:k]
    dcg = sum(1.0 / math.log2(i + 1) for i, d in enumerate(top, 1) if d in gold)
    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, n_ideal + 1))
    return dcg / idcg


def rrf_fuse(rankings: list[list[str]], k: int = 60,
             weights: list[float] | None = None) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(d) = sum_i w_i / (k + rank_i(d)), ranks from 1.

    Duplicates inside one list count once (first occurrence). Scores are summed with
    math.fsum so equal term multisets give bit-identical scores. Sorted by score desc;
    ties broken by (1) the best (lowest) rank the id achieved in any list, then
    (2) first-appearance order scanning list 0 fully, then list 1, and so on.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("weights must have one entry per ranking")
    terms: dict[str, list[float]] = {}  # insertion order == first appearance
    best: dict[str, int] = {}
    for w, ranking in zip(weights, rankings):
        for rank, d in enumerate(dedupe_keep_order(ranking), 1):
            terms.setdefault(d, []).append(w / (k + rank))
            best[d] = min(best.get(d, rank), rank)
    order = {d: i for i, d in enumerate(terms)}
    scored = [(d, math.fsum(ts)) for d, ts in terms.items()]
    scored.sort(key=lambda x: (-x[1], best[x[0]], order[x[0]]))
    return scored


# --- answer checks -------------------------------------------------------------

def contains_answer(pred: str, answers) -> bool:
    """RGB-style check: every answer item must occur (normalized) in the prediction.

    `answers` is a str or a list whose items are str or list[str] (alternatives: any
    one suffices). Alternatives that normalize to "" never match; no items -> False.
    """
    items = [answers] if isinstance(answers, str) else list(answers)
    if not items:
        return False
    p = normalize_answer(pred)

    def hit(alt: str) -> bool:
        a = normalize_answer(alt)
        return bool(a) and a in p

    return all(hit(it) if isinstance(it, str) else any(hit(a) for a in it) for it in items)


REFUSAL_MARKERS: tuple[str, ...] = (
    "知识库中未找到", "未找到相关", "无法回答", "没有找到", "无法从", "信息不足",
    "不包含", "没有提供", "没有相关", "无法确定", "无法提供", "无法基于", "抱歉",
    "对不起", "暂无相关",
    "insufficient information", "not enough information", "cannot answer", "can't answer",
    "unable to answer", "i don't know", "i do not know", "no relevant information",
    "not found in the",
)
_NORM_MARKERS = tuple(normalize_answer(m) for m in REFUSAL_MARKERS)


def is_refusal(text: str) -> bool:
    """True if the (normalized) text contains a refusal marker or is empty."""
    t = normalize_answer(text)
    return not t or any(m in t for m in _NORM_MARKERS)


# --- aggregation ---------------------------------------------------------------

def percentile(xs, p: float) -> float:
    """p in [0, 100], linear interpolation (numpy's default method)."""
    if not 0 <= p <= 100:
        raise ValueError("p must be in [0, 100]")
    v = sorted(xs)
    if not v:
        return 0.0
    pos = (len(v) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(v[lo] + (v[hi] - v[lo]) * (pos - lo))
