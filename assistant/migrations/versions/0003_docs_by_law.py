"""Documents indexed by their law (`law` metadata, else the title): each commit or delete re-decides which
已被修改 text of its law is the newest (the catalog's latest_text flag), reading that law's texts only.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""
from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade(app_role: str | None = None) -> None:
    # the expression the catalog queries (Catalog._law_sql)
    op.execute("CREATE INDEX docs_by_law ON documents (kb, (COALESCE((metadata::jsonb ->> 'law'), title)))")


def downgrade(app_role: str | None = None) -> None:
    op.execute("DROP INDEX docs_by_law")
