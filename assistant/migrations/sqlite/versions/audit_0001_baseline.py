"""audit.sqlite3 baseline: the append-only audit log (triggers refuse UPDATE and DELETE). Logs from before
`detail` (what an administrative change changed) get the column, null in their rows: adding a column is no
UPDATE.

Revision ID: audit_0001
Revises:
Create Date: 2026-12-05
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from assistant.migrations.sqlite.helpers import add_column, execute

revision = "audit_0001"
down_revision = None
branch_labels = ("audit",)
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, principal TEXT NOT NULL, client_ip TEXT,
  operation TEXT NOT NULL, method TEXT, path TEXT, status INTEGER, outcome TEXT NOT NULL, kb TEXT,
  question TEXT, sources TEXT NOT NULL DEFAULT '[]', model TEXT, answer_id TEXT, latency_ms REAL,
  detail TEXT)""")
    add_column("audit", sa.Column("detail", sa.Text))
    execute((
        "CREATE INDEX IF NOT EXISTS audit_by_answer ON audit(answer_id)",
        """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    ))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS audit")      # its index and triggers with it
