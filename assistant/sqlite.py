"""One way to open the project's SQLite files (catalog, keys, directory, sign-in, audit, feedback, jobs,
embedding cache), each brought to its schema's Alembic head (assistant/migrations/sqlite) as it opens."""
from __future__ import annotations

import sqlite3
from pathlib import Path


LOCK_WAIT_S = 30.0


def open_db(path: Path, store: str = "", **migration_args) -> sqlite3.Connection:
    """Autocommit connection shared across threads (callers hold their own lock), WAL so readers never block
    the writer and other processes (CLI beside a running server) see committed rows. `store` names the
    file's Alembic branch: a new file is created at its head, an older one upgraded in place (a file at head
    costs one query); `migration_args` reach the revisions (the catalog's default_level)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # a second process opening a file while the first converts it to WAL or migrates it waits for the lock: 5 s
    # (sqlite3's default) was too short for a migration on a loaded machine (CI: "database is locked")
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=LOCK_WAIT_S)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    if store:
        from assistant.migrations.sqlite import ensure
        try:
            ensure(db, path, store, **migration_args)
        except BaseException:
            db.close()
            raise
    return db
