"""Custom: any JSONL question set against any knowledge base (--kb, required).

Per line: {"question", "answer"?, "gold_doc_ids"?: [...], "gold_file"? | "gold_files"?: [...], "must_refuse"?,
"id"?}. `gold_file` is an alias: it names a document by its source file name, source path or title and is
resolved to document ids in the knowledge base (samples/questions.jsonl uses it). Retrieval metrics need gold
documents; answer metrics need an answer; must_refuse items score whether the product refused.
"""
from __future__ import annotations

from eval.data import load_custom, resolve_gold_files
from eval.base import EvalError, RunContext, WorkItem
from eval.suites.common import QuestionSuite, warm_up


class CustomSuite(QuestionSuite):
    name = "custom"

    def prepare(self, ctx: RunContext) -> list[WorkItem]:
        if not ctx.options.kb:
            raise EvalError("the custom suite needs --kb (the knowledge base the questions are about)")
        kb = ctx.options.kb
        ctx.container.store.catalog.require_kb(kb)
        docs = ctx.container.store.catalog.list_documents(kb)
        items = []
        unresolved: set[str] = set()
        for q in load_custom(ctx.options.data):
            gold = set(q["gold_doc_ids"])
            if q["gold_files"]:
                found = resolve_gold_files(q["gold_files"], docs)
                if not found:
                    unresolved.update(q["gold_files"])
                gold |= set(found)
            items.append(WorkItem(f"custom:{q['id']}", {**q, "gold_ids": sorted(gold)}))
        warm_up(ctx, kb)
        if unresolved:
            ctx.note(f"gold_file(s) not found in {kb}: {', '.join(sorted(unresolved))} (their questions count for "
                     "answers and refusals only)")
        return items

    def run_item(self, ctx: RunContext, item: WorkItem) -> dict:
        q = item.payload
        record = {"id": q["id"], "question": q["question"], "kb": ctx.options.kb, "must_refuse": q["must_refuse"],
                  "gold": {"answer": q["answer"], "doc_ids": q["gold_ids"]}}
        refuse = q["must_refuse"]
        self.evaluate(ctx, q["question"], record, None if refuse else q["answer"], None if refuse else q["gold_ids"])
        if not ctx.options.retrieval_only:
            record["metrics"]["answer"]["refusal_correct"] = float(record["refused"] == refuse)
        return record
