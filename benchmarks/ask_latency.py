"""Time to first token and total time of `ask` on the configured model, over the sample questions.

    GOV_ASSISTANT_DATA_DIR=./data python benchmarks/ask_latency.py [--profile fast] [--kb demo] [-n 6]

Builds the demo knowledge base first if it is missing (idempotent). Prints per-question timings, the medians,
and prompt/completion token counts; the first question also pays for loading the model.
"""
from __future__ import annotations

import argparse
import json
import statistics

from assistant.container import Container
from assistant.demo import build_demo
from assistant.settings import PROJECT_ROOT, load_settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--kb", default=None)
    ap.add_argument("-n", type=int, default=6)
    args = ap.parse_args()
    c = Container(load_settings(args.profile))
    kb = args.kb or c.settings.demo.kb
    if c.store.catalog.get_kb(kb) is None:
        build_demo(c)
    questions = [json.loads(line) for line in (PROJECT_ROOT / "samples" / "questions.jsonl").read_text().splitlines()
                 if line.strip()][:args.n]
    rows = []
    for i, q in enumerate(questions):
        a = c.qa.ask(q["question"], [kb])
        t = a.timings
        rows.append(t)
        print(f"{i + 1}. ttft {t.get('first_token_ms', 0) / 1000:5.1f}s total {t['total_ms'] / 1000:5.1f}s "
              f"prompt {a.usage.get('input_tokens', 0):4d} tok, completion {a.usage.get('output_tokens', 0):3d} tok "
              f"refused={a.refused} | {q['question']}", flush=True)
    warm = [r for r in rows[1:] if "first_token_ms" in r] or rows
    print(f"model {c.model_name}: median (excluding the first, model-loading call) "
          f"ttft {statistics.median(r.get('first_token_ms', 0) for r in warm) / 1000:.1f}s, "
          f"total {statistics.median(r['total_ms'] for r in warm) / 1000:.1f}s over {len(warm)} questions")


if __name__ == "__main__":
    main()
