"""Any OpenAI-compatible endpoint: `vllm serve` in production, llama.cpp's server, or this app's own /v1."""
from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from assistant.components.registry import ComponentError
from assistant.settings import Settings


def build(settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    oa = settings.llm.openai
    if not oa.base_url:
        raise ComponentError("llm.mode=openai needs llm.openai.base_url (e.g. http://gpu-host:8001/v1)")
    return ChatOpenAI(
        base_url=oa.base_url, model=oa.model, api_key=oa.api_key or "EMPTY", timeout=oa.timeout_s,
        temperature=settings.llm.temperature, max_tokens=settings.llm.max_tokens, seed=settings.llm.seed,
        max_retries=1, stream_usage=True,
        # langchain-openai sends max_completion_tokens; llama.cpp-based servers only honour max_tokens
        extra_body={"max_tokens": settings.llm.max_tokens},
    )
