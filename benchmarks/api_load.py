"""Load check of the HTTP API on loopback: N concurrent POST /api/v1/ask over httpx, errors and latency percentiles.

    python benchmarks/api_load.py                      # test profile: the real 0.5B model (max_tokens 64)
    python benchmarks/api_load.py --profile unit       # scripted LLM: API + retrieval overhead only (labelled)

Starts the same app `gov-assistant serve` starts (uvicorn on 127.0.0.1, a free port, in this process), with the
sample documents ingested into a fresh knowledge base and one reader key; the warm-up (loading embeddings and
the model) happens before the clock starts. Questions cycle through samples/questions.jsonl (12 answerable,
3 that must be refused, which skip the LLM). One key sends everything, so the per-key rate limit applies as
configured (120/minute by default: 50 requests fit in its bucket).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from assistant.api.app import create_app
from assistant.container import Container
from assistant.demo import sample_documents
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import PROJECT_ROOT, load_settings


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def start_server(app) -> tuple[uvicorn.Server, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


async def fire(base: str, key: str, questions: list[str], n: int, concurrency: int) -> list[dict]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=900) as client:
        async def one(i: int) -> dict:
            async with gate:
                t0 = time.perf_counter()
                try:
                    question = questions[i % len(questions)]
                    r = await client.post("/api/v1/ask", json={"question": question, "kb": "samples"})
                    is_json = r.headers.get("content-type", "").startswith("application/json")
                    body = r.json() if is_json else {}
                    return {"status": r.status_code, "seconds": time.perf_counter() - t0,
                            "refused": body.get("refused"), "timings": body.get("timings", {}),
                            "usage": body.get("usage", {}),
                            "error": None if r.status_code == 200 else r.text[:200]}
                except httpx.HTTPError as exc:
                    return {"status": None, "seconds": time.perf_counter() - t0, "error": repr(exc)}
        return await asyncio.gather(*(one(i) for i in range(n)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="test", help="test (real 0.5B model) or unit (scripted LLM, no model)")
    ap.add_argument("-n", "--requests", type=int, default=50)
    ap.add_argument("-c", "--concurrency", type=int, default=50)
    ap.add_argument("--max-tokens", type=int, default=64, help="answer length cap (llm.max_tokens)")
    ap.add_argument("--data-dir", type=Path, default=None, help="default: a fresh temporary directory")
    ap.add_argument("--json", dest="as_json", action="store_true")
    args = ap.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="api-load-"))
    environ = {**os.environ, "GOV_ASSISTANT_DATA_DIR": str(data_dir / "data"),
               "GOV_ASSISTANT_LLM__MAX_TOKENS": str(args.max_tokens)}
    if (PROJECT_ROOT / "data" / "models").is_dir():   # reuse the assembled GGUF files
        environ.setdefault("GOV_ASSISTANT_MODELS_DIR", str(PROJECT_ROOT / "data" / "models"))
    c = Container(load_settings(args.profile, environ=environ))
    t0 = time.perf_counter()
    report = c.knowledge_bases.ingest_documents("samples", sample_documents(), principal=LOCAL_ADMIN)
    assert report.ok, report.to_dict()
    ingest_s = time.perf_counter() - t0
    key, _ = c.api_keys.create("load-check", "reader", ["samples"])
    server, base = start_server(create_app(c, with_ui=False))   # lifespan warm-up loads the models
    lines = (PROJECT_ROOT / "samples" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()]
    asyncio.run(fire(base, key, questions, 1, 1))   # one warm request: prompt cache, lazy imports

    t0 = time.perf_counter()
    results = asyncio.run(fire(base, key, questions, args.requests, args.concurrency))
    wall = time.perf_counter() - t0
    server.should_exit = True

    ok = [r for r in results if r["status"] == 200]
    errors = [r for r in results if r["status"] != 200]
    lat = [r["seconds"] for r in ok]
    llm = "scripted (no model: API + retrieval overhead only)" if c.settings.llm.mode == "scripted" else c.model_name
    summary = {
        "profile": args.profile, "llm": llm, "max_tokens": args.max_tokens, "embeddings": c.embedding_name,
        "requests": args.requests, "concurrency": args.concurrency, "errors": len(errors),
        "refused": sum(1 for r in ok if r["refused"]), "wall_s": round(wall, 2),
        "throughput_rps": round(len(ok) / wall, 3) if wall else None,
        "p50_s": round(percentile(lat, 50), 3) if lat else None,
        "p95_s": round(percentile(lat, 95), 3) if lat else None,
        "max_s": round(max(lat), 3) if lat else None,
        "server_llm_ms_median": round(statistics.median([r["timings"].get("llm_ms", 0) for r in ok
                                                         if "llm_ms" in r["timings"]] or [0]), 1),
        "completion_tokens_total": sum(r["usage"].get("output_tokens", 0) for r in ok),
        "ingest_s": round(ingest_s, 1), "cpu_cores": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if args.as_json:
        print(json.dumps({**summary, "error_samples": [e["error"] for e in errors[:5]]}, ensure_ascii=False, indent=1))
        return
    print(f"LLM: {llm}; embeddings: {c.embedding_name}; max_tokens {args.max_tokens}; {os.cpu_count()} cores "
          f"(load average {summary['load_average_1m']})")
    print(f"{args.requests} x POST /api/v1/ask, {args.concurrency} concurrent, loopback: {len(errors)} errors, "
          f"{summary['refused']} refused (no evidence), wall {wall:.1f}s, {summary['throughput_rps']} req/s")
    if lat:
        print(f"latency p50 {summary['p50_s']:.2f}s  p95 {summary['p95_s']:.2f}s  max {summary['max_s']:.2f}s; "
              f"server-side LLM time median {summary['server_llm_ms_median'] / 1000:.2f}s")
    for e in errors[:5]:
        print(f"error: status {e['status']}: {e['error']}")


if __name__ == "__main__":
    main()
