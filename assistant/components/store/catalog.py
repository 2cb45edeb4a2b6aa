"""SQLite catalog: knowledge bases, documents (content hash, state), chunks (text, BM25 tokens, metadata).

The catalog is the source of truth. A document's chunks become visible only when its row is committed with
state 'complete' in the same transaction as its chunk rows. A document is written in batches: each batch's rows go
to staged_chunks before its vectors go to Chroma, so the vectors of a writer that died (kill -9) are known and the
next writer removes them; commit moves the staged rows into chunks. No two complete documents of a knowledge base
share a content hash (a unique index: the last word when two writers race).

A document's `source` is the name readers see (relative to the ingested folder, or the uploaded name); `path`, where
it was read on the server, is for admins (the service layer drops it for everyone else). Catalogs from before `path`
are migrated on open: an absolute source becomes the path, and its file name the source (documents and chunks).
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
  metadata TEXT NOT NULL DEFAULT '{}', ingested_at TEXT NOT NULL, path TEXT, PRIMARY KEY (kb, doc_id));
CREATE TABLE IF NOT EXISTS chunks (
  kb TEXT NOT NULL, chunk_id TEXT NOT NULL, doc_id TEXT NOT NULL, position INTEGER NOT NULL,
  text TEXT NOT NULL, tokens TEXT NOT NULL, metadata TEXT NOT NULL, PRIMARY KEY (kb, chunk_id),
  FOREIGN KEY (kb, doc_id) REFERENCES documents(kb, doc_id) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(kb, doc_id);
CREATE INDEX IF NOT EXISTS docs_by_hash ON documents(kb, content_hash);
CREATE TABLE IF NOT EXISTS staged_chunks (
  kb TEXT NOT NULL, chunk_id TEXT NOT NULL, doc_id TEXT NOT NULL, position INTEGER NOT NULL,
  text TEXT NOT NULL, tokens TEXT NOT NULL, metadata TEXT NOT NULL, PRIMARY KEY (kb, chunk_id));
CREATE INDEX IF NOT EXISTS staged_by_doc ON staged_chunks(kb, doc_id);
"""
# created apart: a catalog written before it may hold duplicates (kb check lists them; the index waits for them)
UNIQUE_CONTENT = "CREATE UNIQUE INDEX IF NOT EXISTS docs_unique_content ON documents(kb, content_hash) " \
                 "WHERE state='complete'"


class CatalogError(ValueError):
    pass


class DuplicateContent(CatalogError):
    """Another complete document of the knowledge base has this content (found at commit)."""

    def __init__(self, twin: str):
        super().__init__(f"same content as {twin}")
        self.twin = twin


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
    """ASCII letters, digits, - and _ only (fullmatch: "gov\\n" is not "gov"), so no full-width, Cyrillic or
    zero-width look-alike of a name can exist; create_kb also refuses a name that differs from one only in case."""
    if not isinstance(name, str) or not KB_NAME.fullmatch(name):
        raise CatalogError(f"invalid knowledge base name {name!r}: use 1-63 letters, digits, '-' or '_' "
                           "(put the Chinese name in the description)")
    return name


