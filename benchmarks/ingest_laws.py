"""National-law corpus ingest: pipeline throughput next to the raw encoder's, measured in one run.

    python benchmarks/ingest_laws.py --data-dir /tmp/laws-bench [--law 数据安全法 ...] [--sample 300]

Prints (a) the encoder alone, articles/s on the exact texts the pipeline embeds; (b) the text stage: seconds until
every law is searchable by BM25 (parse rows, chunk records, jieba tokens, catalog + FTS5 commit); (c) the vector
stage: minutes until every chunk has its vector (read pending chunks, embed, Chroma upsert, catalog mark), its
articles/s and its ratio to (a), and the end-to-end ratio (text + vectors) to (a). The embedding cache is switched
off so both sides pay for every vector.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from assistant.container import Container
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import load_settings
from ingest.chunking import format_heading_path
from ingest.laws import count_articles, iter_law_documents, select_laws


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--law", action="append", default=None, help="only laws whose name contains this")
    ap.add_argument("--sample", type=int, default=300, help="articles for the raw-encoder measurement")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()

    env = {"GOV_ASSISTANT_DATA_DIR": str(args.data_dir), "GOV_ASSISTANT_EMBEDDING__CACHE": "false"}
    c = Container(load_settings(args.profile, environ={**__import__("os").environ, **env}))
    laws = select_laws(names=args.law)
    n_articles = count_articles([law["law_id"] for law in laws])
    print(f"{len(laws)} laws, {n_articles} articles; embeddings: {c.embedding_name}")

    texts = [format_heading_path(doc.title, ch.heading_path) + "\n" + ch.text
             for doc in iter_law_documents(laws) for ch in doc.chunks]
    sample = random.Random(0).sample(texts, min(args.sample, len(texts)))
    c.embeddings.embed_documents(sample[:8])  # warm-up
    t0 = time.perf_counter()
    c.embeddings.embed_documents(sample)
    raw_rate = len(sample) / (time.perf_counter() - t0)
    print(f"raw encoder: {raw_rate:.1f} articles/s on {len(sample)} sampled articles")

    from rich.progress import Progress
    with Progress() as bar:
        tasks = {"laws": bar.add_task("text (BM25)", total=len(laws)), "vectors": bar.add_task("vectors", total=None)}

        def show(phase: str, done: int, total: int | None, detail: str = "") -> None:
            bar.update(tasks.get(phase, tasks["laws"]), completed=done, total=total)
        t0 = time.perf_counter()
        report = c.knowledge_bases.ingest_laws("laws", args.law, show, principal=LOCAL_ADMIN, wait=False)
        text_seconds = time.perf_counter() - t0
        probe = c.search.search("数据安全", ["laws"], mode="bm25", principal=LOCAL_ADMIN)   # searchable now
        t1 = time.perf_counter()
        vectors = c.knowledge_bases.fill_vectors("laws", show, principal=LOCAL_ADMIN)
        vector_seconds = time.perf_counter() - t1
    seconds = text_seconds + vector_seconds
    vec_rate = vectors.written / vector_seconds if vector_seconds else 0.0
    pipe_rate = report.chunks / seconds if seconds else 0.0
    result = {"laws": len(laws), "articles": n_articles, "chunks_written": report.chunks, "counts": report.counts,
              "seconds_to_bm25_searchable": round(text_seconds, 1), "bm25_hits_then": len(probe.hits),
              "minutes_to_all_vectors": round(seconds / 60, 2), "vectors_written": vectors.written,
              "vectors_pending": vectors.pending, "vector_stage_articles_per_s": round(vec_rate, 2),
              "pipeline_articles_per_s": round(pipe_rate, 2), "raw_encoder_articles_per_s": round(raw_rate, 2),
              "ratio_vector_stage_to_raw": round(vec_rate / raw_rate, 3),
              "ratio_pipeline_to_raw": round(pipe_rate / raw_rate, 3), "embeddings": c.embedding_name}
    print(json.dumps(result, ensure_ascii=False, indent=1))
    print(f"BM25-searchable after {text_seconds:.1f} s; all vectors after {seconds / 60:.1f} min "
          f"({report.chunks} articles); ratio vector stage/raw encoder = {result['ratio_vector_stage_to_raw']:.2f}, "
          f"pipeline (text + vectors)/raw encoder = {result['ratio_pipeline_to_raw']:.2f}")
    if args.out:
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
