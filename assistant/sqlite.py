"""One way to open the project's SQLite files (catalog, keys, audit, feedback, embedding cache)."""
from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: Path, schema: str = "") -> sqlite3.Connection:
    """Autocommit connection shared across threads (callers hold their own lock), WAL so readers never block
    the writer and other processes (CLI beside a running server) see committed rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    if schema:
        db.executescript(schema)
    return db
