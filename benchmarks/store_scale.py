"""The store at scale (issue #15, 5): synthetic knowledge bases of 10k, 100k and 1M chunks of realistic Chinese
text, each size in one run: ingest rate (text stage, vector stage), lexical (FTS5) p50/p95, dense (Chroma HNSW)
p50/p95, hybrid with a validity + agency filter p50/p95, RSS and disk; ratios to the smallest size and a plot.

    python benchmarks/store_scale.py                          # 10k, 100k (about 10 minutes on 2 idle cores)
    python benchmarks/store_scale.py --sizes 10000,100000,1000000 --work /var/tmp/store_scale

Text: sentences of the national-law corpus (laws.db) and the NCP policy corpus (../shared/data/ncp), recombined
two to four at a time into chunks of ~100–300 characters, 20 chunks per document, each document with a 发文机关
from a list of 40, a date and a validity (10% 已废止). Vectors: a 384-dimensional bigram-hashing projection computed
with numpy (what e5-small's vectors weigh in Chroma, not what they mean), so the benchmark measures the store, not
the encoder. Queries: the NCP dev questions and samples/law_questions.jsonl, through the product's HybridSearcher
(modes bm25 / dense / hybrid). Each size runs in its own process and data directory, so RSS is that size's alone.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NCP = ROOT.parent / "shared" / "data" / "ncp"
DIM = 384
CHUNKS_PER_DOC = 20
AGENCIES = [f"{city}{office}" for city in ("北京市", "上海市", "广州市", "深圳市", "杭州市", "成都市", "武汉市", "西安市")
            for office in ("人民政府办公厅", "数据局", "市场监督管理局", "人力资源和社会保障局", "卫生健康委员会")]


class ProjectionEmbeddings:
    """Each character bigram picks a fixed random vector; a text is the normalized sum (lexical, deterministic,
    ~10 µs a text)."""

    def __init__(self, seed: int = 7, buckets: int = 1 << 16):
        self.table = np.random.default_rng(seed).standard_normal((buckets, DIM)).astype(np.float32)
        self.buckets = buckets

    def _one(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        if len(codes) < 2:
            codes = np.concatenate([codes, [0, 0]])
        v = self.table[(codes[:-1] * 31 + codes[1:]) % self.buckets].sum(axis=0)
        return v / (np.linalg.norm(v) or 1.0)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t).tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text).tolist()


def sentence_pool(limit: int = 60000) -> list[str]:
    from ingest.chunking import split_sentences
    from ingest.laws import laws_db_path

    pool: list[str] = []
    with sqlite3.connect(f"file:{laws_db_path()}?mode=ro", uri=True) as db:
        for (text,) in db.execute("SELECT article_text FROM articles"):
            pool.extend(s for s in split_sentences(text) if 12 <= len(s) <= 160)
    for line in (NCP / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            pool.extend(s for s in split_sentences(json.loads(line)["text"]) if 12 <= len(s) <= 160)
    random.Random(1).shuffle(pool)
    return pool[:limit]


def documents(n_chunks: int, pool: list[str], seed: int = 2333):
    """SourceDocuments with their chunks given (as structured sources give them), generated lazily."""
    from ingest.chunking import Chunk
    from ingest.loaders import SourceDocument

    rng = random.Random(seed)
    for d in range((n_chunks + CHUNKS_PER_DOC - 1) // CHUNKS_PER_DOC):
        chunks = []
        for pos in range(min(CHUNKS_PER_DOC, n_chunks - d * CHUNKS_PER_DOC)):
            text = "".join(rng.choice(pool) for _ in range(rng.randint(2, 4)))
            chunks.append(Chunk(text=text, heading_path=[f"第{pos + 1}部分"], position=pos))
        year = rng.randint(2015, 2025)
        meta = {"agency": rng.choice(AGENCIES), "date": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "status": "已废止" if rng.random() < 0.1 else "现行有效", "doc_type": "通知"}
        yield SourceDocument(doc_id=f"syn-{d}", title=f"合成文件{d}号", source=f"synthetic:{d}",
                             text="\n".join(c.text for c in chunks), chunks=chunks, metadata=meta,
                             extract_metadata=False)


def queries(n: int) -> list[str]:
    qs = [json.loads(line)["question"] for line in (NCP / "dev_qa.jsonl").read_text(encoding="utf-8").splitlines()
          if line.strip()]
    laws = ROOT / "samples" / "law_questions.jsonl"
    if laws.is_file():
        qs += [json.loads(line)["question"] for line in laws.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(5).shuffle(qs)
    return qs[:n]


def _pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p)) if values else 0.0


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_one(size: int, work: Path, n_queries: int, lexical_only: bool = False) -> dict:
    """One size in this process: build, query, measure. lexical_only: the text stage and BM25 alone (Chroma's HNSW
    build of a million chunks takes hours on 2 cores: ~4,000 chunks a minute past 100k, measured)."""
    import psutil

    from assistant.container import Container
    from assistant.filters import Filters
    from assistant.services.access import LOCAL_ADMIN
    from assistant.settings import load_settings

    data = work / f"kb-{size}"
    shutil.rmtree(data, ignore_errors=True)
    os.environ["GOV_ASSISTANT_DATA_DIR"] = str(data)
    settings = load_settings("unit")
    settings.embedding.cache = False
    c = Container(settings)
    c.__dict__["embeddings"] = ProjectionEmbeddings()    # cached_property: the store's vectors come from here
    pool = sentence_pool()
    kb = "scale"
    t0 = time.perf_counter()
    last = [0.0]

    def progress(phase: str, done: int, total: int | None, detail: str = "") -> None:
        if time.perf_counter() - last[0] > 2:
            last[0] = time.perf_counter()
            print(f"\r  {size:,}: {phase} {done:,}/{total or '?'} {detail[:40]:<40}", end="", file=sys.stderr,
                  flush=True)

    failed, batch = [], []
    for doc in documents(size, pool):      # in batches: the generated text itself must not weigh on RSS
        batch.append(doc)
        if len(batch) == 500:
            failed += [r for r in c.knowledge_bases.ingest_documents(kb, batch, progress, principal=LOCAL_ADMIN,
                                                                     wait=False).results if r.status == "failed"]
            batch = []
    if batch:
        failed += [r for r in c.knowledge_bases.ingest_documents(kb, batch, progress, principal=LOCAL_ADMIN,
                                                                 wait=False).results if r.status == "failed"]
    t_text = time.perf_counter() - t0
    if not lexical_only:
        c.knowledge_bases.fill_vectors(kb, progress, principal=LOCAL_ADMIN)
    t_all = time.perf_counter() - t0
    print(file=sys.stderr)
    if failed:
        raise SystemExit(f"{len(failed)} synthetic documents failed, e.g. {failed[0].message}")
    searcher = c.searcher
    max_postings = settings.retrieval.lexical_max_postings or 100_000
    qs = queries(n_queries)
    ALL_LEVELS = Filters().visible_to(("*",))                # the local operator: every document level
    flt = Filters(status=["现行有效"], agency=AGENCIES[3]).visible_to(("*",))
    modes = (("bm25", "bm25", ALL_LEVELS), ("bm25+filter", "bm25", flt)) if lexical_only else \
        (("bm25", "bm25", ALL_LEVELS), ("dense", "dense", ALL_LEVELS), ("hybrid", "hybrid", ALL_LEVELS),
         ("hybrid+filter", "hybrid", flt))
    for q in qs[:5]:                                         # warm caches (SQLite pages, HNSW index load)
        searcher.search(q, [kb], ALL_LEVELS, mode=modes[-1][1])
    lat: dict[str, list[float]] = {name: [] for name, _, _ in modes}
    for q in qs:
        for name, mode, f in modes:
            t = time.perf_counter()
            searcher.search(q, [kb], f, mode=mode)
            lat[name].append((time.perf_counter() - t) * 1000)
    # the same BM25 queries with every token scored vs bounded to max_postings rows (lexical.py), interleaved;
    # overlap: share of the full query's top 10 the bounded one keeps
    lex, overlaps = searcher.store.bm25, []
    lat["bm25_all_tokens"], lat["bm25_bounded"] = [], []
    for q in qs:
        tops = {}
        for name, bound in (("bm25_all_tokens", 0), ("bm25_bounded", max_postings)):
            lex.max_postings = bound
            t = time.perf_counter()
            tops[name] = [h.chunk_id for h in searcher.search(q, [kb], ALL_LEVELS, mode="bm25", top_k=10).hits]
            lat[name].append((time.perf_counter() - t) * 1000)
        full = tops["bm25_all_tokens"]
        overlaps.append(len(set(full) & set(tops["bm25_bounded"])) / max(len(full), 1))
    lex.max_postings = max_postings
    proc = psutil.Process()
    return {"lexical_only": lexical_only, "max_postings": max_postings, "bounded_top10_overlap": round(statistics.mean(overlaps), 3),
            "size": size, "text_stage_s": round(t_text, 1), "all_s": round(t_all, 1),
            "text_chunks_per_s": round(size / t_text, 1), "all_chunks_per_s": round(size / t_all, 1),
            **{f"{k}_p50_ms": round(_pct(v, 50), 1) for k, v in lat.items()},
            **{f"{k}_p95_ms": round(_pct(v, 95), 1) for k, v in lat.items()},
            "rss_mb": round(proc.memory_info().rss / 2**20), "disk_mb": round(_du(data) / 2**20),
            "queries": len(qs)}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["size"] for r in results]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for k in ("bm25", "dense", "hybrid", "hybrid+filter"):
        have = [r for r in results if f"{k}_p95_ms" in r]      # lexical-only sizes have no dense or hybrid
        a.plot([r["size"] for r in have], [r[f"{k}_p95_ms"] for r in have], marker="o", label=f"{k} p95")
    a.axhline(300, color="grey", ls="--", lw=1, label="goal: hybrid p95 300 ms")
    a.set(xscale="log", xlabel="chunks", ylabel="ms", title="search latency (p95)")
    a.legend(fontsize=8)
    b.plot(sizes, [r["rss_mb"] for r in results], marker="o", label="RSS MB")
    b.plot(sizes, [r["disk_mb"] for r in results], marker="s", label="disk MB")
    b.axhline(4096, color="grey", ls="--", lw=1, label="goal: RSS 4 GB")
    b.set(xscale="log", xlabel="chunks", title="memory and disk")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--work", type=Path, default=Path("/tmp/store_scale"))
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "store_scale")
    ap.add_argument("--keep", action="store_true", help="keep the synthetic knowledge bases")
    ap.add_argument("--lexical-only", default="", help="sizes (comma-separated) measured without vectors: text "
                    "stage and BM25 only")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)   # a child process: one size
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.work, args.queries, args.lexical_only == "1")))
        return 0
    sizes = [int(s) for s in re.split(r"[,\s]+", args.sizes) if s]
    lexical_only = {int(s) for s in re.split(r"[,\s]+", args.lexical_only) if s}
    sizes += sorted(lexical_only - set(sizes))
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for size in sizes:
        print(f"{size:,} chunks{' (text stage and BM25 only)' if size in lexical_only else ''} …", file=sys.stderr)
        out = subprocess.run([sys.executable, __file__, "--one", str(size), "--work", str(args.work),
                              "--queries", str(args.queries), "--lexical-only", "1" if size in lexical_only else ""],
                             capture_output=False, stdout=subprocess.PIPE, text=True)
        if out.returncode:
            print(f"size {size} failed (exit {out.returncode})", file=sys.stderr)
            break
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        if not args.keep:
            shutil.rmtree(args.work / f"kb-{size}", ignore_errors=True)
    if not results:
        return 1
    base = results[0]
    cols = ["size", "text_chunks_per_s", "all_chunks_per_s", "bm25_p50_ms", "bm25_p95_ms", "dense_p50_ms",
            "dense_p95_ms", "hybrid_p50_ms", "hybrid_p95_ms", "hybrid+filter_p50_ms", "hybrid+filter_p95_ms",
            "rss_mb", "disk_mb"]
    print(" ".join(f"{c:>14}" for c in cols))
    for r in results:
        print(" ".join(f"{'–':>14}" if c not in r else f"{r[c]:>14,}" if isinstance(r[c], int) else f"{r[c]:>14.1f}"
                       for c in cols))
    for r in results:
        print(f"{r['size']:,}: BM25 p95 all tokens {r['bm25_all_tokens_p95_ms']:.1f} ms, bounded to "
              f"{r['max_postings']:,} rows {r['bm25_bounded_p95_ms']:.1f} ms "
              f"(x{r['bm25_bounded_p95_ms'] / max(r['bm25_all_tokens_p95_ms'], .1):.2f}), "
              f"top-10 overlap {r['bounded_top10_overlap']:.3f}")
    for r in results[1:]:
        if r.get("lexical_only"):
            print(f"{r['size']:,} / {base['size']:,}: BM25 p95 x{r['bm25_p95_ms'] / max(base['bm25_p95_ms'], .1):.2f}, "
                  f"RSS x{r['rss_mb'] / max(base['rss_mb'], 1):.2f}, text stage rate x"
                  f"{r['text_chunks_per_s'] / max(base['text_chunks_per_s'], .1):.2f}")
            continue
        print(f"{r['size']:,} / {base['size']:,}: hybrid p95 x{r['hybrid_p95_ms'] / max(base['hybrid_p95_ms'], .1):.2f}, "
              f"filtered hybrid p95 x{r['hybrid+filter_p95_ms'] / max(base['hybrid+filter_p95_ms'], .1):.2f}, "
              f"RSS x{r['rss_mb'] / max(base['rss_mb'], 1):.2f}, ingest rate x"
              f"{r['all_chunks_per_s'] / max(base['all_chunks_per_s'], .1):.2f}")
    (args.out / "results.json").write_text(json.dumps({"command": " ".join(sys.argv), "results": results},
                                                      ensure_ascii=False, indent=1), encoding="utf-8")
    plot(results, args.out / "store_scale.png")
    print(f"results: {args.out / 'results.json'}; plot: {args.out / 'store_scale.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
