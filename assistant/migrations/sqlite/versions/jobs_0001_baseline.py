"""jobs.sqlite3 baseline: background jobs' records (owner: the submitter's principal id; older rows hold a key
name, read as name:<name>).

Revision ID: jobs_0001
Revises:
Create Date: 2026-12-05
"""
from __future__ import annotations

from alembic import op

from assistant.migrations.sqlite.helpers import execute

revision = "jobs_0001"
down_revision = None
branch_labels = ("jobs",)
depends_on = None

STATEMENTS = (
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at TEXT NOT NULL,"
    " data TEXT NOT NULL)",
)


def upgrade() -> None:
    execute(STATEMENTS)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS jobs")
