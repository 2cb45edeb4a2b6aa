"""n-gram speculative decoding on the local model, side by side: the same answers with each `llm.local.speculative`
mode, rounds in alternating order (ABBA) so that machine noise falls on every mode alike.

    GOV_ASSISTANT_DATA_DIR=./data python benchmarks/speculative.py [--profile fast] [--kb demo] [-n 8] [--rounds 2]

Prints, per mode, the median decode speed (completion tokens / generation time after the first token), median
total time, the ratio to `none`, and how many answers differ from `none` (greedy decoding: speculation that is
verified token by token should change nothing but speed). From the second round on, llama.cpp's prompt cache
holds each prompt, so totals shrink for every mode alike; compare decode speeds.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics

from assistant.container import Container
from assistant.demo import build_demo
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import PROJECT_ROOT, load_settings

MODES = ("none", "ngram_simple", "ngram_map_k", "ngram_mod")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--kb", default=None)
    ap.add_argument("-n", type=int, default=8, help="answerable sample questions")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--modes", default=",".join(MODES))
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    containers = {m: Container(load_settings(args.profile, environ={**os.environ,
                                                                    "GOV_ASSISTANT_LLM__LOCAL__SPECULATIVE": m}))
                  for m in modes}
    first = containers[modes[0]]
    kb = args.kb or first.settings.demo.kb
    if first.store.catalog.get_kb(kb) is None:
        build_demo(first)
    questions = [q["question"] for q in map(json.loads, (PROJECT_ROOT / "samples" / "questions.jsonl").read_text(
        encoding="utf-8").splitlines()) if not q.get("must_refuse")][:args.n]
    for m in modes:                       # load each model once, untimed
        containers[m].qa.ask(questions[0], [kb], principal=LOCAL_ADMIN)
    rows: dict[str, list[dict]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for m in (modes if r % 2 == 0 else list(reversed(modes))):
            for i, q in enumerate(questions):
                a = containers[m].qa.ask(q, [kb], principal=LOCAL_ADMIN)
                t, out = a.timings, a.usage.get("output_tokens", 0)
                gen_s = (t.get("llm_ms", 0) - (t.get("first_token_ms", 0) - t.get("retrieval_ms", 0))) / 1000
                rows[m].append({"q": i, "answer": a.answer, "total": t["total_ms"] / 1000,
                                "decode": out / gen_s if gen_s > 0 and out > 1 else None})
                print(f"round {r + 1} {m:13s} q{i + 1}: total {t['total_ms'] / 1000:5.1f}s, {out:3d} tokens", flush=True)
    base = {(row["q"]): row["answer"] for row in rows["none"]} if "none" in rows else {}
    ref_decode = ref_total = None
    print(f"\nmodel {first.model_name}, {len(questions)} questions x {args.rounds} rounds")
    for m in modes:
        decode = statistics.median(x["decode"] for x in rows[m] if x["decode"])
        total = statistics.median(x["total"] for x in rows[m])
        if m == "none":
            ref_decode, ref_total = decode, total
        differ = sum(1 for x in rows[m] if base and x["answer"] != base[x["q"]])
        ratio = f"decode x{decode / ref_decode:.2f}, total x{ref_total / total:.2f} faster" if ref_decode else ""
        print(f"{m:13s} decode {decode:5.1f} tok/s  total {total:5.1f}s  {ratio}  answers differing from none: {differ}")


if __name__ == "__main__":
    main()
