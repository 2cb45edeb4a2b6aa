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
