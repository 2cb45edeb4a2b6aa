"""Structured summaries and action items of NCP policy documents (issue #13, 5): failures, 要点 per document, the
share of 要点 traced to a section, 涉及金额/指标 that hold a figure, and "≥ 3 sections → ≥ 3 要点", per style.

    python benchmarks/summarize_ncp.py --docs 50                      # default profile (the 1.5B model)
    python benchmarks/summarize_ncp.py -p fast --docs 50 --styles structured

Documents: a seeded sample of ../shared/data/ncp/corpus.jsonl (read, never copied into the repo), split by a
question-id-free rule into two halves (even / odd position in the sample) reported apart, so a prompt tuned on
what one half showed is checked on the other. Each style goes through `SummarizeService.summarize_paths` (the batch
path: resumable — run the same command again to continue). A 要点 is *traced* when it names a section of its
document and at least half of its character bigrams are in that section's text (or it is that section's lead
sentence, marked extracted); a 涉及金额/指标 item holds a figure when the atom extractor finds one the document states.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "ncp" / "corpus.jsonl"
STYLES = ("structured", "action-items")


def sample_documents(path: Path, n: int, seed: int, min_chars: int) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if len(r.get("text", "")) >= min_chars]
    picked = sorted(random.Random(seed).sample(range(len(rows)), min(n, len(rows))))
    return [{"id": f"ncp-{rows[i]['docid']}", "text": rows[i]["text"], "half": "even" if k % 2 == 0 else "odd"}
            for k, i in enumerate(picked)]


def _bigrams(text: str) -> set[str]:
    text = "".join(text.split())
    return {text[i:i + 2] for i in range(len(text) - 1)}


def section_texts(text: str, svc, style: str) -> dict[str, str]:
    """Section id → text, cut exactly as the service cut the document (the record keeps ids and headings only)."""
    from assistant.services.summarize import _text_blocks
    from assistant.services.summary_format import make_sections

    budget = svc.section_chars(style)
    sections = make_sections(_text_blocks(text), max_chars=max(budget - min(160, budget // 4), 120),
                             min_chars=svc.settings.chunking.min_chars)
    return {s.id: f"{s.heading}\n{s.text}" for s in sections}


def traced(text: str, ids: list[str], sections: dict[str, str]) -> bool:
    grams = _bigrams(text)
    if not grams or not ids or any(i not in sections for i in ids):
        return False
    held = set().union(*(_bigrams(sections[i]) for i in ids))
    return len(grams & held) / len(grams) >= 0.5


def measure(records: list[dict], docs: dict[str, dict], svc, style: str) -> dict:
    from assistant.grounding.atoms import Evidence
    from assistant.services.summary_format import figure_supported

    ok = [r for r in records if r.get("status") == "ok"]
    out = {"n": len(records), "failed": len(records) - len(ok),
           "errors": [r.get("error", "")[:120] for r in records if r.get("status") != "ok"][:5]}
    if not ok:
        return out
    if style == "structured":
        counts, tr, extracted, total, fig_ok, figs, big, big_ok = [], 0, 0, 0, 0, 0, 0, 0
        for r in ok:
            doc = docs[r["doc_id"]]
            sections = section_texts(doc["text"], svc, style)
            points = r["summary"].get("points", [])
            counts.append(len(points))
            total += len(points)
            tr += sum(traced(p["text"], p.get("sections", []), sections) for p in points)
            extracted += sum(bool(p.get("extracted")) for p in points)
            evidence = Evidence.of(doc["text"])
            for f in r["summary"].get("figures", []):
                figs += 1
                fig_ok += figure_supported(f["text"], evidence)
            if len(r.get("sections", [])) >= 3:
                big += 1
                big_ok += len(points) >= 3
        out.update({"points_median": statistics.median(counts), "points_min": min(counts),
                    "points_traced": round(tr / total, 3) if total else None,
                    "points_extracted": round(extracted / total, 3) if total else None,
                    "figures": figs, "figures_with_figure": round(fig_ok / figs, 3) if figs else None,
                    "docs_3plus_sections": big, "of_them_3plus_points": big_ok})
    else:
        rows = [(r, it) for r in ok for it in r["summary"].get("items", [])]
        tr = sum(traced(it["task"], it.get("sections", []), section_texts(docs[r["doc_id"]]["text"], svc, style))
                 for r, it in rows)
        out.update({"items_median": statistics.median(len(r["summary"].get("items", [])) for r in ok),
                    "items": len(rows), "items_traced": round(tr / len(rows), 3) if rows else None,
                    "items_unverified": sum(bool(it.get("unverified")) for _, it in rows)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=2333)
    ap.add_argument("--min-chars", type=int, default=400, help="documents shorter than this are left out")
    ap.add_argument("--styles", default=",".join(STYLES))
    ap.add_argument("-p", "--profile", default=None)
    ap.add_argument("-j", "--concurrency", type=int, default=None)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "summarize_ncp")
    args = ap.parse_args()

    from assistant.container import Container
    from assistant.settings import load_settings

    styles = [s.strip() for s in args.styles.split(",") if s.strip()]
    docs = sample_documents(args.data, args.docs, args.seed, args.min_chars)
    c = Container(load_settings(args.profile))
    svc = c.summarize
    results = {"model": c.model_name, "command": " ".join(sys.argv), "docs": len(docs), "styles": {}}
    for style in styles:
        svc.check_style(style)
        out = args.out / style
        out.mkdir(parents=True, exist_ok=True)
        src = out / "ncp_docs.jsonl"
        src.write_text("".join(json.dumps({"id": d["id"], "text": d["text"]}, ensure_ascii=False) + "\n"
                               for d in docs), encoding="utf-8")
        t0 = time.perf_counter()

        def progress(phase: str, done: int, total: int | None, detail: str = "") -> None:
            print(f"\r{style} {done}/{total} {detail[:50]:<50}", end="", file=sys.stderr, flush=True)

        try:
            report = svc.summarize_paths([src], out, style, args.concurrency, None, progress)
        except KeyboardInterrupt:
            print(f"\ninterrupted: finished documents are kept in {out}; run the same command again to continue",
                  file=sys.stderr)
            return 130
        print(file=sys.stderr)
        fingerprint = svc.fingerprint(style)
        by_id = {d["id"]: d for d in docs}
        latest: dict[str, dict] = {}
        for line in (out / "summaries.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("fingerprint", fingerprint) == fingerprint and rec.get("doc_id") in by_id:
                latest[rec["doc_id"]] = rec
        results["styles"][style] = {"seconds": round(time.perf_counter() - t0, 1), "counts": report["counts"]}
        for half in ("all", "even", "odd"):
            recs = [latest.get(d["id"], {"status": "missing", "doc_id": d["id"]}) for d in docs
                    if half == "all" or d["half"] == half]
            results["styles"][style][half] = measure(recs, by_id, svc, style)
            print(f"{style:<13}{half:<5}", json.dumps(results["styles"][style][half], ensure_ascii=False))
    (args.out / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"results: {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
