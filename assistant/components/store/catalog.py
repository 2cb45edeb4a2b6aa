"""SQLite catalog: knowledge bases, documents (content hash, state), chunks (text, jieba tokens, metadata), and the
lexical index over them (SQLite FTS5).

The catalog is the source of truth. A document's chunks become visible only when its row is committed with
state 'complete' in the same transaction as its chunk rows and their FTS5 entries, so a document is searchable by
keywords the moment it commits and a delete is invisible to every process at once. A document is written in
batches to staged_chunks (a large file's rows never sit in memory at once); commit moves them into chunks. Vectors
come after the commit: a committed chunk has embedded=0 until the embedding worker has written its vector (the
catalog is the list of work left, so a restarted process resumes it). No two complete documents of a knowledge
base share a content hash (a unique index: the last word when two writers race).

Lexical index: per knowledge base, two contentless FTS5 tables over the space-joined tokens — lex_c_<kb> (rowid =
the chunk's rowid) and lex_d_<kb> (rowid = the document's rowid, all its chunks' tokens) — plus an fts5vocab table
for document frequencies. Per knowledge base, so BM25 statistics are those of the knowledge base searched, as
before. The tokenizer splits on whitespace only, so a jieba token (中华人民共和国, covid-19) is one FTS5 term.
Contentless tables are told what to delete with the exact text inserted, which the chunks table keeps. Rowids are
those of rowid tables: never VACUUM the catalog (it may renumber them) without rebuild_lexical() after.

On PostgreSQL (database.url, the scale-out profile) the same tables live in one database, created by Alembic
(assistant/migrations), with `rowid` an identity column; the lexical index is pg_lexical.py's postings tables
scored with FTS5's own BM25 formula, so both backends rank alike.

A document's `source` is the name readers see (relative to the ingested folder, or the uploaded name); `path`, where
it was read on the server, is for admins (the service layer drops it for everyone else). Catalogs from before `path`
are migrated on open (the Alembic baseline): an absolute source becomes the path, and its file name the source
(documents and chunks).

A document's `origin` (JSON, null in catalogs from before it and for documents not kept) names what it was made
from, kept in the originals store (originals.py): {"file": sha256, "name", "size"} of the ingested file, {"text":
sha256, "chars"} of its extracted text (chunk offsets point into it) and "pages": [[offset, page], ...] where a
page begins in that text. A chunk's metadata may carry "offsets" [start, end] and "pages" (see ingest/chunking.py).

Amended laws: the chunks of an 已被修改 text that is the newest text the knowledge base holds of its law
(filters.newest_amended; a law is its `law` metadata, else its title) carry `latest_text: true`, which the
default validity filter retrieves. It is re-decided for the law of each document committed or deleted, in that
transaction; the commit and the delete return the chunks whose flag changed, for the vector store's copy.
"""
from __future__ import annotations

import json
import re
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from assistant.components.store.pg_lexical import PostgresLexical
from assistant.db import Database
from assistant.filters import AMENDED, LATEST_TEXT, law_key, newest_amended

KB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")

# whitespace is the only separator (jieba cut the text already); no diacritics folding: terms are the tokens
# (the catalog's Alembic baseline, assistant/migrations/sqlite, fills old catalogs' FTS5 tables with a copy)
FTS_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* M* N* P* S* Co'"
# created apart: a catalog written before it may hold duplicates (kb check lists them; the index waits for them)
UNIQUE_CONTENT = "CREATE UNIQUE INDEX IF NOT EXISTS docs_unique_content ON documents(kb, content_hash) " \
                 "WHERE state='complete'"


# what a knowledge base's row says to readers (PostgreSQL's kbs also holds the lexical totals)
KB_COLUMNS = "name, description, embedding, created_at, version"


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


def lex_tables(kb: str) -> tuple[str, str, str]:
    """Quoted names of the knowledge base's chunk, document and vocabulary FTS5 tables (kb names are validated:
    letters, digits, - and _; SQLite names are case-insensitive as kb names are unique regardless of case)."""
    validate_kb_name(kb)
    return f'"lex_c_{kb}"', f'"lex_d_{kb}"', f'"lex_v_{kb}"'


# FTS5's best rows the filters are applied to before ranking every matching row (Catalog.lexical_search)
LEXICAL_DEPTH = 200


