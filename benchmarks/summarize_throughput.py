"""Batch summarization throughput: documents per minute at concurrency 1 vs N on the same documents, in one run.

    python benchmarks/summarize_throughput.py                 # 6 CRUD news items, brief style, default 1.5B model
    python benchmarks/summarize_throughput.py -p fast --docs 8 --concurrency 2 --style structured

Each run gets a fresh model engine (so none inherits another's prompt cache) and one warm-up request that is not
timed; then the same documents go through `SummarizeService.summarize_paths` into a fresh output folder. Runs go in
ABBA order (1, N, N, 1; --rounds repeats it) so that a change in the machine's load during the benchmark (a shared
host) weighs on both levels alike; docs/min per level is over all its runs. CPU seconds per document (this process)
are printed too: they are less sensitive to other processes than wall time. With the local backend the requests share the xllamacpp engine's n_parallel slots (continuous
batching); with `-p vllm` they go to the server in parallel.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "summaries" / "crud_event_summary.json"


def write_docs(folder: Path, n: int, seed: int, max_chars: int) -> Path:
    rows = json.loads(DATA.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    picked = [r for r in rng.sample(rows, min(len(rows), n * 4)) if len(r["text"]) <= max_chars][:n]
    path = folder / "docs.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i, r in enumerate(picked):
            f.write(json.dumps({"id": f"doc-{i}", "title": r.get("title", ""), "text": r["text"]},
                               ensure_ascii=False) + "\n")
    return path


def run(profile: str | None, docs: Path, out: Path, style: str, concurrency: int) -> dict:
    from assistant.container import Container
    from assistant.settings import load_settings

    c = Container(load_settings(profile))
    svc = c.summarize
    svc.summarize_text("示范市数据局召开会议，部署公共数据开放工作。", style="brief")   # load + warm-up, not timed
    t0, cpu0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()[0]
    report = svc.summarize_paths([docs], out, style, concurrency)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    recs = [json.loads(x) for x in (out / "summaries.jsonl").read_text(encoding="utf-8").splitlines()]
    tokens = sum(r.get("usage", {}).get("output_tokens", 0) for r in recs)
    result = {"concurrency": concurrency, "docs": report["counts"]["summarized"], "failed": report["counts"]["failed"],
              "seconds": round(seconds, 1), "docs_per_min": round(report["counts"]["summarized"] / seconds * 60, 2),
              "output_tokens": tokens, "output_tok_per_s": round(tokens / seconds, 2), "model": c.model_name,
              "cpu_s": round(cpu, 1), "load": round((load0 + os.getloadavg()[0]) / 2, 1),
              "n_parallel": c.settings.llm.local.n_parallel}
    del svc, c
    gc.collect()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=6)
    ap.add_argument("--max-chars", type=int, default=900, help="only news items up to this length")
    ap.add_argument("--style", default="brief")
    ap.add_argument("-j", "--concurrency", type=int, default=None, help="N (default: llm.local.n_parallel)")
    ap.add_argument("-p", "--profile", default=None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=1, help="ABBA rounds (each runs both levels twice)")
    args = ap.parse_args()

    from assistant.settings import load_settings
    n = args.concurrency or load_settings(args.profile).llm.local.n_parallel
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        docs = write_docs(tmp, args.docs, args.seed, args.max_chars)
        results: dict[int, list[dict]] = {1: [], n: []}
        for i, level in enumerate([1, n, n, 1] * args.rounds):
            r = run(args.profile, docs, tmp / f"out-{i}-c{level}", args.style, level)
            results[level].append(r)
            print(f"run {i + 1}, concurrency {level}: {r['docs']} docs in {r['seconds']}s = {r['docs_per_min']} "
                  f"docs/min, {r['cpu_s'] / max(r['docs'], 1):.1f} CPU s/doc, {r['output_tok_per_s']} output tok/s, "
                  f"load {r['load']}, {r['failed']} failed", flush=True)
    rate = {lv: 60 * sum(r["docs"] for r in rs) / sum(r["seconds"] for r in rs) for lv, rs in results.items()}
    cpu = {lv: sum(r["cpu_s"] for r in rs) / max(sum(r["docs"] for r in rs), 1) for lv, rs in results.items()}
    first = results[1][0]
    print(f"{first['model']}, n_parallel {first['n_parallel']}, style {args.style}, {args.docs} docs, "
          f"{os.cpu_count()} CPUs")
    for lv in results:
        print(f"concurrency {lv}: {rate[lv]:.2f} docs/min, {cpu[lv]:.1f} CPU s/doc (over {len(results[lv])} runs)")
    print(f"ratio concurrency {n} / concurrency 1: {rate[n] / rate[1]:.2f}x docs/min "
          f"({cpu[1] / cpu[n]:.2f}x less CPU per document)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