class Catalog:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.RLock()
        self._db = open_db(path, SCHEMA)
        self._migrate_sources()
        self.unique_content = self._ensure_unique_content()

    def _migrate_sources(self) -> None:
        if any(r["name"] == "path" for r in self._db.execute("PRAGMA table_info(documents)")):
            return
        try:
            with self.transaction() as db:
                db.execute("ALTER TABLE documents ADD COLUMN path TEXT")
                for r in db.execute("SELECT kb, doc_id, source FROM documents WHERE source LIKE '/%'").fetchall():
                    name = r["source"].rsplit("/", 1)[-1]
                    db.execute("UPDATE documents SET path=source, source=? WHERE kb=? AND doc_id=?",
                               (name, r["kb"], r["doc_id"]))
                    db.execute("UPDATE chunks SET metadata=json_set(metadata, '$.source', ?) WHERE kb=? AND doc_id=?",
                               (name, r["kb"], r["doc_id"]))
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):   # else another process migrated it first
                raise

    def _ensure_unique_content(self) -> bool:
        try:
            self._db.execute(UNIQUE_CONTENT)
            return True
        except sqlite3.IntegrityError:
            return False

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
        with self.transaction() as db:   # check and insert at once: another process may create it too
            twin = db.execute("SELECT name FROM kbs WHERE lower(name)=lower(?) AND name!=?", (name, name)).fetchone()
            if twin:
                raise CatalogError(f"knowledge base {name!r} would look like the existing {twin['name']!r} "
                                   "(names differing only in case are not allowed)")
            created = db.execute("INSERT OR IGNORE INTO kbs(name, description, embedding, created_at) "
                                 "VALUES (?,?,?,?)", (name, description, embedding, now_iso())).rowcount
        existing = self.get_kb(name)
        if not created:
            if not exist_ok:
                raise CatalogError(f"knowledge base {name!r} already exists")
            if existing["embedding"] != embedding:
                raise CatalogError(f"knowledge base {name!r} was built with embeddings {existing['embedding']!r}, "
                                   f"not {embedding!r}: use another knowledge base or re-create it")
        return existing

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
            db.execute("DELETE FROM staged_chunks WHERE kb=?", (name,))
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

    def mark_pending(self, kb: str, doc_id: str, content_hash: str, title: str, source: str, metadata: dict,
                     path: str | None = None) -> None:
        """Record intent before vectors are written; old chunks stay visible until commit_document."""
        with self.transaction() as db:
            db.execute("DELETE FROM staged_chunks WHERE kb=? AND doc_id=?", (kb, doc_id))
            cur = db.execute("UPDATE documents SET state='pending' WHERE kb=? AND doc_id=?", (kb, doc_id))
            if cur.rowcount == 0:
                db.execute("INSERT INTO documents(kb, doc_id, title, source, path, content_hash, state, metadata,"
                           " ingested_at) VALUES (?,?,?,?,?,?,'pending',?,?)",
                           (kb, doc_id, title, source, path, content_hash, json.dumps(metadata, ensure_ascii=False),
                            now_iso()))

    def stage_chunks(self, kb: str, doc_id: str, chunks: list[ChunkRecord]) -> None:
        """One batch of a pending document's new chunks, written before their vectors."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO staged_chunks(kb, chunk_id, doc_id, position, text, tokens, metadata)"
                           " VALUES (?,?,?,?,?,?,?)",
                           [(kb, c.chunk_id, doc_id, c.position, c.text, " ".join(c.tokens),
                             json.dumps(c.metadata, ensure_ascii=False)) for c in chunks])

    def commit_document(self, kb: str, doc_id: str, content_hash: str, title: str, source: str,
                        metadata: dict, path: str | None = None) -> None:
        """Atomically replace the document's chunks with its staged ones and mark it complete; DuplicateContent
        (nothing changed) when another complete document has this content."""
        twin = self.find_by_hash(kb, content_hash)
        if twin and twin["doc_id"] != doc_id:
            raise DuplicateContent(twin["doc_id"])
        try:
            with self.transaction() as db:
                n = db.execute("SELECT COUNT(*) FROM staged_chunks WHERE kb=? AND doc_id=?", (kb, doc_id)).fetchone()[0]
                db.execute("DELETE FROM chunks WHERE kb=? AND doc_id=?", (kb, doc_id))
                db.execute("INSERT INTO documents(kb, doc_id, title, source, path, content_hash, state, n_chunks,"
                           " metadata, ingested_at) VALUES (?,?,?,?,?,?,'complete',?,?,?) ON CONFLICT(kb, doc_id) DO"
                           " UPDATE SET title=excluded.title, source=excluded.source, path=excluded.path,"
                           " content_hash=excluded.content_hash, state='complete', n_chunks=excluded.n_chunks,"
                           " metadata=excluded.metadata, ingested_at=excluded.ingested_at",
                           (kb, doc_id, title, source, path, content_hash, n, json.dumps(metadata, ensure_ascii=False),
                            now_iso()))
                db.execute("INSERT INTO chunks(kb, chunk_id, doc_id, position, text, tokens, metadata) SELECT kb,"
                           " chunk_id, doc_id, position, text, tokens, metadata FROM staged_chunks WHERE kb=? AND"
                           " doc_id=?", (kb, doc_id))
                db.execute("DELETE FROM staged_chunks WHERE kb=? AND doc_id=?", (kb, doc_id))
                db.execute("UPDATE kbs SET version=version+1 WHERE name=?", (kb,))
        except sqlite3.IntegrityError:
            twin = self.find_by_hash(kb, content_hash)
            if twin is None:
                raise
            raise DuplicateContent(twin["doc_id"]) from None

    def staged(self, kb: str) -> dict[str, list[str]]:
        """doc_id -> staged chunk ids: documents whose writer stopped between writing vectors and committing."""
        out: dict[str, list[str]] = {}
        for r in self._query("SELECT doc_id, chunk_id FROM staged_chunks WHERE kb=? ORDER BY doc_id", (kb,)):
            out.setdefault(r["doc_id"], []).append(r["chunk_id"])
        return out

    def drop_staged(self, kb: str, doc_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM staged_chunks WHERE kb=? AND doc_id=?", (kb, doc_id))

    def duplicate_contents(self, kb: str) -> list[list[str]]:
        """Groups of complete documents with the same content (possible in catalogs from before the unique index)."""
        rows = self._query("SELECT group_concat(doc_id, char(10)) AS ids FROM documents WHERE kb=? AND "
                           "state='complete' GROUP BY content_hash HAVING COUNT(*) > 1", (kb,))
        return sorted(sorted(r["ids"].split("\n")) for r in rows)

    def delete_document(self, kb: str, doc_id: str) -> bool:
        with self.transaction() as db:
            db.execute("DELETE FROM staged_chunks WHERE kb=? AND doc_id=?", (kb, doc_id))
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

    def document_chunk_ids(self, kb: str, doc_id: str) -> set[str]:
        return {r["chunk_id"] for r in self._query("SELECT chunk_id FROM chunks WHERE kb=? AND doc_id=?", (kb, doc_id))}

    def iter_document_chunks(self, kb: str, doc_id: str, page: int = 1000) -> Iterator[tuple[str, list[str], dict]]:
        """(chunk_id, tokens, metadata) of a committed document, read a page at a time (a large document's BM25
        update never holds all its rows twice)."""
        last = -1
        while True:
            rows = self._query("SELECT chunk_id, position, tokens, metadata FROM chunks WHERE kb=? AND doc_id=? AND "
                               "position>? ORDER BY position LIMIT ?", (kb, doc_id, last, page))
            for r in rows:
                yield r["chunk_id"], r["tokens"].split(), json.loads(r["metadata"])
            if len(rows) < page:
                return
            last = rows[-1]["position"]

    def document_chunks(self, kb: str, doc_id: str) -> list[dict]:
        return [{"chunk_id": r["chunk_id"], "position": r["position"], "text": r["text"],
                 "metadata": json.loads(r["metadata"])}
                for r in self._query("SELECT * FROM chunks WHERE kb=? AND doc_id=? ORDER BY position", (kb, doc_id))]


def _doc(row: sqlite3.Row) -> dict:
    d = dict(row)
    d["metadata"] = json.loads(d["metadata"] or "{}")
    return d
