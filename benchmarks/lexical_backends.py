"""Lexical search on the two catalog backends side by side (issue #18): SQLite FTS5 (embedded) and PostgreSQL
postings with FTS5's BM25 (scale-out), on the same synthetic knowledge base (store_scale.py's chunks of law and
NCP sentences), the same queries, interleaved: p50/p95 of chunk-level BM25, top-10 agreement, the text-stage
write rate, and the ratio PostgreSQL / SQLite.

    python benchmarks/lexical_backends.py --chunks 100000                    # starts a throwaway PostgreSQL
    python benchmarks/lexical_backends.py --chunks 1000000 --database-url postgresql://…/bench

Only the catalog is written (the text stage: chunks, tokens, postings); no vectors, no embedder.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))


def fill(catalog, kb: str, n_chunks: int, pool, batch_docs: int = 50) -> float:
    from assistant.components.store.catalog import ChunkRecord
    from assistant.components.store.tokens import tokenize
    from store_scale import documents

    catalog.create_kb(kb, "none", exist_ok=True)
    t0, done = time.perf_counter(), 0
    for doc in documents(n_chunks, pool):
        meta = {**doc.metadata, "sensitivity": "内部"}
        catalog.mark_pending(kb, doc.doc_id, doc.doc_id, doc.title, doc.source, meta)
        catalog.stage_chunks(kb, doc.doc_id, [ChunkRecord(f"{doc.doc_id}#{c.position}", doc.doc_id, c.position, c.text,
                                                          tokenize(c.text), meta) for c in doc.chunks])
        catalog.commit_document(kb, doc.doc_id, doc.doc_id, doc.title, doc.source, meta)
        done += len(doc.chunks)
        if done % 20000 < len(doc.chunks):
            print(f"  {catalog.dialect}: {done}/{n_chunks} chunks, {done / (time.perf_counter() - t0):.0f}/s",
                  flush=True)
    return n_chunks / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--database-url", default=None, help="an empty database at Alembic's head (default: a "
                                                         "throwaway server from tests/pg_fixtures.py)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/lexical_backends"))
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "lexical_backends")
    args = ap.parse_args()

    from assistant.components.store.catalog import Catalog
    from assistant.components.store.tokens import tokenize
    from store_scale import queries, sentence_pool

    server = None
    url = args.database_url
    if url is None:
        import pg_fixtures
        server = pg_fixtures.start_postgres()
        url = server.new_database()
    try:
        args.work.mkdir(parents=True, exist_ok=True)
        lite_path = args.work / f"catalog-{args.chunks}.sqlite3"
        lite_path.unlink(missing_ok=True)
        lite, post = Catalog(lite_path), Catalog(url)
        pool = sentence_pool()
        rates = {"sqlite": fill(lite, "bench", args.chunks, pool), "postgresql": fill(post, "bench", args.chunks, pool)}
        qs = [tokenize(q) for q in queries(args.queries)]
        times: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        agree = []
        for q in qs:              # interleaved, each backend in turn, so load affects both alike
            tops = {}
            for name, cat in (("sqlite", lite), ("postgresql", post)):
                t = time.perf_counter()
                tops[name] = [i for i, _ in cat.lexical_search("bench", q, 10)]
                times[name].append((time.perf_counter() - t) * 1000)
            a, b = tops["sqlite"], tops["postgresql"]
            agree.append(len(set(a) & set(b)) / max(len(a), 1))

        def pct(v, p):
            v = sorted(v)
            return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]

        result = {"chunks": args.chunks, "queries": len(qs), "top10_overlap": round(statistics.mean(agree), 4),
                  **{f"{n}_write_chunks_per_s": round(r, 1) for n, r in rates.items()},
                  **{f"{n}_p50_ms": round(pct(t, 50), 1) for n, t in times.items()},
                  **{f"{n}_p95_ms": round(pct(t, 95), 1) for n, t in times.items()}}
        result["p50_ratio_pg_over_sqlite"] = round(result["postgresql_p50_ms"] / max(result["sqlite_p50_ms"], 1e-9), 2)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"result-{args.chunks}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        print(json.dumps(result, indent=1))
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
