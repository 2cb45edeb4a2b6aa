"""Answerability: does the passage set answer the question, not merely touch its topic? Two signals from token
logprobs (llama.cpp and vLLM both return them):

- `first_token` (no extra call): the answer prompt already tells the model to reply 知识库中未找到相关依据 when
  the passages lack what is asked; the probability mass the model puts on starting that refusal, read from the top
  logprobs of the answer's own first token, is its confidence that it cannot answer, even when the greedy token
  starts an answer. P(answerable) = 1 - that mass.
- `logprob` (one short extra call): P(是) for a yes/no judgement asked as an assistant prefill after the answer
  prompt, so the answer prompt is a strict prefix of it and llama.cpp's prompt cache serves it."""
from __future__ import annotations

import math

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from assistant.components.llm import choice_probability
from assistant.components.store.tokens import tokenize
from assistant.prompts import load_prompt
from assistant.settings import SCORER_SIGNALS, TEXT_SIGNALS
from ingest.chunking import split_sentences

# how a refusal begins: the prompt's own wording first, then the ways small models paraphrase it
REFUSAL_OPENINGS = ("知识库中未找到相关依据", "参考资料中没有", "资料中没有", "资料中未", "无法根据参考资料", "抱歉",
                    "很抱歉", "对不起", "未找到", "没有找到")


def judgement_messages(answer_messages: list[BaseMessage]) -> list[BaseMessage]:
    return [*answer_messages, AIMessage(content=load_prompt("answerability"))]


def answerability(llm: BaseChatModel, answer_messages: list[BaseMessage]) -> float:
    return choice_probability(llm, judgement_messages(answer_messages))


def starts_refusal(token: str) -> bool:
    t = token.strip()
    return bool(t) and any(opening.startswith(t) for opening in REFUSAL_OPENINGS)


def refusal_mass(top_logprobs: list[dict]) -> float:
    """The probability of the candidates for one token position that begin a refusal."""
    return min(1.0, sum(math.exp(c.get("logprob", -100.0)) for c in top_logprobs or []
                        if starts_refusal(c.get("token") or "")))


def first_token_logprobs(chunk_metadata: dict) -> list[dict] | None:
    """The top candidates of the first token in a streamed chunk's response_metadata, when the backend sent them."""
    content = ((chunk_metadata or {}).get("logprobs") or {}).get("content") or []
    return content[0].get("top_logprobs") if content else None


# --- scorer: the retrieval's own evidence, no model call ------------------------------------------------------
# A passage that answers a question holds most of its terms in one or two adjacent sentences under a title about
# it; a passage that is merely on the topic spreads them (or lacks the rarest one). These signals are read from
# the passages the prompt would show, after the question constraints, and combined by a logistic model fitted on
# NCP dev questions with and without their gold documents (`gov-assistant eval fit-answerability`).
SIGNALS = SCORER_SIGNALS


def _share(tokens: set[str], terms: set[str], weights: dict[str, float]) -> float:
    total = sum(weights.get(t, 1.0) for t in terms)
    return sum(weights.get(t, 1.0) for t in terms & tokens) / total if total > 0 else 0.0


def retrieval_signals(terms: set[str], weights: dict[str, float], passages: list) -> dict[str, float]:
    """passages: retrieval hits (text, metadata heading/title, coverage, dense_score, bm25_score). coverage: the
    best passage's share of the question's idf weight (heading + text); sentence: the best run of two adjacent
    sentences with their heading; title: the best title; dense: the best cosine; bm25: the best BM25 score over the
    question's whole idf weight; missing: the weight share of the heaviest term the best-covering passage lacks."""
    if not passages or not terms:
        return dict.fromkeys(SIGNALS, 0.0)
    total = sum(weights.get(t, 1.0) for t in terms)
    return {**_text_signals(terms, weights, passages, [p.coverage for p in passages]),
            "dense": max((p.dense_score or 0.0) for p in passages),
            "bm25": max((p.bm25_score or 0.0) for p in passages) / total if total > 0 else 0.0}


def text_signals(terms: set[str], passages: list) -> dict[str, float]:
    """The signals passages handed in still have (no retrieval scores, no index to weigh terms by: each term counts
    the same, as PassageScorerSettings was fitted): coverage read from each passage's heading and text."""
    if not passages or not terms:
        return dict.fromkeys(TEXT_SIGNALS, 0.0)
    covs = [_share(set(tokenize(p.metadata.get("heading", "") + p.text)), terms, {}) for p in passages]
    return _text_signals(terms, {}, passages, covs)


def _text_signals(terms: set[str], weights: dict[str, float], passages: list, covs: list[float]) -> dict:
    sentence = title = 0.0
    for p in passages:
        head = set(tokenize(p.metadata.get("heading", "")))
        runs = [set(tokenize(s)) for s in split_sentences(p.text)] or [set()]
        for a, b in zip(runs, runs[1:] + [set()]):
            sentence = max(sentence, _share(a | b | head, terms, weights))
        title = max(title, _share(set(tokenize(p.metadata.get("title", ""))), terms, weights))
    top = passages[max(range(len(passages)), key=covs.__getitem__)]
    have = set(tokenize(top.metadata.get("heading", "") + top.text))
    total = sum(weights.get(t, 1.0) for t in terms)
    return {"coverage": max(covs), "sentence": sentence, "title": title,
            "missing": max((weights.get(t, 1.0) for t in terms - have), default=0.0) / total if total > 0 else 0.0}


def scorer_probability(signals: dict[str, float], weights: dict[str, float], bias: float) -> float:
    z = bias + sum(w * signals.get(name, 0.0) for name, w in weights.items())
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
