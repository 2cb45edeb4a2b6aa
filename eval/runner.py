"""The evaluation runner: one suite at a time, through the product's services, into a resumable run folder.

Run folder (DIR):
- items.jsonl — one record per evaluated item, appended as each item finishes (a re-run skips the items
  already there; a re-run that needs a stage an item lacks, e.g. answers after a --retrieval-only run, redoes it).
- run.json — the configuration fingerprint; a re-run with another configuration into the same DIR is refused
  (use another --out, or --fresh to start over).
- summary.json, report.md, report.html, *.png — rebuilt from items.jsonl after every run (eval/report.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

from assistant.progress import Progress, no_progress

SUITES = ("ncp", "rgb", "summaries", "custom", "rejection", "laws")
MAX_FAILURES_IN_A_ROW = 5
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


class ItemLog:
    """items.jsonl, append-only; the last record of a key wins."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, dict]:
        records: dict[str, dict] = {}
        if not self.path.exists():
            return records
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue          # a line cut short by an interruption: that item is redone
                if isinstance(rec, dict) and rec.get("key"):
                    records[rec["key"]] = rec
        return records

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line       # close a line an interruption cut short
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


# the settings that can change evaluation results or timings (not the API, server or demo sections)
EVAL_SETTINGS = ("data_dir", "models_dir", "prompts_dir", "llm", "embedding", "vectorstore", "chunking", "retrieval",
                 "rerank", "answer", "profiles")


def settings_snapshot(container) -> dict:
    data = container.settings.model_dump(mode="json")
    data = {k: data[k] for k in EVAL_SETTINGS if k in data}
    data.get("llm", {}).get("openai", {}).pop("api_key", None)    # never written to a report
    data["prompts"] = prompts_fingerprint()
    return data


def prompts_fingerprint() -> str:
    from assistant.prompts import prompts_digest
    return prompts_digest()


def _without_unset(node):
    """Options that are off (null, "none") leave the fingerprint: a release that adds an option, off by default,
    keeps earlier run folders resumable."""
    if isinstance(node, dict):
        return {k: _without_unset(v) for k, v in node.items() if v is not None and v != "none"}
    return node


def config_fingerprint(container) -> str:
    snap = settings_snapshot(container)
    snap.pop("profiles", None)
    return hashlib.sha256(json.dumps(_without_unset(snap), sort_keys=True, ensure_ascii=False).encode()
                          ).hexdigest()[:16]


def get_suite(name: str) -> Suite:
    if name == "ncp":
        from eval.suites.ncp import NCPSuite
        return NCPSuite()
    if name == "rgb":
        from eval.suites.rgb import RGBSuite
        return RGBSuite()
    if name == "summaries":
        from eval.suites.summaries import SummariesSuite
        return SummariesSuite()
    if name == "custom":
        from eval.suites.custom import CustomSuite
        return CustomSuite()
    if name == "rejection":
        from eval.suites.rejection import RejectionSuite
        return RejectionSuite()
    if name == "laws":
        from eval.suites.laws import LawsSuite
        return LawsSuite()
    raise EvalError(f"unknown suite {name!r}: use one of {', '.join(SUITES)}")


def _check_run_folder(out: Path, container, options: RunOptions) -> dict:
    """Refuse to mix configurations in one run folder; returns the run.json contents to write."""
    run_file = out / "run.json"
    fp = config_fingerprint(container)
    run = {"config_fingerprint": fp, "suites": {}}
    if run_file.exists():
        run = _read_run(run_file, "; use --fresh to start this run folder over")
        if run.get("config_fingerprint") != fp:
            raise EvalError(f"{out} holds a run with another configuration (model, embedding, retrieval or answer "
                            "settings); use another --out, or --fresh to start over")
        old = run.get("suites", {}).get(options.suite)
        if old and old != options.suite_fingerprint():
            diff = sorted(k for k in set(old) | set(options.suite_fingerprint())
                          if old.get(k) != options.suite_fingerprint().get(k))
            raise EvalError(f"{out} holds a {options.suite} run with other options ({', '.join(diff)}); "
                            "use another --out, or --fresh to start over")
    run.setdefault("suites", {})[options.suite] = options.suite_fingerprint()
    return run


