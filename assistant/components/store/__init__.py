"""The knowledge store: SQLite catalog (source of truth) + Chroma vectors + BM25, under one data directory, and
the per-knowledge-base write lock every writer takes (locks.py)."""
from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from assistant.components.store.bm25 import BM25Store
from assistant.components.store.catalog import Catalog
from assistant.components.store.locks import WriteLocks
from assistant.components.store.vectors import VectorStore
from assistant.settings import Settings


class KnowledgeStore:
    def __init__(self, settings: Settings):
        self.settings = settings
        root = Path(settings.data_dir)
        self.catalog = Catalog(root / "catalog.sqlite3")
        self.vectors = VectorStore(settings.vectorstore, root / "chroma")
        self.bm25 = BM25Store(root / "bm25", self.catalog)
        self.locks = WriteLocks(root / "locks")

    def writer(self, kb: str) -> AbstractContextManager[None]:
        """Hold the knowledge base's write lock (threads and processes) for one change."""
        return self.locks.hold(kb)

    def delete_kb(self, kb: str) -> None:
        with self.writer(kb):
            self.vectors.drop(kb)
            self.bm25.drop(kb)
            self.catalog.delete_kb(kb)
