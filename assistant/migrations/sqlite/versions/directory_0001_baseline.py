"""directory.sqlite3 baseline: the mapping rules (directory facts to role, departments, clearance) and the
knowledge-base grants.

Revision ID: directory_0001
Revises:
Create Date: 2026-12-05
"""
from __future__ import annotations

from alembic import op

from assistant.migrations.sqlite.helpers import execute

revision = "directory_0001"
down_revision = None
branch_labels = ("directory",)
depends_on = None

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS rules (
  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, match TEXT NOT NULL,
  role TEXT, department TEXT, clearance TEXT, created_at TEXT NOT NULL, created_by TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS grants (
  kb TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, access TEXT NOT NULL,
  created_at TEXT NOT NULL, created_by TEXT NOT NULL, PRIMARY KEY (kb, kind, subject))""",
    "CREATE INDEX IF NOT EXISTS grants_by_subject ON grants(kind, subject)",
)


def upgrade() -> None:
    execute(STATEMENTS)


def downgrade() -> None:
    for table in ("grants", "rules"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
