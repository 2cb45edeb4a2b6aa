"""Chat model backends (langchain-core `BaseChatModel`), chosen by `llm.mode`."""
from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from assistant.components.registry import build
from assistant.settings import Settings

BACKENDS = {
    "local": "assistant.components.llm.local:build",
    "openai": "assistant.components.llm.openai:build",
    "scripted": "assistant.components.llm.scripted:build",  # unit tests only
}


def build_llm(settings: Settings) -> BaseChatModel:
    return build("llm", BACKENDS, settings.llm.mode, settings)


def describe_llm(settings: Settings) -> str:
    if settings.llm.mode == "local":
        return f"local:{settings.llm.local.model}"
    if settings.llm.mode == "openai":
        return f"openai:{settings.llm.openai.model}"
    return settings.llm.mode


class StructuredOutputError(RuntimeError):
    """The backend returned text that is not JSON for the requested schema (it ignored response_format)."""


def json_schema_format(name: str, schema: dict) -> dict:
    """The OpenAI `response_format` for a JSON schema: llama.cpp turns it into a grammar, vLLM into guided
    decoding, so the reply is valid JSON of this shape by construction."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def invoke_json(llm: BaseChatModel, messages, name: str, schema: dict, max_tokens: int) -> tuple[dict, dict]:
    """Generate under a JSON schema → (the parsed object, usage)."""
    import json

    out = llm.bind(max_tokens=max_tokens, response_format=json_schema_format(name, schema)).invoke(messages)
    text = str(out.content).strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StructuredOutputError(f"the model's output for {name} is not valid JSON ({exc.msg}); "
                                    "the backend must support response_format json_schema") from None
    if not isinstance(data, dict):
        raise StructuredOutputError(f"the model's output for {name} is not a JSON object")
    usage = {k: int(v) for k, v in (getattr(out, "usage_metadata", None) or {}).items() if isinstance(v, int)}
    return data, usage


def choice_probability(llm: BaseChatModel, messages, yes: str = "是", no: str = "否") -> float:
    """P(yes) / (P(yes) + P(no)) of the model's first output token, from its top logprobs (llama.cpp and vLLM both
    return them): a calibrated-able judgement instead of parsing a small model's free text. 0.5 when neither of
    the two tokens is among the top candidates."""
    import math

    out = llm.bind(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=10).invoke(messages)
    content = ((out.response_metadata or {}).get("logprobs") or {}).get("content") or []
    if not content:
        raise RuntimeError("the LLM backend returned no logprobs (needed for the answerability judgement)")
    p = {yes: 0.0, no: 0.0}
    for cand in content[0].get("top_logprobs") or []:
        tok = (cand.get("token") or "").strip()
        for word in (yes, no):
            if tok and word.startswith(tok) or tok == word:
                p[word] += math.exp(cand.get("logprob", -100.0))
    total = p[yes] + p[no]
    return p[yes] / total if total > 0 else 0.5
