"""The knowledge store: SQLite catalog (source of truth, with its FTS5 lexical index: lexical.py) + Chroma vectors,
under one data directory, the per-knowledge-base write lock every writer takes (locks.py) and the documents'
originals (ingested files, extracted texts: originals.py).

With a PostgreSQL catalog (database.url, the scale-out profile) the write and embed locks are the database's
advisory locks and the originals are its rows, so replicas share them without sharing a data_dir; the embedded
default keeps flocks and files under data_dir."""
from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from assistant.components.store.catalog import Catalog, origin_blobs
from assistant.components.store.lexical import LexicalIndex
from assistant.components.store.locks import PgWriteLocks, WriteLocks
from assistant.components.store.originals import Originals, PgOriginals
from assistant.components.store.vectors import VectorStore
from assistant.filters import LATEST_TEXT
from assistant.settings import Settings


class KnowledgeStore:
    def __init__(self, settings: Settings, catalog_target: Path | str | None = None):
        """catalog_target: the SQLite file (default <data_dir>/catalog.sqlite3) or a postgresql:// URL."""
        self.settings = settings
        root = Path(settings.data_dir)
        self.catalog = Catalog(catalog_target or root / "catalog.sqlite3", settings.classification.default_level)
        self.vectors = VectorStore(settings.vectorstore, root / "chroma")
        self.bm25 = LexicalIndex(self.catalog, settings.retrieval.lexical_max_postings)
        self.locks: WriteLocks | PgWriteLocks
        self.embed_locks: WriteLocks | PgWriteLocks
        self.originals: Originals
        if self.catalog.postgres:
            url = str(catalog_target)
            self.locks = PgWriteLocks(url, "write")
            self.embed_locks = PgWriteLocks(url, "embed")
            cache_mb = settings.database.originals_cache_mb
            self.originals = PgOriginals(root / "originals", url, self.catalog.origin_in_use,
                                         None if cache_mb is None else cache_mb << 20)
        else:
            self.locks = WriteLocks(root / "locks")
            self.embed_locks = WriteLocks(root / "locks", suffix=".embed.lock")
            self.originals = Originals(root / "originals", WriteLocks(root / "locks", suffix=".lock"))
        _remove_old_index(root / "bm25")
        for kb, flags in self.catalog.refresh_latest_texts().items():
            self.flag_vectors(kb, flags)

    def flag_vectors(self, kb: str, flags: dict[str, bool]) -> None:
        """The catalog's `latest_text` changes (commit, delete) copied to the vectors: dense retrieval filters
        on their copy of the metadata (retrieval re-checks the catalog's: a copy left behind never leaks)."""
        if flags:
            self.vectors.set_flags(kb, LATEST_TEXT, flags)

    def writer(self, kb: str) -> AbstractContextManager[None]:
        """Hold the knowledge base's write lock (threads and processes) for one change."""
        return self.locks.hold(kb)

    def delete_kb(self, kb: str) -> None:
        with self.writer(kb):
            blobs = [b for o in self.catalog.origins(kb) for b in origin_blobs(o)]
            self.vectors.drop(kb)
            self.catalog.delete_kb(kb)
        self.release_originals(blobs)

    def delete_document(self, kb: str, doc_id: str) -> None:
        """Invisible to every search from the catalog's commit on; then its vectors and originals no one else
        uses go."""
        with self.writer(kb):
            blobs = [b for o in self.catalog.origins(kb, doc_id) for b in origin_blobs(o)]
            flags = self.catalog.delete_document(kb, doc_id)
            self.vectors.delete_document(kb, doc_id)
            self.flag_vectors(kb, flags or {})
        self.release_originals(blobs)

    def release_originals(self, blobs: list[str]) -> None:
        if blobs:
            self.originals.release(blobs, self.catalog.origin_in_use)


def _remove_old_index(folder: Path) -> None:
    """The JSON (or older pickle) postings saved before the FTS5 index: never read, the catalog holds it all."""
    if folder.is_dir() and not folder.is_symlink():
        for pattern in ("*.json", "*.pkl", "*.tmp"):
            for f in folder.glob(pattern):
                f.unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass     # something else lives there: not ours to remove
