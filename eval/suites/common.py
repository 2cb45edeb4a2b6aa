"""Helpers shared by the suites: retrieval through SearchService, answers through QAService, and their metrics."""
from __future__ import annotations

import re

from assistant.grounding.atoms import Evidence, unsupported_atoms
from assistant.services.access import LOCAL_ADMIN   # the harness runs as the local operator
from eval import metrics as M
from eval.base import RunContext, distinct, timed

_CITE = re.compile(r"\[\d{1,2}\]")
CUTOFFS = (1, 3, 5, 10)


def strip_citations(text: str) -> str:
    return _CITE.sub("", text or "").strip()


def retrieval_metrics(ranked_doc_ids: list[str], gold_ids: list[str]) -> dict:
    out = {f"R@{k}": M.recall_at_k(ranked_doc_ids, gold_ids, k) for k in CUTOFFS}
    out["MRR@10"] = M.mrr_at_k(ranked_doc_ids, gold_ids, 10)
    out["nDCG@10"] = M.ndcg_at_k(ranked_doc_ids, gold_ids, 10)
    gold = set(gold_ids)
    out["gold_rank"] = next((i for i, d in enumerate(ranked_doc_ids, 1) if d in gold), None)
    return out


def note_ingest(ctx: RunContext, report, what: str) -> None:
    """A suite's ingest in the run's notes: counts, time and the first failure."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    ctx.note(f"ingest {what}: {counts} ({report.seconds:.1f}s)")
    failed = [r for r in report.results if r.status == "failed"]
    if failed:
        ctx.note(f"{len(failed)} document(s) failed to ingest, e.g. {failed[0].source}: {failed[0].message}")


def note_embedding(ctx: RunContext, kb: str) -> None:
    """Warn when the knowledge base's vectors come from another embedder than the configured one."""
    kb_embedding = ctx.container.store.catalog.require_kb(kb).get("embedding")
    if kb_embedding and kb_embedding != ctx.container.embedding_name:
        ctx.note(f"warning: {kb} was embedded with {kb_embedding}, the configuration uses "
                 f"{ctx.container.embedding_name}: dense results are not meaningful")


def warm_up(ctx: RunContext, kb: str) -> None:
    """One untimed query per mode, so that loading indexes and the embedder is not counted as the first item's
    latency."""
    for mode in ctx.options.modes:
        ctx.container.search.search("通知", [kb], None, 1, principal=LOCAL_ADMIN, mode=mode)


def retrieve_all_modes(ctx: RunContext, question: str, kb: str, gold_ids: list[str] | None,
                       record: dict) -> None:
    """Search once per mode through the product's SearchService; documents ranked by the first occurrence of
    their chunks in the ranked chunk list."""
    record.setdefault("retrieval", {})
    record.setdefault("metrics", {})
    record.setdefault("timings", {})
    for mode in ctx.options.modes:
        result, ms = timed(ctx.container.search.search, question, [kb], None, ctx.options.retrieval_k,
                           principal=LOCAL_ADMIN, mode=mode)
        ranked = distinct(h.doc_id for h in result.hits)
        record["retrieval"][mode] = ranked[:20]
        record["timings"][f"{mode}_ms"] = round(ms, 1)
        if gold_ids:
            record["metrics"][mode] = retrieval_metrics(ranked, gold_ids)


_HEADER = ("title", "law", "agency", "doc_number", "date", "status", "heading")


def ask(ctx: RunContext, question: str, kb: str, record: dict, gold_answer: str | None,
        gold_ids: list[str] | None) -> None:
    """One product answer (QAService: hybrid retrieval, evidence gate, prompt, LLM, citations) and its metrics."""
    answer = ctx.container.qa.ask(question, [kb], principal=LOCAL_ADMIN)
    text = strip_citations(answer.answer)
    record["answer"] = answer.answer
    record["refused"] = bool(answer.refused)
    record["refusal_marker"] = M.is_refusal(answer.answer)
    record["citations"] = [{"n": c.n, "doc_id": c.doc_id, "chunk_id": c.chunk_id, "cited": c.cited,
                            "same_as": c.same_as, "label": c.label, "text": c.text}
                           for c in answer.citations]   # a later check replays
    record.setdefault("timings", {}).update({f"answer_{k}": round(v, 1) for k, v in answer.timings.items()})
    if getattr(answer, "verification", None):      # per sentence: support, anchor (replays and eval calibrate read them)
        record["verification"] = answer.verification
    am: dict = {"refused": float(answer.refused)}
    if not answer.refused:
        # checked apart from the product's own verification: the final text against its passages as the prompt
        # showed them (text, and the header's title, 文号, 发文机关, date and status)
        # (and the question: a figure the user stated is repeated, not invented)
        evidence = Evidence.of(question, *(f"{c.label} {' '.join(str(c.metadata.get(k) or '') for k in _HEADER)} "
                                           f"{c.text}" for c in answer.citations))
        am["unsupported_figures"] = sum(a.is_figure for a in unsupported_atoms(answer.answer, evidence))
    am["removed_sentences"] = int((getattr(answer, "verification", None) or {}).get("removed", 0))
    if gold_answer:
        # a refusal of an answerable question scores 0 (as a no-answer in SQuAD 2.0), not the overlap of the
        # refusal wording with the gold span
        said = "" if answer.refused else text
        am.update({"f1": M.char_f1(said, gold_answer), "em": M.exact_match(said, gold_answer),
                   "rouge_l": M.rouge_l(said, gold_answer), "contains": float(M.contains_answer(said, gold_answer))})
    if gold_ids:
        gold = set(gold_ids)
        cited = [c for c in answer.citations if c.cited]
        am["context_hit"] = float(any(c.doc_id in gold for c in answer.citations))
        if not answer.refused:
            am["citation_acc"] = float(any(c.doc_id in gold for c in cited))
            if cited:
                am["citation_precision"] = sum(c.doc_id in gold for c in cited) / len(cited)
    if ctx.judge is not None and not answer.refused:
        am["judge"] = ctx.judge.evaluate(question, text, [c.text for c in answer.citations])
    record.setdefault("metrics", {})["answer"] = am


def retrieval_complete(ctx: RunContext, record: dict) -> bool:
    return all(m in record.get("retrieval", {}) for m in ctx.options.modes)


def answer_complete(ctx: RunContext, record: dict) -> bool:
    return ctx.options.retrieval_only or "answer" in record


class QuestionSuite:
    """Questions over a knowledge base: retrieval in every mode, then (unless --retrieval-only) the product's
    answer through QAService. Subclasses prepare the items and build each record."""

    def is_complete(self, ctx: RunContext, record: dict) -> bool:
        return retrieval_complete(ctx, record) and answer_complete(ctx, record)

    def evaluate(self, ctx: RunContext, question: str, record: dict, gold_answer: str | None,
                 gold_ids: list[str] | None) -> dict:
        retrieve_all_modes(ctx, question, ctx.options.kb, gold_ids, record)
        if not ctx.options.retrieval_only:
            ask(ctx, question, ctx.options.kb, record, gold_answer, gold_ids)
        return record
