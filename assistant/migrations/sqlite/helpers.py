"""What the SQLite revisions share: statements run one at a time (the driver takes one per call), and columns
added or dropped with SQLite's own ALTER TABLE.

Never let Alembic's batch mode copy-and-move a table of the catalog: the copy renumbers rowids (the FTS5
tables key on the chunks' and documents' rowids) and leaves out what SQLAlchemy cannot reflect (the
docs_by_law expression index, the partial indexes, ON DELETE CASCADE). Batch mode here runs with
recreate="never": an operation SQLite's ALTER cannot do fails instead. A table that has to be rebuilt is written
by hand: CREATE the new table, INSERT … SELECT rowid, …, DROP, RENAME, then its indexes."""
from __future__ import annotations

from typing import Iterable

import sqlalchemy as sa
from alembic import op


def execute(statements: Iterable[str]) -> None:
    for sql in statements:
        op.execute(sql)


def columns(table: str) -> set[str]:
    return {r[1] for r in op.get_bind().exec_driver_sql(f"PRAGMA table_info({table})")}


def add_column(table: str, column: sa.Column) -> bool:
    """Add `column` unless the table has it (a file from before it); True when it was added."""
    if column.name in columns(table):
        return False
    with op.batch_alter_table(table, recreate="never") as batch:
        batch.add_column(column)
    return True


def drop_column(table: str, name: str) -> None:
    """SQLite's own DROP COLUMN (3.35+): rowids, indexes and foreign keys stay (it refuses an indexed column)."""
    if name in columns(table):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
