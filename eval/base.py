"""What the runner and the suites share (issue #18: the suites import this, never eval.runner): options, work
items, the run context, errors, the retrieval modes and small helpers."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

from assistant.progress import Progress, no_progress

DEFAULT_NCP_KB = "eval-ncp"      # the ncp suite's scratch knowledge base (ingest is idempotent: reused)
MODES = ("bm25", "dense", "hybrid")


class EvalError(ValueError):
    """A problem with an evaluation run (options, data, run folder); the message says what to do."""


@dataclass
class RunOptions:
    suite: str
    out: Path
    data: Path | None = None
    kb: str | None = None
    limit: int | None = None
    retrieval_only: bool = False
    modes: tuple[str, ...] = MODES
    retrieval_k: int = 50               # chunks retrieved per query: enough for 10 distinct documents
    noise_ratios: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8)
    passages: int = 5
    crud_sample: int = 100
    seed: int = 2333
    judge_url: str | None = None
    judge_model: str | None = None
    fresh: bool = False
    no_ingest: bool = False              # use --kb as it is (ncp, custom)
    concurrency: int = 1                 # items in flight at once (the local LLM serves llm.local.n_parallel slots)
    n: int = 25                          # rejection: absent questions, and as many present ones
    command: str = ""

    def suite_fingerprint(self) -> dict:
        """What makes two runs of a suite comparable item by item (not --limit, not --retrieval-only)."""
        fp = {"suite": self.suite, "data": str(self.data or ""), "kb": self.kb or "",
                "modes": list(self.modes), "retrieval_k": self.retrieval_k,
                "noise_ratios": list(self.noise_ratios), "passages": self.passages,
                "crud_sample": self.crud_sample, "seed": self.seed,
                "judge": [self.judge_url or "", self.judge_model or ""]}
        if self.suite == "rejection":     # only there, so run folders of the other suites stay resumable
            fp["n"] = self.n
        return fp


@dataclass
class WorkItem:
    key: str
    payload: dict
    group: str = ""        # --limit N keeps the first N groups (e.g. an RGB query at every noise ratio)


def first_groups(items: list[WorkItem], limit: int | None) -> list[WorkItem]:
    if not limit:
        return items
    keep: list[str] = []
    out = []
    for it in items:
        g = it.group or it.key
        if g not in keep:
            if len(keep) >= limit:
                continue
            keep.append(g)
        out.append(it)
    return out


class Suite(Protocol):
    name: str

    def prepare(self, ctx: "RunContext") -> list[WorkItem]: ...
    def is_complete(self, ctx: "RunContext", record: dict) -> bool: ...
    def run_item(self, ctx: "RunContext", item: WorkItem) -> dict: ...


@dataclass
class RunContext:
    container: object
    options: RunOptions
    progress: Progress = no_progress
    notes: list[str] = field(default_factory=list)   # shown in the report (skips, warnings)
    judge: object | None = None

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def timed(fn: Callable, *args, **kwargs) -> tuple[object, float]:
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - t0) * 1000


def distinct(ids: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    return [d for d in ids if not (d in seen or seen.add(d))]
