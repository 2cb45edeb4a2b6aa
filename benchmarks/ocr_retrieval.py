"""Retrieval over scanned documents against their text versions (issue #16, evidence): do the same questions find
the same documents when they arrive as scans?

NCP policy documents that have dev questions are rendered to A4 page images (200 dpi, a CJK font, 公文-sized type,
every page of the document) and saved as image-only PDFs, which the product's ingest OCRs (ingest/scanned.py,
RapidOCR). Two knowledge bases in one data directory: `text` holds the whole NCP corpus as text; `scan` holds the
same corpus with the chosen documents replaced by their scans (the other documents stay as distractors, and the
embedding cache makes them cost nothing the second time). Every dev question of a chosen document is asked of both
through the product's HybridSearcher (bm25, dense, hybrid); reported: document-level R@1 / R@5 / MRR@10 per mode
and KB, the scans' 1 - CER (the extracted text against the source, whitespace and punctuation width ignored),
OCR seconds per page.

    PYTHONPATH=. .venv/bin/python benchmarks/ocr_retrieval.py [--docs 12] [--work /tmp/ocr-retrieval]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ocr_quality import DPI, FONT, PT, cer, wrap  # noqa: E402

NCP = ROOT.parent / "shared" / "data" / "ncp"
MODES = ("bm25", "dense", "hybrid")


def render_pages(text: str, size_pt: float = 16):
    """Every page of the text, paragraph per line of the source, first lines indented (as ocr_quality renders one)."""
    from PIL import Image, ImageDraw, ImageFont

    w, h = int(8.27 * DPI), int(11.69 * DPI)
    font = ImageFont.truetype(FONT, int(size_pt * PT))
    margin, pitch = int(0.9 * DPI), int(font.size * 1.75)
    pages, img, y = [], None, h
    for para in (p.strip() for p in text.splitlines()):
        for dx, line in wrap(para, font, w - 2 * margin, 2 * font.size) if para else []:
            if y + pitch > h - margin:
                img = Image.new("RGB", (w, h), "white")
                pages.append(img)
                y = margin
            ImageDraw.Draw(img).text((margin + dx, y), line, font=font, fill="black")
            y += pitch
    return pages


def chosen(docs: int, max_chars: int) -> tuple[list[dict], dict[str, list[dict]]]:
    """The documents with the most dev questions (ties: docid), at most max_chars long; their questions."""
    corpus = {d["docid"]: d for d in map(json.loads, (NCP / "corpus.jsonl").read_text(encoding="utf-8").splitlines())}
    questions = [json.loads(x) for x in (NCP / "dev_qa.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    counts = Counter(q["docid"] for q in questions)
    picks = [d for d, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))
             if d in corpus and len(corpus[d]["text"]) <= max_chars][:docs]
    return [corpus[d] for d in picks], {d: [q for q in questions if q["docid"] == d] for d in picks}


def ranks(c, kb: str, question: str, gold: str, principal) -> dict[str, int | None]:
    out = {}
    for mode in MODES:
        hits = c.search.search(question, [kb], None, 50, principal=principal, mode=mode).hits
        docs = list(dict.fromkeys(h.doc_id for h in hits))
        out[mode] = docs.index(gold) + 1 if gold in docs else None
    return out


def summary(rows: list[dict], key: str, mode: str) -> str:
    rk = [r[key][mode] for r in rows]
    r1 = sum(1 for x in rk if x == 1) / len(rk)
    r5 = sum(1 for x in rk if x and x <= 5) / len(rk)
    mrr = statistics.mean(1 / x if x and x <= 10 else 0.0 for x in rk)
    return f"{r1:.3f} / {r5:.3f} / {mrr:.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=12, help="NCP documents scanned")
    ap.add_argument("--max-chars", type=int, default=3000, help="longest document chosen (pages cost OCR time)")
    ap.add_argument("--distractors", type=int, default=None, help="other NCP documents in both KBs (default: all)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ocr-retrieval"))
    args = ap.parse_args()
    if not (NCP / "corpus.jsonl").is_file():
        raise SystemExit(f"needs the NCP data at {NCP} (../shared/data/ncp)")
    if not Path(FONT).is_file():
        raise SystemExit(f"needs the font {FONT} (Debian fonts-wqy-microhei)")
    shutil.rmtree(args.work, ignore_errors=True)
    (args.work / "scans").mkdir(parents=True)
    os.environ["GOV_ASSISTANT_DATA_DIR"] = str(args.work / "data")
    from assistant.cli.context import container
    from assistant.services.access import LOCAL_ADMIN

    docs, questions = chosen(args.docs, args.max_chars)
    n_pages = 0
    for d in docs:
        pages = render_pages(d["text"])
        n_pages += len(pages)
        pages[0].save(args.work / "scans" / f"{d['docid']}.pdf", save_all=True, append_images=pages[1:],
                      resolution=DPI)
    picked = {d["docid"] for d in docs}
    others = [line for line in (NCP / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
              if line.strip() and json.loads(line)["docid"] not in picked][:args.distractors]
    full, rest = args.work / "text.jsonl", args.work / "rest.jsonl"
    rest.write_text("".join(line + "\n" for line in others), encoding="utf-8")
    full.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs) + rest.read_text(encoding="utf-8"),
                    encoding="utf-8")
    print(f"{len(docs)} documents, {n_pages} pages, {sum(len(q) for q in questions.values())} questions",
          file=sys.stderr)
    c = container()

    def progress(phase, done, total, detail=""):
        print(f"\r  {phase} {done}/{total or '?'} {detail[:50]:<50}", end="", file=sys.stderr, flush=True)

    c.knowledge_bases.ingest_paths("text", [str(full)], progress, principal=LOCAL_ADMIN)
    c.knowledge_bases.ingest_paths("scan", [str(rest)], progress, principal=LOCAL_ADMIN)
    t0 = time.perf_counter()
    report = c.knowledge_bases.ingest_paths("scan", sorted(str(p) for p in (args.work / "scans").glob("*.pdf")),
                                            progress, principal=LOCAL_ADMIN)
    ocr_s = time.perf_counter() - t0
    print(file=sys.stderr)
    scan_id = {}
    for r in report.results:
        if r.status == "failed":
            raise SystemExit(f"{r.source}: {r.message}")
        scan_id[Path(r.source).stem] = r.doc_id
    rows, accs = [], []
    for d in docs:
        extracted = c.originals.passage("scan", scan_id[d["docid"]], principal=LOCAL_ADMIN)["text"]
        accs.append(1 - cer(d["text"], extracted))
        for q in questions[d["docid"]]:
            rows.append({"q": q["question"], "text": ranks(c, "text", q["question"], d["docid"], LOCAL_ADMIN),
                         "scan": ranks(c, "scan", q["question"], scan_id[d["docid"]], LOCAL_ADMIN)})
    out = {"docs": len(docs), "pages": n_pages, "questions": len(rows),
           "ocr_s_per_page": round(ocr_s / max(n_pages, 1), 2),
           "scan_accuracy_mean": round(statistics.mean(accs), 4), "scan_accuracy_min": round(min(accs), 4),
           **{f"{kb}_{mode}": summary(rows, kb, mode) for kb in ("text", "scan") for mode in MODES}}
    (args.work / "results.json").write_text(json.dumps({"summary": out, "rows": rows}, ensure_ascii=False, indent=1),
                                            encoding="utf-8")
    print(f"{out['docs']} documents scanned ({out['pages']} pages, OCR + ingest {out['ocr_s_per_page']} s/page), "
          f"1 - CER mean {out['scan_accuracy_mean']:.4f}, worst {out['scan_accuracy_min']:.4f}; "
          f"{out['questions']} questions")
    print(f"{'mode':8s} {'text: R@1 / R@5 / MRR@10':>28s} {'scan: R@1 / R@5 / MRR@10':>28s}")
    for mode in MODES:
        print(f"{mode:8s} {out['text_' + mode]:>28s} {out['scan_' + mode]:>28s}")
    changed = [r for r in rows if r["text"]["hybrid"] != r["scan"]["hybrid"]]
    for r in changed:
        print(f"  hybrid rank {r['text']['hybrid']} -> {r['scan']['hybrid']}: {r['q']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
