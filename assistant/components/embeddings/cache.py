"""A persistent embedding cache keyed by (vector space, text hash).

Re-ingesting a changed document re-embeds only the chunks whose text changed, re-indexing after a metadata
fix costs nothing, and law versions that repeat an article verbatim embed it once.
"""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings
from assistant.sqlite import open_db


class CachedEmbeddings(Embeddings):
    def __init__(self, inner: Embeddings, path: Path, space: str):
        self.inner = inner
        self.space = space
        self._lock = threading.Lock()
        self._db = open_db(path, "embedding_cache")
        self.hits = self.misses = 0

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        keys = [self._key(t) for t in texts]
        found: dict[str, list[float]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = list(set(keys[start:start + 500]))
                marks = ",".join("?" * len(part))
                for h, blob in self._db.execute(
                        f"SELECT hash, vec FROM vectors WHERE space=? AND hash IN ({marks})", (self.space, *part)):
                    found[h] = np.frombuffer(blob, dtype=np.float32).tolist()
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in found))
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            vectors = self.inner.embed_documents(missing)
            rows = [(self.space, self._key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(missing, vectors)]
            with self._lock:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?,?,?)", rows)
            found.update({r[1]: v for r, v in zip(rows, vectors)})
        return [list(found[k]) for k in keys]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)  # queries are one-offs: not worth a disk round trip
