"""Optional rerankers, chosen by `rerank.mode`. A reranker reorders (query, passage) pairs; `none` keeps the order."""
from __future__ import annotations

from typing import Protocol

from assistant.components.registry import build
from assistant.settings import RerankSettings

BACKENDS = {
    "none": "assistant.components.rerank:build_none",
    "cross_encoder": "assistant.components.rerank.cross_encoder:build",
}


class Reranker(Protocol):
    def scores(self, query: str, passages: list[str]) -> list[float] | None: ...


class NoReranker:
    def scores(self, query: str, passages: list[str]) -> list[float] | None:
        return None


def build_none(settings: RerankSettings) -> Reranker:
    return NoReranker()


def build_reranker(settings: RerankSettings) -> Reranker:
    return build("rerank", BACKENDS, settings.mode, settings)
