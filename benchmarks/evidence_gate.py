"""Calibrate the evidence gate: how often it answers in-scope questions and refuses out-of-scope ones, with query
terms counted equally (uniform) and weighted by rarity (idf, `retrieval.coverage_weighting`), side by side.

    GOV_ASSISTANT_DATA_DIR=... python benchmarks/evidence_gate.py --kb ncp [-n 120] [--offset 0] [--custom-kb demo]

In scope: NCP dev questions over a KB built from ncp/corpus.jsonl (`gov-assistant ingest ../shared/data/ncp/corpus.jsonl
--kb ncp`). Out of scope: RGB news questions over the same KB. Prints the best dense similarity and query-term
coverage among the top passages for both sets, and the answer/refusal rates over a grid of thresholds.
`--offset K` takes the questions after the first K of each set: thresholds read off the default first 120 are
checked out of sample with `--offset 120`.
`--custom-kb KB` adds the gate's decision on each question of samples/questions.jsonl (must_refuse marks the
near-scope questions the KB has no answer for) against that KB (the demo KB: `gov-assistant demo --no-serve`).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from assistant.container import Container
from assistant.services.access import LOCAL_ADMIN, scope
from assistant.settings import PROJECT_ROOT, load_settings

DATA = PROJECT_ROOT.parent / "shared" / "data"
WEIGHTINGS = {"uniform": None, "idf": "idf"}


def features(c: Container, kb: str, questions: list[str]) -> np.ndarray:
    out = []
    for q in questions:
        hits = c.searcher.search(q, [kb], scope(LOCAL_ADMIN, [kb])[1], c.settings.retrieval.top_k).hits
        out.append((max((h.dense_score or 0.0) for h in hits) if hits else 0.0,
                    max((h.coverage for h in hits), default=0.0)))
    return np.array(out)


def grid(a: np.ndarray, b: np.ndarray, configured: tuple[float, float]) -> None:
    for td in (0.86, 0.88, 0.90, 0.92):
        for tc in (0.35, 0.5, 0.6, 0.7):
            ans = np.mean((a[:, 0] >= td) | (a[:, 1] >= tc))
            ref = np.mean(~((b[:, 0] >= td) | (b[:, 1] >= tc)))
            mark = "  <- configured" if (td, tc) == configured else ""
            print(f"  dense>={td:.2f} or coverage>={tc:.2f}: answers {ans:.3f} in scope, "
                  f"refuses {ref:.3f} out of scope{mark}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", default="ncp")
    ap.add_argument("-n", type=int, default=120)
    ap.add_argument("--offset", type=int, default=0, help="skip the first K questions of each set (held-out check)")
    ap.add_argument("--data", type=str, default=str(DATA))
    ap.add_argument("--custom-kb", default=None, help="also decide samples/questions.jsonl against this KB")
    args = ap.parse_args()
    c = Container(load_settings())
    s = c.settings.retrieval
    configured = (s.min_dense_similarity, s.min_term_coverage)
    ncp = [json.loads(line)["question"] for line in open(f"{args.data}/ncp/dev_qa.jsonl", encoding="utf-8")]
    rgb = [json.loads(line)["query"] for line in open(f"{args.data}/rgb/zh_refine.json", encoding="utf-8")]
    if not (0 <= args.offset < min(len(ncp), len(rgb))) or args.n < 1:
        ap.error(f"--offset {args.offset} -n {args.n} selects no questions: NCP has {len(ncp)}, RGB {len(rgb)}")
    inside, outside = ncp[args.offset:args.offset + args.n], rgb[args.offset:args.offset + args.n]
    print(f"{len(inside)} in-scope (NCP) and {len(outside)} out-of-scope (RGB) questions from #{args.offset}")
    samples = [json.loads(line) for line in open(PROJECT_ROOT / "samples" / "questions.jsonl", encoding="utf-8")]
    for name, weighting in WEIGHTINGS.items():
        s.coverage_weighting = weighting
        a, b = features(c, args.kb, inside), features(c, args.kb, outside)
        print(f"== coverage weighting: {name}")
        for label, x in (("in scope", a), ("out of scope", b)):
            print(f"  {label:12s} dense p5/p50/p95 {np.percentile(x[:, 0], [5, 50, 95]).round(3)}  "
                  f"coverage p5/p50/p95 {np.percentile(x[:, 1], [5, 50, 95]).round(3)}")
        grid(a, b, configured)
        if args.custom_kb:
            f = features(c, args.custom_kb, [q["question"] for q in samples])
            passed = (f[:, 0] >= configured[0]) | (f[:, 1] >= configured[1])
            must = np.array([bool(q.get("must_refuse")) for q in samples])
            print(f"  samples on {args.custom_kb}: answers {passed[~must].sum()}/{(~must).sum()} answerable, "
                  f"refuses {(~passed[must]).sum()}/{must.sum()} must-refuse")
            for q, (d, cov), p, m in zip(samples, f, passed, must):
                if m or not p:
                    print(f"    {'refuse' if not p else 'answer'} (dense {d:.3f}, coverage {cov:.2f})"
                          f"{' must_refuse' if m else ''}: {q['question']}")


if __name__ == "__main__":
    main()
