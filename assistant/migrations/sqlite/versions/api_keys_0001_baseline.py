"""api_keys.sqlite3 baseline: API keys (sha256 hashes only). Keys from before 数据分类分级 get a null clearance
(the configured default applies to them).

Revision ID: api_keys_0001
Revises:
Create Date: 2026-12-05
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from assistant.migrations.sqlite.helpers import add_column

revision = "api_keys_0001"
down_revision = None
branch_labels = ("api_keys",)
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
  role TEXT NOT NULL, kbs TEXT NOT NULL, departments TEXT NOT NULL,
  created_at TEXT NOT NULL, revoked_at TEXT, last_used_at TEXT, clearance TEXT)""")
    add_column("api_keys", sa.Column("clearance", sa.Text))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS api_keys")