def run_suite(container, options: RunOptions, progress: Progress = no_progress,
              on_item: Callable[[dict], None] | None = None) -> dict:
    """Run one suite into options.out and rebuild the report; returns the summary (summary.json)."""
    from eval.report import write_report

    if options.suite not in SUITES:
        raise EvalError(f"unknown suite {options.suite!r}: use one of {', '.join(SUITES)}")
    bad = [m for m in options.modes if m not in MODES]
    if bad or not options.modes:
        raise EvalError(f"invalid retrieval mode(s) {bad}: use {', '.join(MODES)}")
    if options.limit is not None and options.limit < 1:
        raise EvalError("--limit must be at least 1")
    if options.concurrency < 1:
        raise EvalError("--concurrency must be at least 1")
    from eval.data import DEFAULT_PATHS
    # the rejection suite is built from the NCP data
    options.data = Path(options.data or DEFAULT_PATHS["ncp" if options.suite == "rejection" else options.suite]
                        ).resolve()
    if options.suite == "ncp" and not options.kb:
        options.kb = DEFAULT_NCP_KB
    out = Path(options.out)
    if options.fresh and out.exists():
        for name in ("items.jsonl", "run.json", "summary.json", "report.md", "report.html"):
            (out / name).unlink(missing_ok=True)
        for png in out.glob("*.png"):
            png.unlink()
    out.mkdir(parents=True, exist_ok=True)

    # deterministic answers: greedy decoding with the configured seed, whatever the profile says
    container.settings.llm.temperature = 0.0
    run = _check_run_folder(out, container, options)
    _write_run(out, run)

    ctx = RunContext(container, options, progress)
    if options.judge_url:
        from eval.judge import Judge
        ctx.judge = Judge(options.judge_url, options.judge_model)
    suite = get_suite(options.suite)
    t0 = time.perf_counter()
    items = suite.prepare(ctx)
    items = getattr(suite, "apply_limit", first_groups)(items, options.limit)
    log = ItemLog(out / "items.jsonl")
    done = log.load()
    todo = [it for it in items if not (it.key in done and "error" not in done[it.key]
                                       and suite.is_complete(ctx, done[it.key]))]
    skipped = len(items) - len(todo)
    # recorded before the first item: `eval report` on a run still going (or cut off) can say how far it got
    meta = {"suite": options.suite, "items": len(items), "status": "running", "command": options.command,
            **_sessions(run.get("runs", {}).get(options.suite, {}), time.strftime("%Y-%m-%dT%H:%M:%S%z"), skipped),
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}}
    run.setdefault("runs", {})[options.suite] = meta
    _write_run(out, run)
    progress(f"{options.suite}", skipped, len(items), f"{skipped} done before" if skipped else "")
    failed_in_a_row = 0
    for i, (item, record) in enumerate(_run_items(suite, ctx, todo, options.concurrency), 1):
        if "error" in record:
            failed_in_a_row += 1
            if failed_in_a_row >= MAX_FAILURES_IN_A_ROW:
                log.append(record)
                raise EvalError(f"stopping: {failed_in_a_row} items in a row failed, the last with {record['error']}")
        else:
            failed_in_a_row = 0
        record.setdefault("key", item.key)
        record.setdefault("suite", options.suite)
        log.append(record)
        if on_item:
            on_item(record)
        progress(f"{options.suite}", skipped + i, len(items), str(record.get("question", ""))[:40])
    meta.update({"status": "finished", "ran": len(todo), "skipped": skipped,
                 "seconds": round(time.perf_counter() - t0, 1), "notes": ctx.notes,
                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "judge": ctx.judge.describe() if ctx.judge is not None else None})
    _write_run(out, run)
    return write_report(out, container)


def _sessions(previous: dict, now: str, done_before: int) -> dict:
    """A resumed run keeps its first start and lists every session, so a report can say the run was cut and
    resumed (its timings then span several processes)."""
    if not done_before or not previous.get("started"):
        return {"started": now, "sessions": [{"started": now}]}
    earlier = previous.get("sessions") or [{"started": previous["started"]}]
    return {"started": previous["started"], "sessions": [*earlier, {"started": now, "done_before": done_before}]}


def _read_run(run_file: Path, hint: str = "") -> dict:
    try:
        return json.loads(run_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise EvalError(f"{run_file} is not valid JSON{hint}") from None


def _write_run(out: Path, run: dict) -> None:
    (out / "run.json").write_text(json.dumps(run, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")


def report_run(container, out: Path) -> dict:
    """Rebuild a run folder's report from what items.jsonl holds, e.g. of a run still going or cut off (the
    report then says how many of its items are done). The configuration must be the one the run used: the report
    describes the model and settings from it."""
    from eval.report import write_report

    out = Path(out)
    run_file = out / "run.json"
    if not run_file.is_file():
        raise EvalError(f"{out} is not a run folder (no run.json)")
    if _read_run(run_file).get("config_fingerprint") != config_fingerprint(container):
        raise EvalError(f"{out} was run with another configuration: report it with the same profile and --config "
                        "as the run (the report describes the model and settings)")
    return write_report(out, container)


def _run_one(suite: Suite, ctx: RunContext, item: WorkItem) -> dict:
    try:
        return suite.run_item(ctx, item)
    except Exception as exc:  # noqa: BLE001 - one bad item is recorded (and retried next run), the rest go on
        src = item.payload.get("rec") or item.payload
        return {"key": item.key, "id": src.get("id"), "question": src.get("question") or src.get("query") or "",
                "error": f"{type(exc).__name__}: {exc}"[:500]}


def _run_items(suite: Suite, ctx: RunContext, todo: list[WorkItem], concurrency: int):
    """Yield (item, record) as items finish; with concurrency > 1 up to that many run at once in threads
    (the services are thread-safe: the API serves them the same way), results in completion order."""
    if concurrency <= 1:
        for item in todo:
            yield item, _run_one(suite, ctx, item)
        return
    pending = iter(todo)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="eval") as pool:
        running = {pool.submit(_run_one, suite, ctx, item): item
                   for item in (next(pending, None) for _ in range(concurrency)) if item is not None}
        try:
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    item = running.pop(fut)
                    if (nxt := next(pending, None)) is not None:
                        running[pool.submit(_run_one, suite, ctx, nxt)] = nxt
                    yield item, fut.result()
        finally:
            # a consumer that stops early (too many failures, Ctrl-C) waits only for the items in flight
            for fut in running:
                fut.cancel()


def load_items(out: Path) -> list[dict]:
    return list(ItemLog(Path(out) / "items.jsonl").load().values())


def timed(fn: Callable, *args, **kwargs) -> tuple[object, float]:
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - t0) * 1000


def distinct(ids: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    return [d for d in ids if not (d in seen or seen.add(d))]
