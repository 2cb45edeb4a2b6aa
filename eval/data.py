"""Readers for the evaluation data sets. Each reader checks the format and names the file and line on error.

Formats (defaults under ../shared/data; any path works):
- ncp: a folder with `corpus.jsonl` ({"docid", "text"} per line) and `dev_qa.jsonl` ({"id", "docid", "question",
  "answer"} per line; the answer is a span of the gold document).
- rgb: RGB `zh_refine.json`, JSON lines {"id", "query", "answer": [str | [alternatives]], "positive": [str],
  "negative": [str]}.
- summaries: a folder with `lawbench_2-7.json` (list of {"instruction", "question": source, "answer": reference})
  and/or `crud_event_summary.json` (list of {"ID", "text": source, "summary": reference, "title", ...}); or one of
  those files.
- custom: JSONL {"question", "answer"?, "gold_doc_ids"?: [str], "gold_file"? | "gold_files"?: [str],
  "must_refuse"?: bool, "id"?}. `gold_file` is an alias resolved against the knowledge base (document source file
  name, source path or title).
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from assistant.settings import PROJECT_ROOT

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
DEFAULT_PATHS = {
    "ncp": SHARED_DATA / "ncp",
    "rgb": SHARED_DATA / "rgb" / "zh_refine.json",
    "summaries": SHARED_DATA / "summaries",
    "custom": PROJECT_ROOT / "samples" / "questions.jsonl",
    "laws": PROJECT_ROOT / "samples" / "law_questions.jsonl",
}


class DataError(ValueError):
    """An evaluation data file is missing or malformed; the message names it."""


def read_jsonl(path: Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{lineno}: each line must be a JSON object")
            rows.append(rec)
    return rows


def read_json_or_jsonl(path: Path) -> list[dict]:
    """A JSON list, or JSON lines."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    text = path.read_text(encoding="utf-8-sig").lstrip()
    if text.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: invalid JSON ({exc.msg})") from None
        if not all(isinstance(r, dict) for r in data):
            raise DataError(f"{path}: expected a list of objects")
        return data
    return read_jsonl(path)


def _need(rec: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if rec.get(k) in (None, "", [])]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")


# --- ncp -------------------------------------------------------------------------------------------------

@dataclass
class NCPData:
    corpus: Path
    questions: list[dict]
    twins: dict[str, set[str]] = field(default_factory=dict)  # doc id -> ids of documents with identical text


def load_ncp(path: Path | None) -> NCPData:
    root = Path(path or DEFAULT_PATHS["ncp"])
    corpus, qa = (root / "corpus.jsonl", root / "dev_qa.jsonl") if root.is_dir() else (None, None)
    if corpus is None or not corpus.is_file() or not qa.is_file():
        raise DataError(f"ncp data: expected a folder with corpus.jsonl and dev_qa.jsonl, got {root}")
    by_text: dict[str, list[str]] = {}
    ids: set[str] = set()
    for i, rec in enumerate(read_jsonl(corpus), 1):
        _need(rec, ("docid", "text"), f"{corpus}:{i}")
        ids.add(str(rec["docid"]))
        by_text.setdefault(hashlib.sha256(rec["text"].encode("utf-8")).hexdigest(), []).append(str(rec["docid"]))
    twins = {d: set(group) for group in by_text.values() if len(group) > 1 for d in group}
    questions = []
    for i, rec in enumerate(read_jsonl(qa), 1):
        _need(rec, ("docid", "question", "answer"), f"{qa}:{i}")
        if str(rec["docid"]) not in ids:
            raise DataError(f"{qa}:{i}: gold docid {rec['docid']} is not in {corpus}")
        questions.append({"id": str(rec.get("id") or i), "question": rec["question"], "answer": rec["answer"],
                          "docid": str(rec["docid"])})
    return NCPData(corpus, questions, twins)


# --- rgb -------------------------------------------------------------------------------------------------

def load_rgb(path: Path | None) -> list[dict]:
    path = Path(path or DEFAULT_PATHS["rgb"])
    rows = read_json_or_jsonl(path)
    for i, rec in enumerate(rows, 1):
        _need(rec, ("query", "answer", "negative"), f"{path}:{i}")
        rec.setdefault("id", i)
        rec.setdefault("positive", [])
    return sorted(rows, key=lambda r: (str(type(r["id"])), r["id"]))


