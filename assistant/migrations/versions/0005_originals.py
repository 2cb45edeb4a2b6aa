"""The documents' originals (ingested files, extracted texts) in the database the replicas share, so the
source of a citation is read on any replica without a shared data_dir (PgOriginals in
assistant/components/store/originals.py): content-addressed by sha256, the bytes in parts of 1 MiB (a file of
ingest.max_file_mb, 200 MiB by default, is written and read a part at a time).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""
from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade(app_role: str | None = None) -> None:
    op.execute("CREATE TABLE originals (sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL,"
               " parts INTEGER NOT NULL, created_at TEXT NOT NULL)")
    op.execute("CREATE TABLE original_parts ("
               " sha256 TEXT NOT NULL REFERENCES originals(sha256) ON DELETE CASCADE,"
               " n INTEGER NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (sha256, n))")
    if app_role:
        role = '"' + app_role.replace('"', '""') + '"'
        op.execute(f"GRANT SELECT, INSERT, DELETE ON originals, original_parts TO {role}")


def downgrade(app_role: str | None = None) -> None:
    op.execute("DROP TABLE IF EXISTS original_parts, originals")
