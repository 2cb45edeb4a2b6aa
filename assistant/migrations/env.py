"""Alembic environment: online migrations only, on the URL the caller configured (never a file's credentials)."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

config = context.config
url = config.get_main_option("sqlalchemy.url")
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        # replicas starting together: one migrates, the others wait here and then find the schema at head
        connection.execute(text("SELECT pg_advisory_xact_lock(7172018)"))
        context.run_migrations(app_role=config.attributes.get("app_role"))
engine.dispose()
