"""catalog.sqlite3 baseline: knowledge bases, documents, chunks, staged chunks, and each knowledge base's FTS5
tables (lex_c_/lex_d_/lex_v_<kb>), as the in-code migrations left them. A catalog of any earlier release is
brought here: documents.path (an absolute source becomes the path, its file name the source, in documents and
chunks), documents.origin (null: nothing kept), chunks.embedded (1: those vectors were written before the
commit), the default level for documents and chunks from before 数据分类分级 (attribute default_level), FTS5
tables filled from the stored tokens for knowledge bases from before them. The unique index on complete
documents' content stays with Catalog: a catalog holding duplicates gets it once `kb check` removed them.

Revision ID: catalog_0001
Revises:
Create Date: 2026-12-05
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from assistant.migrations.sqlite.helpers import add_column, execute

revision = "catalog_0001"
down_revision = None
branch_labels = ("catalog",)
depends_on = None

TABLES = (
    """CREATE TABLE IF NOT EXISTS kbs (
  name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', embedding TEXT NOT NULL,
  created_at TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS documents (
  kb TEXT NOT NULL REFERENCES kbs(name) ON DELETE CASCADE, doc_id TEXT NOT NULL, title TEXT, source TEXT,
  content_hash TEXT NOT NULL, state TEXT NOT NULL, n_chunks INTEGER NOT NULL DEFAULT 0,
  metadata TEXT NOT NULL DEFAULT '{}', ingested_at TEXT NOT NULL, path TEXT, origin TEXT,
  PRIMARY KEY (kb, doc_id))""",
    """CREATE TABLE IF NOT EXISTS chunks (
  kb TEXT NOT NULL, chunk_id TEXT NOT NULL, doc_id TEXT NOT NULL, position INTEGER NOT NULL,
  text TEXT NOT NULL, tokens TEXT NOT NULL, metadata TEXT NOT NULL, embedded INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (kb, chunk_id),
  FOREIGN KEY (kb, doc_id) REFERENCES documents(kb, doc_id) ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS staged_chunks (
  kb TEXT NOT NULL, chunk_id TEXT NOT NULL, doc_id TEXT NOT NULL, position INTEGER NOT NULL,
  text TEXT NOT NULL, tokens TEXT NOT NULL, metadata TEXT NOT NULL, PRIMARY KEY (kb, chunk_id))""",
)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(kb, doc_id)",
    "CREATE INDEX IF NOT EXISTS docs_by_hash ON documents(kb, content_hash)",
    "CREATE INDEX IF NOT EXISTS staged_by_doc ON staged_chunks(kb, doc_id)",
    # the expression Catalog._law_sql queries
    "CREATE INDEX IF NOT EXISTS docs_by_law ON documents(kb, COALESCE(json_extract(metadata, '$.law'),"
    " title))",
    "CREATE INDEX IF NOT EXISTS chunks_unembedded ON chunks(kb) WHERE embedded=0",
)
# as catalog.py's FTS_TOKENIZER and lex_tables() at this revision (whitespace-separated jieba tokens)
FTS_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* M* N* P* S* Co'"


def _sources() -> None:
    """From before `path`: an absolute source becomes the path and its file name the source."""
    bind = op.get_bind()
    for kb, doc_id, source in bind.exec_driver_sql(
            "SELECT kb, doc_id, source FROM documents WHERE source LIKE '/%'").fetchall():
        name = source.rsplit("/", 1)[-1]
        bind.exec_driver_sql("UPDATE documents SET path=source, source=? WHERE kb=? AND doc_id=?",
                             (name, kb, doc_id))
        bind.exec_driver_sql("UPDATE chunks SET metadata=json_set(metadata, '$.source', ?) "
                             "WHERE kb=? AND doc_id=?", (name, kb, doc_id))


def _levels(default_level: str) -> None:
    for table in ("documents", "chunks"):
        op.get_bind().exec_driver_sql(f"UPDATE {table} SET metadata=json_set(metadata, '$.sensitivity', ?)"
                                      " WHERE json_extract(metadata, '$.sensitivity') IS NULL",
                                      (default_level,))


def _lexical() -> None:
    """Knowledge bases without FTS5 tables get them, filled from the stored tokens: the chunk index by chunk
    rowid, the document index by document rowid with its chunks' tokens in position order."""
    bind = op.get_bind()
    for (kb,) in bind.exec_driver_sql("SELECT name FROM kbs").fetchall():
        if bind.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name=?", (f"lex_d_{kb}",)).fetchone():
            continue
        c, d, v = f'"lex_c_{kb}"', f'"lex_d_{kb}"', f'"lex_v_{kb}"'
        for table in (c, d):
            bind.exec_driver_sql(f"CREATE VIRTUAL TABLE {table} USING fts5(tokens, content='', "
                                 f"tokenize=\"{FTS_TOKENIZER}\")")
        bind.exec_driver_sql(f"CREATE VIRTUAL TABLE {v} USING fts5vocab({c}, 'row')")
        bind.exec_driver_sql(f"INSERT INTO {c}(rowid, tokens) SELECT rowid, tokens FROM chunks WHERE kb=?",
                             (kb,))
        for rowid, doc_id in bind.exec_driver_sql(
                "SELECT rowid, doc_id FROM documents WHERE kb=? AND doc_id IN "
                "(SELECT doc_id FROM chunks WHERE kb=?)", (kb, kb)).fetchall():
            tokens = " ".join(r[0] for r in bind.exec_driver_sql(
                "SELECT tokens FROM chunks WHERE kb=? AND doc_id=? ORDER BY position", (kb, doc_id)))
            bind.exec_driver_sql(f"INSERT INTO {d}(rowid, tokens) VALUES (?, ?)", (rowid, tokens))


def upgrade() -> None:
    execute(TABLES)
    if add_column("documents", sa.Column("path", sa.Text)):
        _sources()
    add_column("documents", sa.Column("origin", sa.Text))
    add_column("chunks", sa.Column("embedded", sa.Integer, nullable=False, server_default=sa.text("1")))
    execute(INDEXES)
    _levels(context.config.attributes.get("default_level") or "内部")
    _lexical()


def downgrade() -> None:
    bind = op.get_bind()
    for (kb,) in bind.exec_driver_sql("SELECT name FROM kbs").fetchall():
        for table in (f"lex_v_{kb}", f"lex_d_{kb}", f"lex_c_{kb}"):
            op.execute(f'DROP TABLE IF EXISTS "{table}"')
    for table in ("staged_chunks", "chunks", "documents", "kbs"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
