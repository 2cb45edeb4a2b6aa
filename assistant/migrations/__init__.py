"""Schema migrations of the PostgreSQL database (Alembic). `gov-assistant db upgrade` (or the app at start, when
`database.migrate: auto`) brings a database to head; `db.app_role` names the role the app runs as, granted what
it needs and no UPDATE, DELETE or TRUNCATE on the audit table. The embedded profile's SQLite files have their
own script directory, one branch per file, applied as each file opens: assistant/migrations/sqlite."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def alembic_config(url: str, app_role: str | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    cfg.attributes["app_role"] = app_role
    return cfg


def sqlalchemy_url(url: str) -> str:
    """postgresql://… → postgresql+psycopg://… (SQLAlchemy's name for psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def upgrade(url: str, app_role: str | None = None, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url, app_role), revision)


def current(url: str) -> str | None:
    """The database's revision (None: not migrated yet)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


_checked: set[str] = set()


class SchemaError(RuntimeError):
    pass


def ensure_schema(url: str, mode: str = "auto", app_role: str | None = None) -> None:
    """Once per process and database: migrate to head (mode auto) or verify it is there (mode check)."""
    if url in _checked:
        return
    from assistant.db import redact_url

    try:
        if mode == "auto":
            upgrade(url, app_role)
        else:
            have, want = current(url), head()
            if have != want:
                raise SchemaError(f"database {redact_url(url)} is at schema revision {have or 'none'}, the app needs "
                                  f"{want}: run `gov-assistant db upgrade` as the database owner")
    except SchemaError:
        raise
    except Exception as exc:  # noqa: BLE001 - the driver's errors, named without the password
        raise SchemaError(f"数据库不可用 (PostgreSQL {redact_url(url)}: {str(exc).splitlines()[0][:200]})") from None
    _checked.add(url)
