"""One way to reach the project's relational store: SQLite files under data_dir (the embedded default) or one
PostgreSQL database (the scale-out profile, `database.url: postgresql://…`), behind the same small interface.

Callers write SQL once with `?` placeholders and portable syntax (ON CONFLICT … DO NOTHING/UPDATE, no INSERT OR
…); `Database.execute` turns the placeholders into psycopg's. Rows answer both r["name"] and r[0], as sqlite3.Row
does. Where the dialects really differ (DDL, FTS5 vs postings, json_extract vs jsonb) the caller branches on
`db.postgres`. Both backends' schemas are Alembic's: PostgreSQL's in assistant/migrations (one linear history,
applied by `gov-assistant db upgrade` or at start with `database.migrate: auto`), the SQLite files' in
assistant/migrations/sqlite (one branch per file, each file upgraded to its head as it opens: `store`).
"""
from __future__ import annotations

import re
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from assistant.sqlite import open_db


class DatabaseError(RuntimeError):
    """The database cannot be reached or refused the statement (message names the server, never the password)."""


def redact_url(url: str) -> str:
    """postgresql://user:secret@host/db → postgresql://user:***@host/db (for messages and logs)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class Row(dict):
    """A dict row that also answers by column position (as sqlite3.Row)."""

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(self.values())[key]
        return super().__getitem__(key)


class _PgCursor:
    def __init__(self, rows: list[Row], rowcount: int):
        self._rows, self.rowcount = rows, rowcount

    def fetchall(self) -> list[Row]:
        return self._rows

    def fetchone(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def __iter__(self):
        return iter(self._rows)


def pg_connect(url: str, connect_timeout_s: int = 5, **kwargs: Any):
    """An autocommit psycopg connection; DatabaseError (password redacted) when the server is unreachable."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout_s, **kwargs)
    except psycopg.Error as exc:
        raise DatabaseError(f"数据库不可用 (PostgreSQL {redact_url(url)} unreachable: "
                            f"{str(exc).strip().splitlines()[0][:200]})") from None


def _pg_sql(sql: str) -> str:
    # psycopg's placeholders are %s, so a literal % must be doubled; no ? ever appears inside our SQL literals
    return sql.replace("%", "%%").replace("?", "%s")


class Database:
    """A connection (SQLite file or PostgreSQL) shared across threads behind one lock, autocommit outside
    `transaction()`. A process holds one per store; PostgreSQL serialises writers with row locks, not this lock."""

    def __init__(self, target: str | Path, store: str = "", connect_timeout_s: int = 5, **migration_args):
        """store: the SQLite file's Alembic branch (catalog, api_keys, …), upgraded to its head on open;
        unused on PostgreSQL, whose schema the caller brought to head (assistant.migrations.ensure_schema)."""
        self._lock = threading.RLock()
        self.url = str(target)
        self.postgres = self.url.startswith(("postgresql://", "postgres://"))
        if self.postgres:
            self._pg = pg_connect(self.url, connect_timeout_s)
            self._sqlite = None
        else:
            self._sqlite = open_db(Path(target), store, **migration_args)
            self._pg = None

    @property
    def integrity_errors(self) -> tuple[type[BaseException], ...]:
        """What a unique or foreign-key violation raises on this backend (for `except`)."""
        if self.postgres:
            import psycopg
            return (psycopg.IntegrityError,)
        return (sqlite3.IntegrityError,)

    @property
    def dialect(self) -> str:
        return "postgresql" if self.postgres else "sqlite"

    def execute(self, sql: str, args: Sequence[Any] = ()):
        with self._lock:
            if self._sqlite is not None:
                return self._sqlite.execute(sql, tuple(args))
            return self._pg_execute(sql, args)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            if self._sqlite is not None:
                self._sqlite.executemany(sql, rows)
            else:
                with self._pg.cursor() as cur:
                    cur.executemany(_pg_sql(sql), [tuple(r) for r in rows])

    def _pg_execute(self, sql: str, args: Sequence[Any]) -> _PgCursor:
        with self._pg.cursor() as cur:
            cur.execute(_pg_sql(sql), tuple(args))
            rows: list[Row] = []
            if cur.description is not None:
                names = [c.name for c in cur.description]
                rows = [Row(zip(names, r)) for r in cur.fetchall()]
            return _PgCursor(rows, cur.rowcount)

    @contextmanager
    def transaction(self) -> Iterator["Database"]:
        """All statements inside commit together or not at all. SQLite takes the write lock at BEGIN (IMMEDIATE),
        so a read-then-write inside cannot race another process."""
        with self._lock:
            if self._sqlite is not None:
                self._sqlite.execute("BEGIN IMMEDIATE")
                try:
                    yield self
                except BaseException:
                    self._sqlite.execute("ROLLBACK")
                    raise
                self._sqlite.execute("COMMIT")
            else:
                with self._pg.transaction():
                    yield self

    def close(self) -> None:
        with self._lock:
            (self._sqlite or self._pg).close()


def connect(url: str | None, sqlite_path: Path, store: str = "") -> Database:
    """The configured PostgreSQL database when `url` is set, else the SQLite file (at its store's head)."""
    return Database(url if url else sqlite_path, store)
