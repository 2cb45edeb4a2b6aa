"""ROUGE-L of the summarizer's brief style (issue #5) against published references, through the real batch path.

    python benchmarks/summarize_rouge.py --lawbench 40 --crud 20            # default profile: the 1.5B model
    python benchmarks/summarize_rouge.py -p fast --lawbench 500 --crud 100   # the 0.5B model, everything

Data (read from ../shared/data/summaries, never copied): LawBench 2-7 (legal news `question` → one-sentence `answer`,
the first N items in file order) and CRUD-RAG event summaries (news `text` (with its `title`) → `summary`, a seeded
sample of N, the same sampling as eval/suites/summaries.py). Each item becomes a record of a .jsonl input and goes
through `SummarizeService.summarize_paths(style="brief")`, so the run is resumable: run it again to continue, or in
several bounded runs. Scores: ROUGE-L F ×100 at character level (eval.metrics.rouge_l, tokenize="char": the headline
figure), at jieba word level, and with LawBench's own scorer (jieba tokens + rouge-chinese: the scale of its
published zero-shot figures — GPT-4 37.92, qwen-7b-chat 36.04), next to a LEAD baseline (the source's first
sentences up to the same length, no model) that says how much of the score extraction of the lead explains.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "summaries"
PUBLISHED = "LawBench 2-7 zero-shot ROUGE-L (word level): GPT-4 37.92, GPT-3.5 33.49, qwen-7b-chat 36.04"


def lead_baseline(text: str, target: int) -> str:
    """LEAD: the source's first sentences up to the length the brief style asks for (no model)."""
    from ingest.chunking import split_sentences

    out = ""
    for sentence in split_sentences(text):
        if out and len(out) + len(sentence) > target:
            break
        out += sentence
    return out[: max(target, 1) * 2]


def build_inputs(data: Path, out: Path, n_lawbench: int, n_crud: int, seed: int) -> tuple[list[Path], dict]:
    """Write lawbench.jsonl / crud.jsonl inputs; return them and {doc_id: (set, reference)}."""
    refs: dict[str, tuple[str, str, str]] = {}   # doc_id -> (set, reference, source text)
    inputs = []
    if n_lawbench:
        rows = json.loads((data / "lawbench_2-7.json").read_text(encoding="utf-8"))[:n_lawbench]
        path = out / "lawbench.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for i, r in enumerate(rows):
                f.write(json.dumps({"id": f"lawbench-{i}", "text": r["question"]}, ensure_ascii=False) + "\n")
                refs[f"lawbench-{i}"] = ("lawbench", r["answer"], r["question"])
        inputs.append(path)
    if n_crud:
        rows = json.loads((data / "crud_event_summary.json").read_text(encoding="utf-8"))
        picked = sorted(random.Random(seed).sample(range(len(rows)), min(n_crud, len(rows))))
        path = out / "crud.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for i in picked:
                r = rows[i]
                doc_id = f"crud-{r.get('ID') or i}"
                f.write(json.dumps({"id": doc_id, "title": r.get("title", ""), "text": r["text"]},
                                   ensure_ascii=False) + "\n")
                refs[doc_id] = ("crud", r["summary"], r["text"])
        inputs.append(path)
    return inputs, refs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lawbench", type=int, default=40, help="first N LawBench 2-7 items (0: none)")
    ap.add_argument("--crud", type=int, default=20, help="seeded sample of N CRUD event summaries (0: none)")
    ap.add_argument("--seed", type=int, default=2333)
    ap.add_argument("-p", "--profile", default=None, help="settings profile (default: configs/default.yaml)")
    ap.add_argument("-j", "--concurrency", type=int, default=None)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "summarize_rouge")
    args = ap.parse_args()

    from assistant.container import Container
    from assistant.services.summarize import score_summaries
    from assistant.settings import load_settings

    args.out.mkdir(parents=True, exist_ok=True)
    inputs, refs = build_inputs(args.data, args.out, args.lawbench, args.crud, args.seed)
    c = Container(load_settings(args.profile))
    svc = c.summarize
    t0 = time.perf_counter()

    def progress(phase: str, done: int, total: int | None, detail: str = "") -> None:
        print(f"\r{done}/{total} {detail[:50]:<50}", end="", file=sys.stderr, flush=True)

    try:
        report = svc.summarize_paths(inputs, args.out, "brief", args.concurrency, None, progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished items are kept in {args.out / 'summaries.jsonl'}; run the same command "
              "again to continue", file=sys.stderr)
        return 130
    print(file=sys.stderr)
    fingerprint = svc.fingerprint("brief")
    latest: dict[str, dict] = {}
    for line in (args.out / "summaries.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("fingerprint") == fingerprint and rec.get("doc_id") in refs:
            latest[rec["doc_id"]] = rec
    results = {"model": c.model_name, "style": "brief", "fingerprint": fingerprint,
               "command": " ".join(sys.argv), "run": {k: report[k] for k in ("counts", "seconds", "concurrency")},
               "published": PUBLISHED, "sets": {}}
    print(f"model {c.model_name} · brief style · {report['counts']} in {time.perf_counter() - t0:.0f}s")
    print(f"{'set':<10}{'n':>4}{'failed':>7}{'ROUGE-L char':>13}{'jieba':>7}{'rouge-chinese':>14}{'LEAD char':>10}"
          f"{'pred chars':>11}{'ref chars':>10}")
    for name in ("lawbench", "crud"):
        ids = [d for d, (s, _, _) in refs.items() if s == name]
        if not ids:
            continue
        preds = [latest.get(d, {"status": "missing", "summary": {}}) for d in ids]
        gold = [refs[d][1] for d in ids]
        char = score_summaries(preds, gold, "char")
        word = score_summaries(preds, gold, "jieba")
        try:   # LawBench's own scorer (jieba + rouge-chinese): the published figures are on this scale
            official = score_summaries(preds, gold, "lawbench")["rouge_l"]
        except ImportError as exc:
            official = None
            print(f"({exc})", file=sys.stderr)
        failed = sum(p.get("status") != "ok" for p in preds)
        lead = score_summaries([lead_baseline(refs[d][2], svc._brief_target(len(refs[d][2]))) for d in ids],
                               gold, "char")
        ref_chars = sum(map(len, gold)) / len(gold)
        print(f"{name:<10}{len(ids):>4}{failed:>7}{char['rouge_l']:>13.2f}{word['rouge_l']:>7.2f}"
              f"{official if official is not None else float('nan'):>14.2f}{lead['rouge_l']:>10.2f}"
              f"{char['mean_chars']:>11.1f}{ref_chars:>10.1f}")
        results["sets"][name] = {"n": len(ids), "failed": failed, "rouge_l_char": char["rouge_l"],
                                 "rouge_l_jieba": word["rouge_l"], "rouge_l_rouge_chinese": official,
                                 "lead_rouge_l_char": lead["rouge_l"],
                                 "mean_pred_chars": char["mean_chars"],
                                 "mean_ref_chars": round(ref_chars, 1),
                                 "mean_ms": round(sum(p.get("timings", {}).get("total_ms", 0) for p in preds)
                                                  / len(preds), 1)}
    print(PUBLISHED)
    (args.out / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"predictions: {args.out / 'summaries.jsonl'}; scores: {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
