"""Answerability: does the passage set answer the question, not merely touch its topic? The model's probability
of 是 for a yes/no judgement, read from its first token's logprobs. The judgement is the answer prompt followed by
the start of an assistant reply that asks the question (an assistant prefill), so the answer prompt is a strict
prefix of it: llama.cpp's prompt cache then serves the whole answer prompt and the judgement costs one prefill."""
from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from assistant.components.llm import choice_probability
from assistant.prompts import load_prompt


def judgement_messages(answer_messages: list[BaseMessage]) -> list[BaseMessage]:
    return [*answer_messages, AIMessage(content=load_prompt("answerability"))]


def answerability(llm: BaseChatModel, answer_messages: list[BaseMessage]) -> float:
    return choice_probability(llm, judgement_messages(answer_messages))
