"""Rejection: does the product refuse what its knowledge base cannot answer, and still answer what it can?

Built from NCP (corpus.jsonl {docid, text}, dev_qa.jsonl {id, docid, question, answer}):
- N *absent* questions (default 25): their gold document and every document whose text contains the gold answer
  span (after eval.metrics.normalize_answer, so twins and copies go too) are removed from the run's knowledge base;
  the product must refuse them.
- N *present* questions (default 25): none of their gold documents is removed; the product must answer them. For
  those answered: character F1 against the gold span and whether the answer cites ([n]) the gold document.

Selection is deterministic (a seeded shuffle of the questions by id, --seed). A fixed held-out split: a question id
read as a number (decimal, else hexadecimal, else its trailing digits, else its sha256) is "tuned" when even and
"held-out" when odd; each side gets half of each N (the first half rounds up to tuned), and the report shows both
halves, so a change tuned on one half can be checked on the other. An absent candidate whose span occurs in more than
MAX_REMOVED documents (a very short or generic span) is skipped: removing it would hollow out the corpus.

Answers go through the product path (eval.suites.common.ask → QAService.ask: hybrid retrieval, evidence gate,
answerability, verification, LLM, citations), so whatever the answering layer does is measured. A question counts as
refused when the product flags it refused or its text is a refusal (eval.metrics.is_refusal). The answer's
`verification` is recorded when the Answer carries one.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import replace
from itertools import zip_longest
from pathlib import Path

from assistant.services.access import LOCAL_ADMIN
from eval import metrics as M
from eval.data import load_ncp, read_jsonl
from eval.base import EvalError, RunContext, WorkItem
from eval.suites.common import ask, note_embedding, note_ingest

DEFAULT_KB = "eval-rejection"
DEFAULT_N = 25
MAX_REMOVED = 5
HALVES = ("tuned", "held-out")
TARGETS = {"refusal_rate_absent": 0.85, "answer_rate_present": 0.95}
# the documents ingested into the run's knowledge base, in the run folder; named as NCP's file, so the documents get
# the same fallback title (corpus) and search texts as in the ncp suite, and its embedding cache entries are reused
KB_CORPUS = Path("kb") / "corpus.jsonl"


def id_number(qid: str) -> int:
    s = str(qid).strip()
    if s.isdigit():
        return int(s)
    if re.fullmatch(r"[0-9a-fA-F]+", s):
        return int(s, 16)
    if m := re.search(r"(\d+)$", s):
        return int(m.group(1))
    return int(hashlib.sha256(s.encode("utf-8")).hexdigest(), 16)


def half_of(qid: str) -> str:
    return HALVES[id_number(qid) % 2]


def docs_containing(span: str, corpus: dict[str, str]) -> set[str]:
    """Ids of the documents whose normalised text holds the normalised span."""
    s = M.normalize_answer(span)
    if not s:
        return set()
    return {d for d, text in corpus.items() if s in text}


def select(questions: list[dict], corpus: dict[str, str], n_absent: int, n_present: int, seed: int,
           twins: dict[str, set[str]] | None = None, max_removed: int = MAX_REMOVED) -> dict:
    """{"absent": [...], "present": [...], "removed": set of doc ids, "skipped": int}; each question gets "half",
    "gold_ids" (its docid and text-identical twins) and, for absent ones, "removed_ids"."""
    twins = twins or {}
    norm = {d: M.normalize_answer(t) for d, t in corpus.items()}
    order = sorted(questions, key=lambda q: q["id"])
    random.Random(f"rejection:{seed}").shuffle(order)
    quota = {"absent": {"tuned": (n_absent + 1) // 2, "held-out": n_absent // 2},
             "present": {"tuned": (n_present + 1) // 2, "held-out": n_present // 2}}
    absent, removed, skipped = [], set(), 0
    for q in order:
        half = half_of(q["id"])
        if quota["absent"][half] <= len([a for a in absent if a["half"] == half]):
            continue
        gold = {q["docid"]} | twins.get(q["docid"], set())
        drop = gold | docs_containing(q["answer"], norm)
        if len(drop) > max_removed:
            skipped += 1
            continue
        absent.append({**q, "half": half, "gold_ids": sorted(gold), "removed_ids": sorted(drop)})
        removed |= drop
    taken = {a["id"] for a in absent}
    present = []
    for q in order:
        half = half_of(q["id"])
        if q["id"] in taken or quota["present"][half] <= len([p for p in present if p["half"] == half]):
            continue
        gold = {q["docid"]} | twins.get(q["docid"], set())
        if gold & removed:
            continue
        present.append({**q, "half": half, "gold_ids": sorted(gold)})
    return {"absent": absent, "present": present, "removed": removed, "skipped": skipped}


class _CapturingQA:
    """QAService as it is, keeping the Answer object so its verification can be recorded."""

    def __init__(self, qa):
        self._qa, self.answer = qa, None

    def ask(self, *args, **kwargs):
        self.answer = self._qa.ask(*args, **kwargs)
        return self.answer

    def __getattr__(self, name):
        return getattr(self._qa, name)


class _Container:
    def __init__(self, container, qa):
        self._c, self.qa = container, qa

    def __getattr__(self, name):
        return getattr(self._c, name)


def declined(record: dict) -> bool:
    return bool(record.get("refused") or record.get("refusal_marker"))


class RejectionSuite:
    name = "rejection"

    def prepare(self, ctx: RunContext) -> list[WorkItem]:
        opts = ctx.options
        if opts.retrieval_only:
            raise EvalError("the rejection suite measures answers; drop --retrieval-only")
        if opts.n < 1:
            raise EvalError("--n must be at least 1")
        data = load_ncp(opts.data)
        corpus = {str(r["docid"]): r["text"] for r in read_jsonl(data.corpus)}
        picked = select(data.questions, corpus, opts.n, opts.n, opts.seed, data.twins)
        kb = opts.kb = opts.kb or DEFAULT_KB
        removed = picked["removed"]
        self._sync_kb(ctx, kb, corpus, removed)
        for kind in ("absent", "present"):
            got = {h: sum(q["half"] == h for q in picked[kind]) for h in HALVES}
            if sum(got.values()) < opts.n:
                ctx.note(f"only {sum(got.values())} {kind} question(s) could be selected (asked for {opts.n})")
        ctx.note(f"{len(picked['absent'])} absent question(s): {len(removed)} document(s) removed from {kb} (gold "
                 f"documents and every document containing a gold span); {len(picked['present'])} present question(s)"
                 f"; halves by id parity (even: tuned, odd: held-out)")
        if picked["skipped"]:
            ctx.note(f"{picked['skipped']} absent candidate(s) skipped: their answer span occurs in more than "
                     f"{MAX_REMOVED} documents")
        # absent and present interleaved, so --limit N keeps both kinds
        pairs = zip_longest(picked["absent"], picked["present"])
        return [WorkItem(f"rejection:{kind}:{q['id']}", {**q, "kind": kind})
                for pair in pairs for kind, q in zip(("absent", "present"), pair) if q is not None]

    def _sync_kb(self, ctx: RunContext, kb: str, corpus: dict[str, str], removed: set[str]) -> None:
        """The knowledge base holds the corpus minus the removed documents (ingest is idempotent; documents of
        this corpus removed by this selection are deleted; documents from elsewhere are left alone)."""
        c = ctx.container
        if ctx.options.no_ingest:
            c.store.catalog.require_kb(kb)
            ctx.note(f"{kb}: used as it is (--no-ingest)")
        else:
            path = Path(ctx.options.out) / KB_CORPUS
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                for docid, text in corpus.items():
                    if docid not in removed:
                        f.write(json.dumps({"docid": docid, "text": text}, ensure_ascii=False) + "\n")
            report = c.knowledge_bases.ingest_paths(
                kb, [str(path)], lambda phase, done, total, detail="": ctx.progress("ingest " + kb, done, total,
                                                                                    detail),
                principal=LOCAL_ADMIN, description="evaluation corpus (rejection suite)")
            note_ingest(ctx, report, f"{KB_CORPUS} → {kb}")
        stored = {d["doc_id"] for d in c.store.catalog.list_documents(kb)}
        stale = sorted(stored & removed)
        if stale and ctx.options.no_ingest:
            raise EvalError(f"{kb} holds {len(stale)} document(s) this selection removes (e.g. {stale[0]}); "
                            "drop --no-ingest so the suite can delete them, or use another --kb")
        for doc_id in stale:
            c.knowledge_bases.delete_document(kb, doc_id, principal=LOCAL_ADMIN)
        if stale:
            ctx.note(f"{len(stale)} document(s) of an earlier selection deleted from {kb}")
        foreign = len(stored - set(corpus))
        if foreign:
            ctx.note(f"warning: {kb} holds {foreign} document(s) that are not in the corpus")
        note_embedding(ctx, kb)

    def is_complete(self, ctx: RunContext, record: dict) -> bool:
        return "answer" in record

    def run_item(self, ctx: RunContext, item: WorkItem) -> dict:
        q = item.payload
        present = q["kind"] == "present"
        record = {"id": q["id"], "question": q["question"], "kind": q["kind"], "half": q["half"],
                  "kb": ctx.options.kb, "gold": {"answer": q["answer"], "doc_ids": q["gold_ids"]}}
        if not present:
            record["removed_doc_ids"] = q["removed_ids"]
        qa = _CapturingQA(ctx.container.qa)
        ask(replace(ctx, container=_Container(ctx.container, qa)), q["question"], ctx.options.kb, record,
            q["answer"] if present else None, q["gold_ids"] if present else None)
        verification = getattr(qa.answer, "verification", None)
        if verification:
            record["verification"] = verification
        refused = declined(record)
        am = record["metrics"]["answer"]
        am["declined"] = float(refused)
        am["correct"] = float(refused != present)
        if present and not refused:
            am["cites_gold"] = float(any(c["cited"] and c["doc_id"] in set(q["gold_ids"])
                                         for c in record["citations"]))
        return record
