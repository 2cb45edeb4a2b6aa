"""Single-use values of the OIDC sign-in (a login's state, the UI's handover ticket) shared by the replicas,
so a callback or page load that lands on another replica than the one before it still finds them
(assistant/components/identity/once.py). Only hashes of the values are stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""
from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade(app_role: str | None = None) -> None:
    op.execute("CREATE TABLE sso_once (kind TEXT NOT NULL, key_hash TEXT NOT NULL, data TEXT NOT NULL,"
               " expires_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (kind, key_hash))")
    op.execute("CREATE INDEX sso_once_by_expiry ON sso_once(expires_at)")
    if app_role:
        role = '"' + app_role.replace('"', '""') + '"'
        op.execute(f"GRANT SELECT, INSERT, DELETE ON sso_once TO {role}")


def downgrade(app_role: str | None = None) -> None:
    op.execute("DROP TABLE IF EXISTS sso_once")
