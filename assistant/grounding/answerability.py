"""Answerability: does the passage set answer the question, not merely touch its topic? The model's probability
of 是 for a yes/no judgement, read from its first token's logprobs. The judgement prompt is the answer prompt plus
one instruction, so llama.cpp's prompt cache reuses the shared prefix and the answer costs almost no extra prefill."""
from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage

from assistant.components.llm import choice_probability
from assistant.prompts import load_prompt


def judgement_messages(answer_messages: list[BaseMessage]) -> list[BaseMessage]:
    last = answer_messages[-1]
    return [*answer_messages[:-1], HumanMessage(content=f"{last.content}\n\n{load_prompt('answerability')}")]


def answerability(llm: BaseChatModel, answer_messages: list[BaseMessage]) -> float:
    return choice_probability(llm, judgement_messages(answer_messages))
