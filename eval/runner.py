"""The evaluation runner: one suite at a time, through the product's services, into a resumable run folder.

Run folder (DIR):
- items.jsonl — one record per evaluated item, appended as each item finishes (a re-run skips the items
  already there; a re-run that needs a stage an item lacks, e.g. answers after a --retrieval-only run, redoes it).
- run.json — the configuration fingerprint; a re-run with another configuration into the same DIR is refused
  (use another --out, or --fresh to start over).
- summary.json, report.md, report.html, *.png — rebuilt from items.jsonl after every run (eval/report.py).
"""
from __future__ import annotations

import json
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from assistant.progress import Progress, no_progress
from eval.base import DEFAULT_NCP_KB, MODES, EvalError, RunContext, RunOptions, Suite, WorkItem, first_groups
from eval.run_folder import ItemLog, config_fingerprint
from eval.suites import SUITES, get_suite

MAX_FAILURES_IN_A_ROW = 5


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
