"""How far `answer.min_relative_coverage` shortens the prompt, and what it costs, replayed without the model on
NCP dev: for every dev question whose gold document the knowledge base holds and that screening lets through,
the passages the prompt would show (answer.max_passages, less those under t x the best one's share of the
question's idf weight) at each threshold t, the characters they take (each capped at answer.focus_chars, as the
focus cuts them) and whether the gold document is still among them. Halves by question id parity (even: the
one a threshold is picked on, odd: held out), reported apart.

    GOV_ASSISTANT_DATA_DIR=… python benchmarks/prompt_cutoff.py --kb eval-rejection [--limit 600]
        [--thresholds 0.5,0.6,0.7,0.75,0.8,0.9]

A knowledge base of the NCP corpus is any: the rejection suite's (`gov-assistant eval run --suite rejection`,
which leaves out its absent questions' documents: those questions are skipped here) or one built with
`gov-assistant ingest ../shared/data/ncp/corpus.jsonl --kb ncp`. Gold kept in the prompt is a proxy: an answer
that needs a second passage is measured end to end (`eval run --suite rejection`, F1 of present answers).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.answering import relevant_passages  # noqa: E402
from assistant.container import Container  # noqa: E402
from assistant.services.access import LOCAL_ADMIN, scope  # noqa: E402
from assistant.settings import load_settings  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "ncp" / "dev_qa.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", required=True)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--thresholds", default="0.5,0.6,0.7,0.75,0.8,0.9")
    ap.add_argument("--dev", type=Path, default=DEV)
    args = ap.parse_args()
    c = Container(load_settings(args.profile))
    answerer, a = c.answerer, c.settings.answer
    if c.store.catalog.get_kb(args.kb) is None:
        raise SystemExit(f"knowledge base {args.kb!r} does not exist (data dir {c.settings.data_dir})")
    if not args.dev.is_file():
        raise SystemExit(f"{args.dev}: no such file (NCP dev questions, ../shared/data/ncp/dev_qa.jsonl)")
    stored = {d["doc_id"] for d in c.store.catalog.list_documents(args.kb) if d["state"] == "complete"}
    questions = [json.loads(line) for line in args.dev.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [q for q in questions if q["docid"] in stored][:args.limit]
    rows = []
    for i, q in enumerate(questions, 1):
        result = answerer.searcher.search(q["question"], *scope(LOCAL_ADMIN, [args.kb]))
        if answerer.searcher.has_evidence(result.hits):
            screened = answerer.screen(q["question"], result.hits)
            if screened.refusal is None:
                hits = screened.hits[:a.max_passages or None]
                rows.append({"half": "even" if int(q["id"], 16) % 2 == 0 else "odd", "hits": hits,
                             "gold": q["docid"]})
        print(f"\r{i}/{len(questions)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    print(f"{len(rows)} of {len(questions)} dev questions reach the prompt (kb {args.kb}); "
          f"configured min_relative_coverage {a.min_relative_coverage}")
    print(f"{'half':5} {'t':>5} {'gold in prompt':>15} {'lost':>5} {'passages':>9} {'chars':>6} {'ratio':>6}")
    for half in ("even", "odd"):
        rs = [r for r in rows if r["half"] == half]
        if not rs:
            continue
        base_gold = base_chars = 0
        for t in [0.0] + thresholds:
            gold = chars = n = 0
            for r in rs:
                keep = relevant_passages(r["hits"], t)
                gold += any(h.doc_id == r["gold"] for h in keep)
                chars += sum(min(len(h.text), a.focus_chars or len(h.text)) for h in keep)
                n += len(keep)
            if not t:
                base_gold, base_chars = gold, chars
            print(f"{half:5} {t:5.2f} {gold:7d} / {len(rs):<5d} {gold - base_gold:+5d} {n / len(rs):9.2f} "
                  f"{chars / len(rs):6.0f} {chars / base_chars:6.2f}")


if __name__ == "__main__":
    main()
