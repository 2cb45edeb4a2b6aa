"""sso.sqlite3 baseline: the OIDC sign-in's single-use values (login states, UI tickets; hashes only).

Revision ID: sso_0001
Revises:
Create Date: 2026-12-05
"""
from __future__ import annotations

from alembic import op

from assistant.migrations.sqlite.helpers import execute

revision = "sso_0001"
down_revision = None
branch_labels = ("sso",)
depends_on = None

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS sso_once (
  kind TEXT NOT NULL, key_hash TEXT NOT NULL, data TEXT NOT NULL, expires_at REAL NOT NULL,
  PRIMARY KEY (kind, key_hash))""",
    "CREATE INDEX IF NOT EXISTS sso_once_by_expiry ON sso_once(expires_at)",
)


def upgrade() -> None:
    execute(STATEMENTS)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS sso_once")
