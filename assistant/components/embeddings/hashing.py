"""A deterministic character-bigram hashing embedder for unit tests: lexical, instant, no model."""
from __future__ import annotations

import hashlib

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.settings import EmbeddingSettings

DIM = 256


class HashingEmbeddings(Embeddings):
    def _one(self, text: str) -> list[float]:
        vec = np.zeros(DIM, dtype=np.float32)
        grams = [text[i:i + 2] for i in range(max(len(text) - 1, 1))]
        for g in grams:
            vec[int(hashlib.md5(g.encode()).hexdigest()[:8], 16) % DIM] += 1.0
        norm = np.linalg.norm(vec)
        return (vec / norm if norm else vec).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def build(settings: EmbeddingSettings) -> Embeddings:
    return HashingEmbeddings()
