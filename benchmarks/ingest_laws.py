"""National-law corpus ingest: pipeline throughput next to the raw encoder's, measured in one run.

    python benchmarks/ingest_laws.py --data-dir /tmp/laws-bench [--law 数据安全法 ...] [--sample 300]

Prints articles/s for (a) the encoder alone on the exact texts the pipeline embeds and (b) the whole pipeline
(parse rows, chunk records, jieba tokens, embed, Chroma upsert, catalog commit, BM25), and their ratio.
The embedding cache is switched off so both sides pay for every vector.
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
        task = bar.add_task("ingest laws", total=len(laws))
        t0 = time.perf_counter()
        report = c.knowledge_bases.ingest_laws("laws", args.law,
                                              lambda ph, done, total, d="": bar.update(task, completed=done),
                                              principal=LOCAL_ADMIN)
        seconds = time.perf_counter() - t0
    pipe_rate = report.chunks / seconds if seconds else 0.0
    result = {"laws": len(laws), "articles": n_articles, "chunks_written": report.chunks, "counts": report.counts,
              "pipeline_seconds": round(seconds, 1), "pipeline_articles_per_s": round(pipe_rate, 2),
              "raw_encoder_articles_per_s": round(raw_rate, 2), "ratio_pipeline_to_raw": round(pipe_rate / raw_rate, 3),
              "embeddings": c.embedding_name}
    print(json.dumps(result, ensure_ascii=False, indent=1))
    print(f"ratio pipeline/raw encoder = {result['ratio_pipeline_to_raw']:.2f} "
          f"({seconds / 60:.1f} min for {report.chunks} articles)")
    if args.out:
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
