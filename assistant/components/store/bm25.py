"""BM25 (Okapi, as rank-bm25) over jieba tokens, per knowledge base, updated incrementally.

Token lists live in the catalog; the inverted index is rebuilt from them when the catalog version moved on
in another process, and saved next to the store as JSON (data, never code: a writable data directory must not be
a way to run code, as a pickle would be) so a restart does not re-read every chunk.
"""
from __future__ import annotations

import logging
import math
import json
import re
import threading
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from assistant.components.store.catalog import Catalog

_NOISE = re.compile(r"^[\W_]+$", re.UNICODE)
_jieba = None


def tokenize(text: str) -> list[str]:
    """jieba search-mode tokens, lowercased, punctuation and whitespace dropped."""
    global _jieba
    if _jieba is None:
        import jieba
        jieba.setLogLevel(logging.WARNING)
        _jieba = jieba
    return [t.lower() for t in _jieba.cut_for_search(text) if t.strip() and not _NOISE.match(t)]


class BM25Index:
    k1, b, epsilon = 1.5, 0.75, 0.25

    def __init__(self) -> None:
        self.ids: list[str | None] = []
        self.row_of: dict[str, int] = {}
        self.lengths: list[int] = []
        self.meta: list[dict | None] = []
        self.postings: dict[str, dict[int, int]] = {}
        self.total_len = 0
        self.version = -1

    def __len__(self) -> int:
        return len(self.row_of)

    def to_state(self) -> dict:
        return {"ids": self.ids, "lengths": self.lengths, "meta": self.meta, "total_len": self.total_len,
                "version": self.version,
                "postings": {tok: [[row, tf] for row, tf in p.items()] for tok, p in self.postings.items()}}

    @classmethod
    def from_state(cls, state: dict) -> "BM25Index":
        """The index a to_state() snapshot describes; ValueError when it is not one."""
        idx = cls()
        try:
            idx.ids, idx.lengths, idx.meta = list(state["ids"]), [int(n) for n in state["lengths"]], list(state["meta"])
            idx.total_len, idx.version = int(state["total_len"]), int(state["version"])
            idx.postings = {str(tok): {int(r): int(tf) for r, tf in rows} for tok, rows in state["postings"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a BM25 index snapshot: {exc}") from None
        if not (len(idx.ids) == len(idx.lengths) == len(idx.meta)):
            raise ValueError("not a BM25 index snapshot: columns of different lengths")
        idx.row_of = {cid: row for row, cid in enumerate(idx.ids) if cid is not None}
        return idx

    def add(self, chunk_id: str, tokens: list[str], meta: dict) -> None:
        self.remove(chunk_id)
        row = len(self.ids)
        self.ids.append(chunk_id)
        self.row_of[chunk_id] = row
        self.lengths.append(len(tokens))
        self.meta.append(meta)
        self.total_len += len(tokens)
        counts: dict[str, int] = {}
        for tok in tokens:
            counts[tok] = counts.get(tok, 0) + 1
        for tok, tf in counts.items():
            self.postings.setdefault(tok, {})[row] = tf

    def remove(self, chunk_id: str) -> None:
        row = self.row_of.pop(chunk_id, None)
        if row is None:
            return
        for tok in set(self._row_tokens(row)):
            posting = self.postings.get(tok)
            if posting is not None:
                posting.pop(row, None)
                if not posting:
                    del self.postings[tok]
        self.total_len -= self.lengths[row]
        self.ids[row], self.meta[row], self.lengths[row] = None, None, 0

    def _row_tokens(self, row: int) -> Iterable[str]:
        return self.meta[row]["_tokens"] if self.meta[row] and "_tokens" in self.meta[row] else \
            [t for t, p in self.postings.items() if row in p]

    def _idf(self, df: int, n: int, avg_idf: float) -> float:
        idf = math.log(n - df + 0.5) - math.log(df + 0.5)
        return idf if idf > 0 else self.epsilon * avg_idf

    def term_weights(self, tokens: Iterable[str]) -> dict[str, float]:
        """Each token's rarity in this index: the always-positive BM25 idf log(1 + (N - df + 0.5) / (df + 0.5));
        a token the index has never seen gets the largest weight."""
        n = len(self.row_of)
        dfs = {t: len(self.postings.get(t, ())) for t in tokens}
        return {t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t, df in dfs.items()}

    def search(self, query_tokens: list[str], n: int,
               keep: Callable[[dict], bool] | None = None) -> list[tuple[str, float]]:
        size = len(self.row_of)
        if size == 0 or not query_tokens:
            return []
        avgdl = self.total_len / size
        # rank-bm25 floors negative idf at epsilon * the mean idf over the vocabulary
        dfs = np.fromiter((len(p) for p in self.postings.values()), dtype=np.float64)
        avg_idf = float(np.mean(np.log(size - dfs + 0.5) - np.log(dfs + 0.5))) if len(dfs) else 0.0
        lengths = np.asarray(self.lengths, dtype=np.float64)
        scores = np.zeros(len(self.ids))
        for tok in query_tokens:
            posting = self.postings.get(tok)
            if not posting:
                continue
            rows = np.fromiter(posting.keys(), dtype=np.int64, count=len(posting))
            tf = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            idf = self._idf(len(posting), size, avg_idf)
            scores[rows] += idf * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * lengths[rows] / avgdl))
        order = np.argsort(-scores, kind="stable")
        hits = []
        for row in order:
            if scores[row] <= 0:
                break
            meta = self.meta[row]
            if meta is None or (keep is not None and not keep(meta)):
                continue
            hits.append((self.ids[row], float(scores[row])))
            if len(hits) >= n:
                break
        return hits