def match_expression(tokens: list[str]) -> str:
    """An FTS5 MATCH expression: any of the tokens (OR, as BM25 scores a query), each a quoted string so that
    quotes, *, -, NEAR, AND/OR/NOT, column filters or parentheses in a token are text, never query syntax."""
    # NUL ends FTS5's reading of the string ("unterminated string"): no token holds one
    quoted = ('"' + t.replace("\x00", "").replace('"', '""') + '"' for t in tokens if t.replace("\x00", ""))
    return " OR ".join(quoted)


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
    def __init__(self, target: Path | str, default_level: str = "内部"):
        """target: the SQLite file (brought to its Alembic head as it opens, assistant/migrations/sqlite;
        documents of a catalog from before 数据分类分级 get default_level), or a postgresql:// URL (its schema
        is Alembic's, already at head)."""
        self.path = target
        self._db = Database(target, "catalog", default_level=default_level)
        self.postgres = self._db.postgres
        self._pg = PostgresLexical() if self.postgres else None
        if self.postgres:
            self.unique_content = True     # the migration creates the unique index
            return
        self.unique_content = self._ensure_unique_content()

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def _json_text(self, column: str, key: str) -> str:
        """SQL for a JSON text column's top-level key (key: a fixed identifier, never user input)."""
        return f"({column}::jsonb ->> '{key}')" if self.postgres else f"json_extract({column}, '$.{key}')"

    def _json_set(self, column: str, key: str) -> str:
        """SQL for the column with `key` set to the next parameter (a string)."""
        return (f"jsonb_set({column}::jsonb, '{{{key}}}', to_jsonb(?::text))::text" if self.postgres
                else f"json_set({column}, '$.{key}', ?)")

    @property
    def _law_sql(self) -> str:
        """A document's law (filters.law_key) as SQL: the expression the docs_by_law index is on (PostgreSQL's
        in Alembic 0003), so a law's texts are found without reading every document."""
        return f"COALESCE({self._json_text('metadata', 'law')}, title)"

    def _flag_sql(self, on: bool) -> str:
        """SQL for the chunk metadata with LATEST_TEXT set to true (on) or removed."""
        if self.postgres:
            return (f"jsonb_set(metadata::jsonb, '{{{LATEST_TEXT}}}', 'true'::jsonb)::text" if on
                    else f"(metadata::jsonb - '{LATEST_TEXT}')::text")
        return (f"json_set(metadata, '$.{LATEST_TEXT}', json('true'))" if on
                else f"json_remove(metadata, '$.{LATEST_TEXT}')")

    def _mark_latest_texts(self, db: Database, kb: str, laws: set[str]) -> dict[str, bool]:
        """Re-decide which 已被修改 texts of these laws are their newest and (un)flag their chunks: chunk id →
        flag for each chunk whose flag changed. A law's texts are its documents with committed chunks (one being
        replaced still shows its old version); only 已被修改 texts ever carry the flag."""
        changed: dict[str, bool] = {}
        for law in sorted(laws - {""}):
            texts = {r["doc_id"]: json.loads(r["metadata"] or "{}") for r in db.execute(
                f"SELECT doc_id, metadata FROM documents WHERE kb=? AND {self._law_sql}=? AND n_chunks>0",
                (kb, law)).fetchall()}
            want = newest_amended(texts)
            for doc_id in (d for d, m in texts.items() if m.get("status") == AMENDED):
                on = doc_id in want
                differs = f"{self._json_text('metadata', LATEST_TEXT)} IS {'' if on else 'NOT '}NULL"
                ids = [r["chunk_id"] for r in db.execute(f"SELECT chunk_id FROM chunks WHERE kb=? AND doc_id=? "
                                                         f"AND {differs}", (kb, doc_id)).fetchall()]
                if ids:
                    db.execute(f"UPDATE chunks SET metadata={self._flag_sql(on)} WHERE kb=? AND doc_id=? AND "
                               f"{differs}", (kb, doc_id))
                    changed.update(dict.fromkeys(ids, on))
        return changed

    def _law_of(self, db: Database, kb: str, doc_id: str) -> str:
        row = db.execute("SELECT title, metadata FROM documents WHERE kb=? AND doc_id=?",
                         (kb, doc_id)).fetchone()
        return law_key({"title": row["title"], **json.loads(row["metadata"] or "{}")}) if row else ""

    def refresh_latest_texts(self) -> dict[str, dict[str, bool]]:
        """Re-decide every law that has an 已被修改 text (a catalog from before the flag, or one a crash left
        between a commit and its vectors): kb → the chunks whose flag changed. Writes only what differs."""
        status = self._json_text("metadata", "status")
        rows = self._query(f"SELECT kb, doc_id FROM documents WHERE {status}=? AND n_chunks>0", (AMENDED,))
        if not rows:
            return {}
        out: dict[str, dict[str, bool]] = {}
        with self.transaction() as db:
            for kb in sorted({r["kb"] for r in rows}):
                laws = {self._law_of(db, kb, r["doc_id"]) for r in rows if r["kb"] == kb}
                if changed := self._mark_latest_texts(db, kb, laws):
                    out[kb] = changed
        return out

    def set_level(self, kb: str, doc_id: str, level: str) -> dict:
        """A document's level, its chunks' with it, in one transaction: the next retrieval obeys it."""
        with self.transaction() as db:
            cur = db.execute(f"UPDATE documents SET metadata={self._json_set('metadata', 'sensitivity')} "
                             "WHERE kb=? AND doc_id=?", (level, kb, doc_id))
            if cur.rowcount == 0:
                raise CatalogError(f"document {doc_id!r} not found in knowledge base {kb!r}")
            db.execute(f"UPDATE chunks SET metadata={self._json_set('metadata', 'sensitivity')} "
                       "WHERE kb=? AND doc_id=?", (level, kb, doc_id))
        return self.get_document(kb, doc_id)

    def _create_lexical(self, db: Database, kb: str) -> None:
        if self.postgres:
            return          # one set of postings tables for all knowledge bases
        c, d, v = lex_tables(kb)
        for table in (c, d):
            db.execute(f"CREATE VIRTUAL TABLE {table} USING fts5(tokens, content='', tokenize=\"{FTS_TOKENIZER}\")")
        db.execute(f"CREATE VIRTUAL TABLE {v} USING fts5vocab({c}, 'row')")

    def _fill_lexical(self, db: Database, kb: str) -> None:
        if self.postgres:
            return self._pg.fill(db, kb)
        c, _, _ = lex_tables(kb)
        db.execute(f"INSERT INTO {c}(rowid, tokens) SELECT rowid, tokens FROM chunks WHERE kb=?", (kb,))
        for r in db.execute("SELECT DISTINCT doc_id FROM chunks WHERE kb=?", (kb,)).fetchall():
            self._lex_doc(db, kb, r["doc_id"], "add")

    def rebuild_lexical(self, kb: str) -> None:
        """Drop and refill the knowledge base's FTS5 tables from the stored tokens (after a VACUUM, or to repair)."""
        with self.transaction() as db:
            self._drop_lexical(db, kb)
            self._create_lexical(db, kb)
            self._fill_lexical(db, kb)

    def _drop_lexical(self, db: Database, kb: str) -> None:
        if self.postgres:
            return self._pg.drop(db, kb)
        for table in reversed(lex_tables(kb)):
            db.execute(f"DROP TABLE IF EXISTS {table}")

    def _lex_chunks(self, db: Database, kb: str, doc_id: str, op: str) -> None:
        """Add the document's committed chunks to the chunk index, or delete them from it (op 'add' | 'delete')."""
        if self.postgres:
            return (self._pg.add_chunks if op == "add" else self._pg.delete_chunks)(db, kb, doc_id)
        c, _, _ = lex_tables(kb)
        if op == "add":
            db.execute(f"INSERT INTO {c}(rowid, tokens) SELECT rowid, tokens FROM chunks WHERE kb=? AND doc_id=?",
                       (kb, doc_id))
        else:
            db.execute(f"INSERT INTO {c}({c}, rowid, tokens) SELECT 'delete', rowid, tokens FROM chunks "
                       "WHERE kb=? AND doc_id=?", (kb, doc_id))

    def _lex_doc(self, db: Database, kb: str, doc_id: str, op: str) -> None:
        """The document's row of the document index: all its chunks' tokens in position order (a delete must
        repeat exactly the text that was inserted)."""
        if self.postgres:
            return (self._pg.add_doc if op == "add" else self._pg.delete_doc)(db, kb, doc_id)
        _, d, _ = lex_tables(kb)
        doc = db.execute("SELECT rowid FROM documents WHERE kb=? AND doc_id=?", (kb, doc_id)).fetchone()
        rows = db.execute("SELECT tokens FROM chunks WHERE kb=? AND doc_id=? ORDER BY position",
                          (kb, doc_id)).fetchall()
        if doc is None or not rows:
            return
        tokens = " ".join(r["tokens"] for r in rows)
        if op == "add":
            db.execute(f"INSERT INTO {d}(rowid, tokens) VALUES (?, ?)", (doc["rowid"], tokens))
        else:
            db.execute(f"INSERT INTO {d}({d}, rowid, tokens) VALUES ('delete', ?, ?)", (doc["rowid"], tokens))

    def close(self) -> None:
        self._db.close()

    def _ensure_unique_content(self) -> bool:
        try:
            self._db.execute(UNIQUE_CONTENT)
            return True
        except sqlite3.IntegrityError:
            return False

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        with self._db.transaction() as db:
            yield db

    def _query(self, sql: str, args: tuple = ()) -> list:
        return self._db.execute(sql, args).fetchall()

    # knowledge bases
    def create_kb(self, name: str, embedding: str, description: str = "", exist_ok: bool = False) -> dict:
        validate_kb_name(name)
        with self.transaction() as db:   # check and insert at once: another process may create it too
            twin = db.execute("SELECT name FROM kbs WHERE lower(name)=lower(?) AND name!=?", (name, name)).fetchone()
            if twin:
                raise CatalogError(f"knowledge base {name!r} would look like the existing {twin['name']!r} "
                                   "(names differing only in case are not allowed)")
            created = db.execute("INSERT INTO kbs(name, description, embedding, created_at) VALUES (?,?,?,?) "
                                 "ON CONFLICT DO NOTHING", (name, description, embedding, now_iso())).rowcount
            if created:
                self._drop_lexical(db, name)     # left by a knowledge base of that name deleted before it had rows
                self._create_lexical(db, name)
        existing = self.get_kb(name)
        if not created:
            if not exist_ok:
                raise CatalogError(f"knowledge base {name!r} already exists")
            if existing["embedding"] != embedding:
                raise CatalogError(f"knowledge base {name!r} was built with embeddings {existing['embedding']!r}, "
                                   f"not {embedding!r}: use another knowledge base or re-create it")
        return existing

    def get_kb(self, name: str) -> dict | None:
        rows = self._query(f"SELECT {KB_COLUMNS} FROM kbs WHERE name=?", (name,))
        return dict(rows[0]) if rows else None

    def require_kb(self, name: str) -> dict:
        kb = self.get_kb(name)
        if kb is None:
            raise CatalogError(f"knowledge base {name!r} does not exist")
        return kb

    def list_kbs(self) -> list[dict]:
        return [dict(r) for r in self._query(
            f"SELECT {KB_COLUMNS}, (SELECT COUNT(*) FROM documents d WHERE d.kb=k.name AND d.state='complete') AS documents,"
            " (SELECT COUNT(*) FROM chunks c WHERE c.kb=k.name) AS chunks FROM kbs k ORDER BY name")]

    def delete_kb(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM staged_chunks WHERE kb=?", (name,))
            db.execute("DELETE FROM chunks WHERE kb=?", (name,))
            db.execute("DELETE FROM documents WHERE kb=?", (name,))
            db.execute("DELETE FROM kbs WHERE name=?", (name,))
            self._drop_lexical(db, name)

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
            db.executemany("INSERT INTO staged_chunks(kb, chunk_id, doc_id, position, text, tokens, metadata)"
                           " VALUES (?,?,?,?,?,?,?) ON CONFLICT (kb, chunk_id) DO UPDATE SET doc_id=excluded.doc_id,"
                           " position=excluded.position, text=excluded.text, tokens=excluded.tokens,"
                           " metadata=excluded.metadata",
                           [(kb, c.chunk_id, doc_id, c.position, c.text, " ".join(c.tokens),
                             json.dumps(c.metadata, ensure_ascii=False)) for c in chunks])

    def commit_document(self, kb: str, doc_id: str, content_hash: str, title: str, source: str,
                        metadata: dict, path: str | None = None,
                        origin: dict | None = None) -> dict[str, bool]:
        """Atomically replace the document's chunks (and their lexical entries) with its staged ones and mark it
        complete, its new chunks waiting for vectors; DuplicateContent
        (nothing changed) when another complete document has this content. Returns the chunks whose
        `latest_text` flag changed (chunk id → flag): its law's and, if it named another before, that one's."""
        twin = self.find_by_hash(kb, content_hash)
        if twin and twin["doc_id"] != doc_id:
            raise DuplicateContent(twin["doc_id"])
        try:
            with self.transaction() as db:
                n = db.execute("SELECT COUNT(*) FROM staged_chunks WHERE kb=? AND doc_id=?", (kb, doc_id)).fetchone()[0]
                laws = {self._law_of(db, kb, doc_id), law_key({**metadata, "title": title})}
                self._lex_doc(db, kb, doc_id, "delete")
                self._lex_chunks(db, kb, doc_id, "delete")
                db.execute("DELETE FROM chunks WHERE kb=? AND doc_id=?", (kb, doc_id))
                db.execute("INSERT INTO documents(kb, doc_id, title, source, path, content_hash, state, n_chunks,"
                           " metadata, ingested_at, origin) VALUES (?,?,?,?,?,?,'complete',?,?,?,?) ON CONFLICT(kb,"
                           " doc_id) DO UPDATE SET title=excluded.title, source=excluded.source, path=excluded.path,"
                           " content_hash=excluded.content_hash, state='complete', n_chunks=excluded.n_chunks,"
                           " metadata=excluded.metadata, ingested_at=excluded.ingested_at, origin=excluded.origin",
                           (kb, doc_id, title, source, path, content_hash, n, json.dumps(metadata, ensure_ascii=False),
                            now_iso(), json.dumps(origin, ensure_ascii=False) if origin else None))
                db.execute("INSERT INTO chunks(kb, chunk_id, doc_id, position, text, tokens, metadata, embedded) "
                           "SELECT kb, chunk_id, doc_id, position, text, tokens, metadata, 0 FROM staged_chunks "
                           "WHERE kb=? AND doc_id=? ORDER BY position", (kb, doc_id))
                self._lex_chunks(db, kb, doc_id, "add")
                self._lex_doc(db, kb, doc_id, "add")
                db.execute("DELETE FROM staged_chunks WHERE kb=? AND doc_id=?", (kb, doc_id))
                changed = self._mark_latest_texts(db, kb, laws)
                db.execute("UPDATE kbs SET version=version+1 WHERE name=?", (kb,))
        except self._db.integrity_errors:
            twin = self.find_by_hash(kb, content_hash)
            if twin is None:
                raise
            raise DuplicateContent(twin["doc_id"]) from None
        return changed

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
        groups: dict[str, list[str]] = {}
        for r in self._query("SELECT content_hash, doc_id FROM documents WHERE kb=? AND state='complete' AND "
                             "content_hash IN (SELECT content_hash FROM documents WHERE kb=? AND state='complete' "
                             "GROUP BY content_hash HAVING COUNT(*) > 1)", (kb, kb)):
            groups.setdefault(r["content_hash"], []).append(r["doc_id"])
        return sorted(sorted(ids) for ids in groups.values())

    def delete_document(self, kb: str, doc_id: str) -> dict[str, bool] | None:
        """None when there was no such document; else the chunks of its law whose `latest_text` flag changed
        (deleting a law's current text makes its newest 已被修改 one current)."""
        with self.transaction() as db:
            law = self._law_of(db, kb, doc_id)
            db.execute("DELETE FROM staged_chunks WHERE kb=? AND doc_id=?", (kb, doc_id))
            self._lex_doc(db, kb, doc_id, "delete")
            self._lex_chunks(db, kb, doc_id, "delete")
            db.execute("DELETE FROM chunks WHERE kb=? AND doc_id=?", (kb, doc_id))
            cur = db.execute("DELETE FROM documents WHERE kb=? AND doc_id=?", (kb, doc_id))
            changed = self._mark_latest_texts(db, kb, {law})
            db.execute("UPDATE kbs SET version=version+1 WHERE name=?", (kb,))
        return changed if cur.rowcount > 0 else None

    def origin_in_use(self, sha: str) -> bool:
        """Whether any document (of any knowledge base) names this blob as its file or text."""
        return bool(self._query(f"SELECT 1 FROM documents WHERE origin IS NOT NULL AND ({self._json_text('origin', 'file')}"
                                f"=? OR {self._json_text('origin', 'text')}=?) LIMIT 1", (sha, sha)))

    def origins(self, kb: str, doc_id: str | None = None) -> list[dict]:
        """The origins of the knowledge base's documents (or of one), for releasing their blobs after a delete."""
        sql, args = "SELECT origin FROM documents WHERE kb=? AND origin IS NOT NULL", (kb,)
        if doc_id is not None:
            sql, args = sql + " AND doc_id=?", (kb, doc_id)
        return [json.loads(r["origin"]) for r in self._query(sql, args)]

    # chunks
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

    # lexical search
    def lexical_search(self, kb: str, tokens: list[str], n: int, level: str = "chunk",
                       where: tuple[str, list] | None = None, rank_first: bool = True) -> list[tuple[str, float]]:
        """(chunk_id or doc_id, BM25 score) best first, by FTS5's bm25() (negated: FTS5 orders ascending).
        where: an SQL condition over the chunk row `c` (Filters.to_sql) for level 'chunk'. rank_first: the
        condition passes most rows (validity, clearance); off for a narrow one (an agency, a date range)."""
        if not tokens or n <= 0:
            return []
        if self.postgres:
            return self._pg.search(self._db, kb, tokens, n, level, where)
        c, d, _ = lex_tables(kb)
        cond, args = where or ("1", [])
        if level not in ("chunk", "document"):
            raise ValueError(f"unknown lexical level {level!r}")
        fts, rows_table, key = (c, "chunks", "chunk_id") if level == "chunk" else (d, "documents", "doc_id")
        expression = match_expression(tokens)
        if not expression:
            return []
        # FTS5 ranks first, the join and the filters read only its best rows: joining every matching row to the
        # chunk table cost 2.4x the ranking itself at 1M chunks (docs: README, the store). The best n that pass
        # the filter are exact whenever n of them are among FTS5's best `depth`; otherwise (a small KB) every
        # matching row is ranked. A narrow filter would mostly fall back, paying for both: it joins at once
        depth = max(LEXICAL_DEPTH, 8 * n)
        ranked = (f"SELECT c.{key} AS id, f.s AS s FROM (SELECT rowid, bm25({fts}) AS s FROM {fts} WHERE {fts} "
                  f"MATCH ? ORDER BY s, rowid LIMIT ?) f JOIN {rows_table} c ON c.rowid=f.rowid "
                  f"WHERE c.kb=? AND ({cond}) ORDER BY f.s, c.rowid LIMIT ?")
        every = (f"SELECT c.{key} AS id, bm25({fts}) AS s FROM {fts} JOIN {rows_table} c ON c.rowid={fts}.rowid "
                 f"WHERE {fts} MATCH ? AND c.kb=? AND ({cond}) ORDER BY s, c.rowid LIMIT ?")
        try:
            rows = self._query(ranked, (expression, depth, kb, *args, n)) if rank_first else []
            if len(rows) < n:
                rows = self._query(every, (expression, kb, *args, n))
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):     # deleted by another process meanwhile
                return []
            raise
        return [(r["id"], -r["s"]) for r in rows]

    def document_frequencies(self, kb: str, tokens: list[str]) -> tuple[int, dict[str, int]]:
        """(chunks in the knowledge base, token → chunks containing it) from the fts5vocab table."""
        uniq = sorted(set(tokens))
        n = self.chunk_count(kb)
        if self.postgres:
            return n, self._pg.frequencies(self._db, kb, uniq)
        _, _, v = lex_tables(kb)
        dfs = dict.fromkeys(uniq, 0)
        for start in range(0, len(uniq), 500):
            part = uniq[start:start + 500]
            try:
                rows = self._query(f"SELECT term, doc FROM {v} WHERE term IN ({','.join('?' * len(part))})", tuple(part))
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return n, dfs
                raise
            dfs.update({r["term"]: r["doc"] for r in rows})
        return n, dfs

    # vectors: the embedding worker's list of work
    def unembedded(self, kb: str, limit: int, after: int = 0, doc_ids: list[str] | None = None) -> list[dict]:
        """Committed chunks still without a vector, in commit order, from rowid `after` on (of doc_ids only)."""
        if doc_ids is None:
            only, args = "", ()
        elif self.postgres:
            only, args = " AND doc_id = ANY(?)", (sorted(doc_ids),)
        else:
            only, args = (" AND doc_id IN (SELECT value FROM json_each(?))",
                          (json.dumps(sorted(doc_ids), ensure_ascii=False),))
        return [{"rowid": r["rowid"], "chunk_id": r["chunk_id"], "doc_id": r["doc_id"], "text": r["text"],
                 "metadata": json.loads(r["metadata"])}
                for r in self._query("SELECT rowid, chunk_id, doc_id, text, metadata FROM chunks WHERE kb=? AND "
                                     f"embedded=0 AND rowid>?{only} ORDER BY rowid LIMIT ?", (kb, after, *args, limit))]

    @contextmanager
    def claim_unembedded(self, kb: str, limit: int) -> Iterator[list[dict]]:
        """PostgreSQL: a batch of chunks without vectors that no other worker holds (FOR UPDATE SKIP LOCKED),
        locked until the block ends; mark_embedded inside it commits with the claim. A worker that dies
        releases its batch with its connection, so another takes it: N worker processes share the backlog."""
        if not self.postgres:
            raise CatalogError("claiming vector work needs the PostgreSQL catalog (database.url)")
        with self.transaction() as db:
            rows = db.execute("SELECT rowid, chunk_id, doc_id, text, metadata FROM chunks WHERE kb=? AND embedded=0 "
                              "ORDER BY rowid LIMIT ? FOR UPDATE SKIP LOCKED", (kb, limit)).fetchall()
            yield [{"rowid": r["rowid"], "chunk_id": r["chunk_id"], "doc_id": r["doc_id"], "text": r["text"],
                    "metadata": json.loads(r["metadata"])} for r in rows]

    def kbs_with_pending_vectors(self) -> list[str]:
        return [r["kb"] for r in self._query("SELECT DISTINCT kb FROM chunks WHERE embedded=0 ORDER BY kb")]

    def unembedded_ids(self, kb: str) -> set[str]:
        return {r["chunk_id"] for r in self._query("SELECT chunk_id FROM chunks WHERE kb=? AND embedded=0", (kb,))}

    def still_unembedded(self, kb: str, chunk_ids: list[str]) -> set[str]:
        """Those of chunk_ids that are still committed and without a vector (a replace or delete since drops them)."""
        out: set[str] = set()
        for start in range(0, len(chunk_ids), 500):
            part = chunk_ids[start:start + 500]
            out.update(r["chunk_id"] for r in self._query(
                f"SELECT chunk_id FROM chunks WHERE kb=? AND embedded=0 AND chunk_id IN ({','.join('?' * len(part))})",
                (kb, *part)))
        return out

    def set_embedded(self, kb: str, chunk_ids: list[str], embedded: bool = True) -> None:
        with self.transaction() as db:
            db.executemany("UPDATE chunks SET embedded=? WHERE kb=? AND chunk_id=?",
                           [(int(embedded), kb, cid) for cid in chunk_ids])

    def chunk_count(self, kb: str) -> int:
        """Committed chunks, from the documents' counts (a document's n_chunks is set in the commit that writes its
        chunks): one row per document read, not one per chunk, on every search."""
        return self._query("SELECT COALESCE(SUM(n_chunks), 0) AS n FROM documents WHERE kb=?", (kb,))[0]["n"]

    def vector_counts(self, kb: str) -> tuple[int, int]:
        """(committed chunks, of them without a vector yet: read from a partial index of those only)."""
        pending = self._query("SELECT COUNT(*) AS n FROM chunks WHERE kb=? AND embedded=0", (kb,))[0]["n"]
        return self.chunk_count(kb), pending

    def pending_vectors_by_document(self, kb: str) -> dict[str, int]:
        return {r["doc_id"]: r["n"] for r in self._query(
            "SELECT doc_id, COUNT(*) AS n FROM chunks WHERE kb=? AND embedded=0 GROUP BY doc_id", (kb,))}

    def document_chunks(self, kb: str, doc_id: str) -> list[dict]:
        return [{"chunk_id": r["chunk_id"], "position": r["position"], "text": r["text"],
                 "metadata": json.loads(r["metadata"])}
                for r in self._query("SELECT * FROM chunks WHERE kb=? AND doc_id=? ORDER BY position", (kb, doc_id))]


def _doc(row: sqlite3.Row) -> dict:
    d = dict(row)
    d["metadata"] = json.loads(d["metadata"] or "{}")
    d["origin"] = json.loads(d["origin"]) if d.get("origin") else None
    return d


def origin_blobs(origin: dict | None) -> list[str]:
    return [origin[k] for k in ("file", "text") if origin and origin.get(k)]
