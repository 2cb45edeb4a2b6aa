"""Commands of the scale-out profile (issue #18): `gov-assistant worker` (embedding worker processes, any number,
any host), `gov-assistant db upgrade|current` (Alembic migrations of the PostgreSQL database) and `db
import-originals` (originals kept as files before Alembic 0005 into the database)."""
from __future__ import annotations

from typing import Optional

import typer

from assistant.cli import context

db_app = typer.Typer(help="The PostgreSQL database of the scale-out profile (database.url).", no_args_is_help=True)


def _url() -> str:
    url = context.container().settings.database.url
    if not url:
        raise ValueError("database.url is not set: the embedded profile's SQLite files migrate themselves as "
                         "they open (set GOV_ASSISTANT_DATABASE__URL or use --profile scale-out)")
    return url


@db_app.command("upgrade")
def db_upgrade(app_role: Optional[str] = typer.Option(None, "--app-role", help="Grant this role what the app "
                                                      "needs (audit: SELECT, INSERT only). Default: database.app_role.")):
    """Bring the database to the newest schema (run it as the owner role, before starting the app)."""
    from assistant.db import redact_url
    from assistant.migrations import current, head, upgrade
    with context.friendly_errors():
        url = _url()
        upgrade(url, app_role or context.container().settings.database.app_role)
        context.err.print(f"{redact_url(url)}: schema at {current(url)} (head {head()})", soft_wrap=True)


@db_app.command("current")
def db_current():
    """The database's schema revision and the one this version of the app needs."""
    from assistant.migrations import current, head
    with context.friendly_errors():
        have = current(_url())
    print(f"{have or 'none'} (head {head()})")
    if have != head():
        raise typer.Exit(1)


@db_app.command("import-originals")
def db_import_originals():
    """Take the originals this host kept as files under data_dir (before Alembic 0005) into the database, so
    every replica serves them: run once on each host that ingested before the upgrade. Files no document names
    are removed."""
    with context.friendly_errors():
        _url()
        adopted, removed = context.container().store.originals.import_local()
    print(f"{adopted} originals taken into the database, {removed} files no document names removed")


def worker(poll_s: float = typer.Option(5.0, "--poll", min=0.1, help="Seconds between looks for new work."),
           once: bool = typer.Option(False, "--once", help="Return when no knowledge base lacks vectors.")):
    """Fill the vectors of every knowledge base, then wait for more. With the PostgreSQL catalog, start as many
    as the embedding hardware allows (any host): they split the backlog batch by batch (FOR UPDATE SKIP LOCKED)."""
    import signal
    import threading

    from assistant.services.access import LOCAL_ADMIN
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with context.friendly_errors():
        c = context.container()
        with context.rich_progress("vectors") as progress:
            reports = c.knowledge_bases.run_worker(principal=LOCAL_ADMIN, poll_s=poll_s, once=once,
                                                   progress=progress, stop=stop)
    context.err.print(f"worker stopped: {sum(r.written for r in reports)} vectors written", soft_wrap=True)