class BM25Store:
    """Per knowledge base, two BM25 indexes kept in step with the catalog version: one over chunks, and one
    over whole documents (all their chunks' tokens) whose ranking lifts chunks of documents that match as a
    whole, as classic document-level BM25 does."""

    def __init__(self, directory: Path, catalog: Catalog):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.catalog = catalog
        self._indexes: dict[str, tuple[BM25Index, BM25Index]] = {}
        self._lock = threading.RLock()

    def _path(self, kb: str) -> Path:
        return self.dir / f"{kb}.json"

    def _pair(self, kb: str) -> tuple[BM25Index, BM25Index]:
        with self._lock:
            version = self.catalog.kb_version(kb)
            pair = self._indexes.get(kb)
            if pair is not None and pair[0].version == version:
                return pair
            pair = self._load(kb, version) or self._rebuild(kb, version)
            self._indexes[kb] = pair
            return pair

    def index(self, kb: str) -> BM25Index:
        """The chunk index."""
        return self._pair(kb)[0]

    def doc_index(self, kb: str) -> BM25Index:
        """The document index (ids are doc_ids)."""
        return self._pair(kb)[1]

    def _load(self, kb: str, version: int) -> tuple[BM25Index, BM25Index] | None:
        (self.dir / f"{kb}.pkl").unlink(missing_ok=True)    # an index saved by an older release: never loaded
        try:
            with open(self._path(kb), encoding="utf-8") as f:
                state = json.load(f)
            pair = (BM25Index.from_state(state["chunks"]), BM25Index.from_state(state["documents"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return pair if pair[0].version == version else None

    def _rebuild(self, kb: str, version: int) -> tuple[BM25Index, BM25Index]:
        idx, docs = BM25Index(), BM25Index()
        doc_tokens: dict[str, list[str]] = {}
        for row in self.catalog.iter_chunks(kb):
            tokens = row["tokens"].split()
            meta = json.loads(row["metadata"])
            meta["_tokens"] = sorted(set(tokens))
            idx.add(row["chunk_id"], tokens, meta)
            doc_tokens.setdefault(row["doc_id"], []).extend(tokens)
        for doc_id, tokens in doc_tokens.items():
            docs.add(doc_id, tokens, {"_tokens": sorted(set(tokens))})
        idx.version = docs.version = version
        self._save(kb, (idx, docs))
        return idx, docs

    def _save(self, kb: str, pair: tuple[BM25Index, BM25Index]) -> None:
        tmp = self._path(kb).with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"chunks": pair[0].to_state(), "documents": pair[1].to_state()}, f, ensure_ascii=False,
                      separators=(",", ":"))
        tmp.replace(self._path(kb))

    def apply(self, kb: str, removed: list[str], added: Iterable[tuple[str, list[str], dict]],
              new_version: int) -> None:
        """Apply one committed document change (all its chunks) to loaded indexes; else the next search rebuilds."""
        with self._lock:
            pair = self._indexes.get(kb)
            if pair is None or pair[0].version != new_version - 1:
                self._indexes.pop(kb, None)
                return
            idx, docs = pair
            for chunk_id in removed:
                idx.remove(chunk_id)
            doc_tokens: dict[str, list[str]] = {}
            for chunk_id, tokens, meta in added:
                idx.add(chunk_id, tokens, {**meta, "_tokens": sorted(set(tokens))})
                doc_tokens.setdefault(meta["doc_id"], []).extend(tokens)
            for doc_id, tokens in doc_tokens.items():
                docs.add(doc_id, tokens, {"_tokens": sorted(set(tokens))})
            idx.version = docs.version = new_version

    def flush(self, kb: str) -> None:
        with self._lock:
            pair = self._indexes.get(kb)
            if pair is not None and pair[0].version == self.catalog.kb_version(kb):
                self._save(kb, pair)

    def drop(self, kb: str) -> None:
        with self._lock:
            self._indexes.pop(kb, None)
            self._path(kb).unlink(missing_ok=True)
