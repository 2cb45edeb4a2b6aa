"""feedback.sqlite3 baseline: ratings of answers (one per rater and answer).

Revision ID: feedback_0001
Revises:
Create Date: 2026-12-05
"""
from __future__ import annotations

from alembic import op

from assistant.migrations.sqlite.helpers import execute

revision = "feedback_0001"
down_revision = None
branch_labels = ("feedback",)
depends_on = None

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS feedback (
  id INTEGER PRIMARY KEY AUTOINCREMENT, answer_id TEXT NOT NULL, rating TEXT NOT NULL, comment TEXT NOT NULL,
  principal TEXT NOT NULL, created_at TEXT NOT NULL, context TEXT NOT NULL DEFAULT '{}')""",
)


def upgrade() -> None:
    execute(STATEMENTS)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS feedback")