def mix_passages(rec: dict, noise_ratio: float, n: int = 5, seed: int = 2333) -> list[dict]:
    """RGB noise robustness: n passages of which round(n * ratio) are negatives (noise), the rest positives,
    in a deterministic shuffle (seeded by seed, item id and ratio). Like RGB's processdata, when one side runs
    short the other fills up; ratio 1.0 is all noise (negative rejection).

    RGB's own code computes ceil(n * ratio), which float error turns into 4 negatives at 0.6; round() gives the
    stated ratio (3 of 5)."""
    if not 0 <= noise_ratio <= 1:
        raise ValueError(f"noise ratio must be in [0, 1], got {noise_ratio}")
    pos, neg = list(rec.get("positive") or []), list(rec.get("negative") or [])
    n_neg = round(n * noise_ratio)
    n_pos = n - n_neg
    if noise_ratio < 1:
        if n_neg > len(neg):
            n_neg = len(neg)
            n_pos = n - n_neg
        elif n_pos > len(pos):
            n_pos = len(pos)
            n_neg = n - n_pos
    docs = [{"text": t, "positive": True} for t in pos[:n_pos]] + \
           [{"text": t, "positive": False} for t in neg[:n_neg]]
    random.Random(f"{seed}:{rec.get('id')}:{noise_ratio}").shuffle(docs)
    return docs


# --- summaries -------------------------------------------------------------------------------------------

LAWBENCH = "lawbench_2-7.json"
CRUD = "crud_event_summary.json"


def load_summaries(path: Path | None, crud_sample: int = 100, seed: int = 2333) -> list[dict]:
    """Items {"set", "id", "source", "reference", "instruction"}: all of LawBench 2-7 (in file order) and a seeded
    sample of CRUD event summaries (in file order)."""
    root = Path(path or DEFAULT_PATHS["summaries"])
    files = [root / LAWBENCH, root / CRUD] if root.is_dir() else [root]
    files = [f for f in files if f.is_file()]
    if not files:
        raise DataError(f"summaries data: no {LAWBENCH} or {CRUD} in {root}")
    items: list[dict] = []
    for f in files:
        rows = read_json_or_jsonl(f)
        if "summary" in (rows[0] if rows else {}):   # CRUD-RAG event summaries
            picked = sorted(random.Random(seed).sample(range(len(rows)), min(crud_sample, len(rows))))
            for i in picked:
                r = rows[i]
                _need(r, ("text", "summary"), f"{f}[{i}]")
                items.append({"set": "crud", "id": str(r.get("ID") or i), "source": r["text"],
                              "reference": r["summary"], "title": r.get("title", ""),
                              "instruction": "用一段话概括这篇新闻报道所述事件。"})
        else:                                         # LawBench 2-7
            for i, r in enumerate(rows):
                _need(r, ("question", "answer"), f"{f}[{i}]")
                items.append({"set": "lawbench", "id": str(i), "source": r["question"], "reference": r["answer"],
                              "title": "", "instruction": (r.get("instruction") or "").strip()})
    return items


# --- custom ----------------------------------------------------------------------------------------------

def load_custom(path: Path | None) -> list[dict]:
    path = Path(path or DEFAULT_PATHS["custom"])
    out = []
    for i, rec in enumerate(read_jsonl(path), 1):
        _need(rec, ("question",), f"{path}:{i}")
        gold_files = rec.get("gold_files") or ([rec["gold_file"]] if rec.get("gold_file") else [])
        out.append({"id": str(rec.get("id") or i), "question": rec["question"], "answer": rec.get("answer") or "",
                    "gold_doc_ids": [str(d) for d in rec.get("gold_doc_ids") or []],
                    "gold_files": [str(g) for g in gold_files], "must_refuse": bool(rec.get("must_refuse", False))})
    return out


def resolve_gold_files(gold_files: list[str], documents: list[dict]) -> list[str]:
    """gold_file alias → document ids: a document matches when its source path, the source's file name or its
    title equals the given name (or the name without its extension)."""
    ids = []
    for g in gold_files:
        stem = Path(g).stem
        for d in documents:
            source = str(d.get("source") or "")
            names = {source, Path(source.split(":")[0]).name, d.get("title") or "", d["doc_id"]}
            if g in names or stem in names or stem == Path(source.split(":")[0]).stem:
                ids.append(d["doc_id"])
    return sorted(set(ids))
