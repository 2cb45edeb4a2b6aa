"""SQLite catalog: knowledge bases, documents (content hash, state), chunks (text, BM25 tokens, metadata).

The catalog is the source of truth. A document's chunks become visible only when its row is committed with
state 'complete' in the same transaction as its chunk rows; vectors written before a crash are orphans that
retrieval ignores and the next ingest of that document replaces.
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from assistant.sqlite import open_db

KB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS kbs (
  name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', embedding TEXT NOT NULL,
  created_at TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS documents (
  kb TEXT NOT NULL REFERENCES kbs(name) ON DELETE CASCADE, doc_id TEXT NOT NULL, title TEXT, source TEXT,
  content_hash TEXT NOT NULL, state TEXT NOT NULL, n_chunks INTEGER NOT NULL DEFAULT 0,
  metadata TEXT NOT NULL DEFAULT '{}', ingested_at TEXT NOT NULL, PRIMARY KEY (kb, doc_id));
CREATE TABLE IF NOT EXISTS chunks (
  kb TEXT NOT NULL, chunk_id TEXT NOT NULL, doc_id TEXT NOT NULL, position INTEGER NOT NULL,
  text TEXT NOT NULL, tokens TEXT NOT NULL, metadata TEXT NOT NULL, PRIMARY KEY (kb, chunk_id),
  FOREIGN KEY (kb, doc_id) REFERENCES documents(kb, doc_id) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(kb, doc_id);
CREATE INDEX IF NOT EXISTS docs_by_hash ON documents(kb, content_hash);
"""


class CatalogError(ValueError):
    pass


@dataclass
class ChunkRecord:
    chunk_id: str
    doc_id: str
    position: int
    text: str
    tokens: list[str]
    metadata: dict = field(default_factory=dict)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def validate_kb_name(name: str) -> str:
    if not isinstance(name, str) or not KB_NAME.match(name):
        raise CatalogError(f"invalid knowledge base name {name!r}: use 1-63 letters, digits, '-' or '_' "
                           "(put the Chinese name in the description)")
    return name


