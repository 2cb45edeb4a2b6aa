"""sentence-transformers CrossEncoder from a local folder (e.g. bge-reranker-v2-m3). Nothing is downloaded."""
from __future__ import annotations

import os
from pathlib import Path

from assistant.components.registry import ComponentError
from assistant.settings import RerankSettings


class CrossEncoderReranker:
    def __init__(self, model_path: str):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(model_path, local_files_only=True)

    def scores(self, query: str, passages: list[str]) -> list[float] | None:
        if not passages:
            return []
        return [float(s) for s in self.model.predict([(query, p) for p in passages])]


def build(settings: RerankSettings) -> CrossEncoderReranker:
    path = settings.cross_encoder.model_path
    if not path or not Path(path).is_dir():
        raise ComponentError("rerank.mode=cross_encoder needs rerank.cross_encoder.model_path set to a local "
                             f"model folder (got {path!r})")
    return CrossEncoderReranker(path)
