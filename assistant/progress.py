"""One progress callback for every long operation: the CLI renders it with rich, the API keeps it in a job,
the UI shows it as a bar."""
from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, phase: str, done: int, total: int | None, detail: str = "") -> None: ...


def no_progress(phase: str, done: int, total: int | None, detail: str = "") -> None:
    return None
