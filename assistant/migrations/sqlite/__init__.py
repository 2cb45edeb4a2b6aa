"""Schema migrations of the embedded profile's SQLite files (Alembic), beside the PostgreSQL ones in the
folder above.

Structure: one script directory for SQLite, apart from PostgreSQL's, with one branch per file (branch label =
the store's name: catalog, api_keys, directory, sso, audit, feedback, jobs, embedding_cache). Each file is its
own database with its own `alembic_version` (one row: its branch's revision) and is upgraded to `<store>@head`
alone. Not dialect branches inside PostgreSQL's revisions: there one database holds every table in one
linear history (0001-0004, already deployed), while each SQLite file holds a few tables with a different DDL
(FTS5 tables per knowledge base instead of postings, AUTOINCREMENT instead of identities, triggers instead of
grants); mixing them would make every revision of either carry the other's no-ops.

Each branch's first revision is its baseline: the schema as the in-code migrations left it, written
idempotently (`CREATE … IF NOT EXISTS`, a column added only where PRAGMA table_info lacks it, the old data
moves), so a file of any earlier release (no alembic_version: Alembic's base) is brought to it and stamped in
the same transaction, and later revisions apply after it as usual. Migrations run in one `BEGIN IMMEDIATE`
transaction: of two processes opening an old file together, one migrates and the other waits, then finds it at
head.

Start-up: `ensure` reads the file's revision on the connection the store opened and returns when it is the
branch's head (HEADS, checked against the scripts by tests/assistant/test_sqlite_migrations.py); SQLAlchemy
and Alembic are imported only when a file needs an upgrade (a new data directory, a new release)."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

HERE = Path(__file__).parent

# each store's newest revision (what `ensure` compares with, without loading Alembic)
HEADS = {
    "catalog": "catalog_0001",
    "api_keys": "api_keys_0001",
    "directory": "directory_0001",
    "sso": "sso_0001",
    "audit": "audit_0001",
    "feedback": "feedback_0001",
    "jobs": "jobs_0001",
    "embedding_cache": "embedding_cache_0001",
}
LOCK_TIMEOUT_S = 600      # how long a process waits for another one's migration of the same file
# Alembic's op and context are module-wide proxies: one migration at a time per process (other processes: the
# file's write lock, env.py)
_RUNNING = threading.Lock()


class SchemaError(RuntimeError):
    """A SQLite file that cannot be brought to the app's schema (the message names the file)."""


def alembic_config(path: Path, store: str, **attributes):
    """The Alembic configuration that migrates `path` (the file of `store`); `attributes` reach the revisions
    (the catalog's baseline reads default_level)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes.update(attributes, path=Path(path), store=store)
    return cfg


def upgrade(path: Path, store: str, revision: str = "head", **attributes) -> None:
    from alembic import command

    with _RUNNING:
        command.upgrade(alembic_config(path, store, **attributes), f"{store}@{revision}")


def downgrade(path: Path, store: str, revision: str = "base") -> None:
    from alembic import command

    with _RUNNING:
        command.downgrade(alembic_config(path, store), f"{store}@{revision}")


def current(db: sqlite3.Connection) -> str | None:
    """The file's revision (None: never stamped, a new file or one from before Alembic)."""
    try:
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return row[0] if row else None


def ensure(db: sqlite3.Connection, path: Path, store: str, **attributes) -> None:
    """Bring the file to its store's head unless it is there (one query when it is)."""
    if store not in HEADS:
        raise ValueError(f"unknown SQLite store {store!r}: one of {', '.join(HEADS)}")
    if current(db) == HEADS[store]:
        return
    try:
        upgrade(path, store, **attributes)
    except Exception as exc:  # noqa: BLE001 - Alembic's and SQLite's errors, named with the file
        raise SchemaError(f"{path}: cannot bring the {store} schema to {HEADS[store]} "
                          f"(at {current(db) or 'none'}): {str(exc).strip().splitlines()[0][:300]}") from exc
