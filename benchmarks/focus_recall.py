"""How much of the gold answer the prompt still shows after the focus cut (`answer.focus_chars`), replayed without the
model on NCP dev: for each dev question that retrieval and screening let through, the context the answer prompt
would hold (the shipped passages, cut by the focus of each configuration in RULES: `answer.focus_chars` each, or
`answer.focus_total_chars` shared in rank order) is compared with the gold answer: "kept" when ≥ 80% of
the gold is one run of characters in it, and the mean share of the gold's characters in that longest run (the
ceiling of an answer's character F1). Whole passages (no focus) and the top 5 hits' whole text are the bounds.
Halves by question id parity (even: the one a rule is picked on, odd: held out), reported apart.

    GOV_ASSISTANT_DATA_DIR=… python benchmarks/focus_recall.py --kb eval-ncp [--limit 300] [--rules shipped,…]

A knowledge base of the NCP corpus: the NCP suite's (`gov-assistant eval run --suite ncp --retrieval-only`) or one
built with `gov-assistant ingest ../shared/data/ncp/corpus.jsonl --kb ncp`.
"""
from __future__ import annotations

import argparse
import json
import sys
from difflib import SequenceMatcher
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.container import Container  # noqa: E402
from assistant.services.access import LOCAL_ADMIN, scope  # noqa: E402
from assistant.settings import load_settings  # noqa: E402
from assistant.text_metrics import normalize_answer  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "ncp" / "dev_qa.jsonl"


def longest_run(gold: str, text: str) -> float:
    """The share of gold's characters in its longest run of characters found in text (both normalised)."""
    g, t = normalize_answer(gold), normalize_answer(text)
    if not g:
        return 0.0
    m = SequenceMatcher(None, g, t, autojunk=False).find_longest_match(0, len(g), 0, len(t))
    return m.size / len(g)


# name → answer settings compared with the shipped ones ("shipped": as loaded)
RULES = {"shipped": {},
         "150 each": {"focus_chars": 150, "focus_total_chars": 0},
         "600 shared / 100 sure": {"focus_chars": 100, "focus_total_chars": 600},
         "450 shared / 75 sure": {"focus_chars": 75, "focus_total_chars": 450},
         "340 shared / 60 sure": {"focus_chars": 60, "focus_total_chars": 340}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", required=True)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--rules", default=",".join(RULES), help=f"configurations to compare: {'; '.join(RULES)}")
    ap.add_argument("--dev", type=Path, default=DEV)
    args = ap.parse_args()
    c = Container(load_settings(args.profile))
    answerer = c.answerer
    if c.store.catalog.get_kb(args.kb) is None:
        raise SystemExit(f"knowledge base {args.kb!r} does not exist (data dir {c.settings.data_dir})")
    if not args.dev.is_file():
        raise SystemExit(f"{args.dev}: no such file (NCP dev questions, ../shared/data/ncp/dev_qa.jsonl)")
    rules = args.rules.split(",")
    if unknown := [r for r in rules if r not in RULES]:
        raise SystemExit(f"--rules: unknown {', '.join(unknown)} (known: {', '.join(RULES)})")
    questions = [json.loads(line) for line in args.dev.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = questions[:args.limit]
    shipped = answerer.settings.answer
    rows = []
    for i, q in enumerate(questions, 1):
        result = answerer.searcher.search(q["question"], *scope(LOCAL_ADMIN, [args.kb]))
        print(f"\r{i}/{len(questions)}", end="", file=sys.stderr, flush=True)
        if not answerer.searcher.has_evidence(result.hits):
            continue
        screened = answerer.screen(q["question"], result.hits)
        if screened.refusal is not None:
            continue
        row = {"half": "even" if int(q["id"], 16) % 2 == 0 else "odd",
               "top 5 whole": longest_run(q["answer"], "".join(h.text for h in result.hits[:5])),
               "prompted whole": longest_run(q["answer"], "".join(h.text for h in answerer.prompted(screened.hits)))}
        for rule in rules:
            answerer.settings.answer = shipped.model_copy(update=RULES[rule])
            context, _ = answerer.build_context(screened.hits, q["question"])
            row[rule] = longest_run(q["answer"], context)
            row[rule + " chars"] = len(context)
        answerer.settings.answer = shipped
        rows.append(row)
    print(file=sys.stderr)
    print(f"{len(rows)} of {len(questions)} dev questions reach the prompt (kb {args.kb}); "
          f"focus_chars {c.settings.answer.focus_chars}, max_passages {c.settings.answer.max_passages}, "
          f"max_context_chars {c.settings.answer.max_context_chars}")
    print(f"{'':16} {'kept even':>10} {'kept odd':>9} {'share even':>11} {'share odd':>10} {'prompt chars':>13}")
    for column in ["top 5 whole", "prompted whole", *rules]:
        cells = []
        for half in ("even", "odd"):
            rs = [r for r in rows if r["half"] == half]
            cells.append((sum(r[column] >= 0.8 for r in rs), len(rs), sum(r[column] for r in rs) / max(len(rs), 1)))
        chars = sum(r.get(column + " chars", 0) for r in rows) / max(len(rows), 1)
        print(f"{column:16} {cells[0][0]:>4}/{cells[0][1]:<5} {cells[1][0]:>4}/{cells[1][1]:<4} "
              f"{cells[0][2]:>11.3f} {cells[1][2]:>10.3f} {chars if column in rules else float('nan'):>13.0f}")


if __name__ == "__main__":
    main()
