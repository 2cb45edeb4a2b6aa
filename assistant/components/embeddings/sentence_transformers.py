"""sentence-transformers from a local model folder (bge-m3, bge-large-zh ...). Nothing is downloaded."""
from __future__ import annotations

import os
from pathlib import Path

from langchain_core.embeddings import Embeddings

from assistant.components.registry import ComponentError
from assistant.settings import EmbeddingSettings


class SentenceTransformerEmbeddings(Embeddings):
    def __init__(self, model_path: str, device: str, batch_size: int, query_instruction: str = ""):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(model_path, device=device, local_files_only=True)
        self.batch_size = batch_size
        self.query_instruction = query_instruction

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.model.encode([self.query_instruction + text], normalize_embeddings=True)[0].tolist()


def build(settings: EmbeddingSettings) -> Embeddings:
    st = settings.sentence_transformers
    if not st.model_path or not Path(st.model_path).is_dir():
        raise ComponentError("embedding.mode=sentence_transformers needs embedding.sentence_transformers.model_path "
                             f"set to a local model folder (got {st.model_path!r}); models are never downloaded")
    return SentenceTransformerEmbeddings(st.model_path, st.device, settings.batch_size, st.query_instruction)
