"""What every `gov-assistant` command shares: the consoles, the options of this invocation, the container built
from them, one-line errors for known problems and the one progress renderer. The command modules (knowledge,
answers, demo, api, scale, summarize, eval/cli.py) import this, never each other."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console()
err = Console(stderr=True)
_state: dict = {"profile": None, "config": None}


def container():
    if "container" not in _state:
        from assistant.container import Container
        from assistant.settings import load_settings
        _state["container"] = Container(load_settings(_state["profile"], _state["config"]))
    return _state["container"]


def _known_errors() -> tuple[type[BaseException], ...]:
    from assistant.components.registry import ComponentError
    from assistant.components.store.catalog import CatalogError
    from assistant.db import DatabaseError
    from assistant.migrations import SchemaError
    from assistant.filters import FilterError
    from assistant.models import ModelError
    from assistant.services.access import AccessDenied
    from assistant.settings import SettingsError
    from ingest.laws import LawCorpusError
    return (SettingsError, DatabaseError, SchemaError, CatalogError, FilterError, ComponentError, AccessDenied, ModelError, LawCorpusError,
            ValueError, FileNotFoundError)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Known problems print one clear line (exit 2), never a traceback."""
    try:
        yield
    except _known_errors() as exc:
        # one line, never wrapped at the terminal width; the message is text, not rich markup
        err.print(f"[red]错误 error:[/red] {escape(' '.join(str(exc).split()))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None


@contextmanager
def rich_progress(label: str) -> Iterator:
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), TextColumn("{task.fields[detail]}", style="dim"), console=err,
                  transient=False) as bar:
        main = bar.add_task(label, total=None, detail="")
        tasks = {label: main}

        def update(phase: str, done: int, total: int | None, detail: str = "") -> None:
            # a stage of its own gets a bar of its own (ingest: text, then vectors)
            if phase == "vectors" and phase not in tasks:
                tasks[phase] = bar.add_task("vectors", total=None, detail="")
            bar.update(tasks.get(phase, main), completed=done, total=total, detail=detail[:40])

        yield update
