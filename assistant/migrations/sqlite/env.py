"""Alembic environment of the SQLite files: online only, on the file the caller names (config.attributes
path), in one BEGIN IMMEDIATE transaction (the write lock is taken before the revision is read, so two
processes opening an old file together migrate it once)."""
from __future__ import annotations

import sqlite3

from alembic import context
from sqlalchemy import create_engine, event
from sqlalchemy.pool import NullPool

from assistant.migrations.sqlite import LOCK_TIMEOUT_S

config = context.config
path = str(config.attributes["path"])
# isolation_level=None: the driver opens no transaction of its own; the "begin" hook below opens ours
engine = create_engine("sqlite://", poolclass=NullPool,
                       creator=lambda: sqlite3.connect(path, isolation_level=None, timeout=LOCK_TIMEOUT_S))


@event.listens_for(engine, "begin")
def _begin(conn) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None, transactional_ddl=True,
                      version_table="alembic_version")
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
