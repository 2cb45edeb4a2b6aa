"""embedding_cache.sqlite3 baseline: the embedding cache, vectors keyed by (vector space, text hash).

Revision ID: embedding_cache_0001
Revises:
Create Date: 2026-12-05
"""
from __future__ import annotations

from alembic import op

from assistant.migrations.sqlite.helpers import execute

revision = "embedding_cache_0001"
down_revision = None
branch_labels = ("embedding_cache",)
depends_on = None

STATEMENTS = (
    "CREATE TABLE IF NOT EXISTS vectors (space TEXT, hash TEXT, vec BLOB, PRIMARY KEY (space, hash))",
)


def upgrade() -> None:
    execute(STATEMENTS)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS vectors")
