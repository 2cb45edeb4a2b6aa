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
from assistant.prompts import load_prompt

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
