"""NCP: 599 government policy documents and 601 questions whose answers are spans of one gold document.

Stage 1 (retrieval): every question through SearchService in each mode (bm25, dense, hybrid); document-level
R@1/3/5/10, MRR@10, nDCG@10. Stage 2 (answers, unless --retrieval-only): QAService.ask, character F1, exact match,
ROUGE-L against the gold span, citation accuracy, refusal rate.

The corpus holds a few documents with identical text; the pipeline stores one of each (content-hash dedup), so a
question's gold set is its docid plus the ids of its text-identical twins.
"""
from __future__ import annotations

from assistant.services.access import LOCAL_ADMIN
from eval.data import load_ncp
from eval.base import DEFAULT_NCP_KB, RunContext, WorkItem
from eval.suites.common import QuestionSuite, note_embedding, note_ingest, warm_up

DEFAULT_KB = DEFAULT_NCP_KB
# BM25 (jieba cut_for_search + rank-bm25 Okapi), document level, on the same questions and corpus
PUBLISHED = {"BM25 (published)": {"R@1": 0.729, "R@5": 0.925, "R@10": 0.962, "MRR@10": 0.812}}


def ingest_corpus(ctx: RunContext, kb: str, corpus) -> None:
    c = ctx.container
    if ctx.options.no_ingest:
        c.store.catalog.require_kb(kb)
        ctx.note(f"{kb}: used as it is (--no-ingest)")
    else:
        report = c.knowledge_bases.ingest_paths(
            kb, [str(corpus)], lambda phase, done, total, detail="": ctx.progress("ingest " + kb, done, total, detail),
            principal=LOCAL_ADMIN, description=f"evaluation corpus {corpus}")
        note_ingest(ctx, report, f"{corpus} → {kb}")
    note_embedding(ctx, kb)


class NCPSuite(QuestionSuite):
    name = "ncp"

    def prepare(self, ctx: RunContext) -> list[WorkItem]:
        data = load_ncp(ctx.options.data)
        kb = ctx.options.kb or DEFAULT_KB
        ctx.options.kb = kb
        ingest_corpus(ctx, kb, data.corpus)
        stored = {d["doc_id"] for d in ctx.container.store.catalog.list_documents(kb) if d["state"] == "complete"}
        items, unreachable = [], 0
        for q in data.questions:
            gold = sorted({q["docid"]} | data.twins.get(q["docid"], set()))
            if not stored & set(gold):
                unreachable += 1
            items.append(WorkItem(f"ncp:{q['id']}", {**q, "gold_ids": gold}))
        warm_up(ctx, kb)
        twins = sum(1 for q in data.questions if q["docid"] in data.twins)
        if twins:
            ctx.note(f"{twins} question(s) have a gold document with text-identical twins in the corpus; "
                     "any twin counts as the gold document")
        if unreachable:
            ctx.note(f"warning: {unreachable} question(s) have no gold document in {kb}")
        return items

    def run_item(self, ctx: RunContext, item: WorkItem) -> dict:
        q = item.payload
        record = {"id": q["id"], "question": q["question"], "kb": ctx.options.kb,
                  "gold": {"answer": q["answer"], "doc_ids": q["gold_ids"]}}
        return self.evaluate(ctx, q["question"], record, q["answer"], q["gold_ids"])