class Catalog:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.RLock()
        self._db = open_db(path, SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # knowledge bases
    def create_kb(self, name: str, embedding: str, description: str = "", exist_ok: bool = False) -> dict:
        validate_kb_name(name)
        existing = self.get_kb(name)
        if existing:
            if not exist_ok:
                raise CatalogError(f"knowledge base {name!r} already exists")
            if existing["embedding"] != embedding:
                raise CatalogError(f"knowledge base {name!r} was built with embeddings {existing['embedding']!r}, "
                                   f"not {embedding!r}: use another knowledge base or re-create it")
            return existing
        with self.transaction() as db:
            db.execute("INSERT INTO kbs(name, description, embedding, created_at) VALUES (?,?,?,?)",
                       (name, description, embedding, now_iso()))
        return self.get_kb(name)

    def get_kb(self, name: str) -> dict | None:
        rows = self._query("SELECT * FROM kbs WHERE name=?", (name,))
        return dict(rows[0]) if rows else None

    def require_kb(self, name: str) -> dict:
        kb = self.get_kb(name)
        if kb is None:
            raise CatalogError(f"knowledge base {name!r} does not exist")
        return kb

    def list_kbs(self) -> list[dict]:
        return [dict(r) for r in self._query(
            "SELECT k.*, (SELECT COUNT(*) FROM documents d WHERE d.kb=k.name AND d.state='complete') AS documents,"
            " (SELECT COUNT(*) FROM chunks c WHERE c.kb=k.name) AS chunks FROM kbs k ORDER BY name")]

    def delete_kb(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM chunks WHERE kb=?", (name,))
            db.execute("DELETE FROM documents WHERE kb=?", (name,))
            db.execute("DELETE FROM kbs WHERE name=?", (name,))

    def kb_version(self, name: str) -> int:
        rows = self._query("SELECT version FROM kbs WHERE name=?", (name,))
        return rows[0]["version"] if rows else -1

    # documents
    def get_document(self, kb: str, doc_id: str) -> dict | None:
        rows = self._query("SELECT * FROM documents WHERE kb=? AND doc_id=?", (kb, doc_id))
        return _doc(rows[0]) if rows else None

    def find_by_hash(self, kb: str, content_hash: str) -> dict | None:
        rows = self._query("SELECT * FROM documents WHERE kb=? AND content_hash=? AND state='complete'",
                           (kb, content_hash))
        return _doc(rows[0]) if rows else None

    def list_documents(self, kb: str, limit: int | None = None, offset: int = 0) -> list[dict]:
        sql = "SELECT * FROM documents WHERE kb=? ORDER BY ingested_at, doc_id"
        args: tuple = (kb,)
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += (limit, offset)
        return [_doc(r) for r in self._query(sql, args)]

    def count_documents(self, kb: str) -> int:
        return self._query("SELECT COUNT(*) AS n FROM documents WHERE kb=?", (kb,))[0]["n"]

    def mark_pending(self, kb: str, doc_id: str, content_hash: str, title: str, source: str, metadata: dict) -> None:
        """Record intent before vectors are written; old chunks stay visible until commit_document."""
        with self.transaction() as db:
            cur = db.execute("UPDATE documents SET state='pending' WHERE kb=? AND doc_id=?", (kb, doc_id))
            if cur.rowcount == 0:
                db.execute("INSERT INTO documents(kb, doc_id, title, source, content_hash, state, metadata, ingested_at)"
                           " VALUES (?,?,?,?,?,'pending',?,?)",
                           (kb, doc_id, title, source, content_hash, json.dumps(metadata, ensure_ascii=False), now_iso()))

    def commit_document(self, kb: str, doc_id: str, content_hash: str, title: str, source: str, metadata: dict,
                        chunks: list[ChunkRecord]) -> None:
        """Atomically replace the document's chunks and mark it complete."""
        with self.transaction() as db:
            db.execute("DELETE FROM chunks WHERE kb=? AND doc_id=?", (kb, doc_id))
            db.execute("INSERT OR REPLACE INTO documents(kb, doc_id, title, source, content_hash, state, n_chunks,"
                       " metadata, ingested_at) VALUES (?,?,?,?,?,'complete',?,?,?)",
                       (kb, doc_id, title, source, content_hash, len(chunks),
                        json.dumps(metadata, ensure_ascii=False), now_iso()))
            db.executemany("INSERT INTO chunks(kb, chunk_id, doc_id, position, text, tokens, metadata)"
                           " VALUES (?,?,?,?,?,?,?)",
                           [(kb, c.chunk_id, doc_id, c.position, c.text, " ".join(c.tokens),
                             json.dumps(c.metadata, ensure_ascii=False)) for c in chunks])
            db.execute("UPDATE kbs SET version=version+1 WHERE name=?", (kb,))

    def delete_document(self, kb: str, doc_id: str) -> bool:
        with self.transaction() as db:
            db.execute("DELETE FROM chunks WHERE kb=? AND doc_id=?", (kb, doc_id))
            cur = db.execute("DELETE FROM documents WHERE kb=? AND doc_id=?", (kb, doc_id))
            db.execute("UPDATE kbs SET version=version+1 WHERE name=?", (kb,))
        return cur.rowcount > 0

    # chunks
    def iter_chunks(self, kb: str) -> Iterator[sqlite3.Row]:
        with self._lock:
            rows = self._db.execute("SELECT chunk_id, doc_id, tokens, metadata FROM chunks WHERE kb=? "
                                    "ORDER BY doc_id, position", (kb,)).fetchall()
        yield from rows

    def chunk_ids(self, kb: str) -> dict[str, str]:
        """chunk_id → doc_id for every committed chunk of the knowledge base."""
        return {r["chunk_id"]: r["doc_id"] for r in self._query("SELECT chunk_id, doc_id FROM chunks WHERE kb=?", (kb,))}

    def get_chunks(self, kb: str, chunk_ids: list[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for start in range(0, len(chunk_ids), 500):
            part = chunk_ids[start:start + 500]
            marks = ",".join("?" * len(part))
            for r in self._query(f"SELECT chunk_id, doc_id, position, text, metadata FROM chunks "
                                 f"WHERE kb=? AND chunk_id IN ({marks})", (kb, *part)):
                out[r["chunk_id"]] = {"chunk_id": r["chunk_id"], "doc_id": r["doc_id"], "position": r["position"],
                                      "text": r["text"], "metadata": json.loads(r["metadata"])}
        return out

    def document_chunks(self, kb: str, doc_id: str) -> list[dict]:
        return [{"chunk_id": r["chunk_id"], "position": r["position"], "text": r["text"],
                 "metadata": json.loads(r["metadata"])}
                for r in self._query("SELECT * FROM chunks WHERE kb=? AND doc_id=? ORDER BY position", (kb, doc_id))]


def _doc(row: sqlite3.Row) -> dict:
    d = dict(row)
    d["metadata"] = json.loads(d["metadata"] or "{}")
    return d
