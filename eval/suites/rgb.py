"""RGB (Chen et al., AAAI-24), Chinese: noise robustness and negative rejection.

Each query gets 5 passages: positives (containing the answer) mixed with negatives (noise) at noise ratio
0/0.2/0.4/0.6/0.8, shuffled with a fixed seed; the product's Answerer answers from them through its own prompt,
context building and LLM (Answerer.answer_from_passages: no retrieval, no evidence gate). Accuracy as in RGB:
every answer item (any of its alternatives) occurs in the normalised answer, and the answer is not a refusal.
Negative rejection: 5 negatives only; the rate of answers that refuse (eval.metrics.is_refusal).
"""
from __future__ import annotations

from eval import metrics as M
from eval.data import load_rgb, mix_passages
from eval.base import EvalError, RunContext, WorkItem

# Chen et al. 2024, Table (Chinese); accuracy in % at noise 0/0.2/0.4/0.6/0.8, rejection rate in % (exact match)
PUBLISHED_NOISE = {
    "ChatGPT": {0.0: 95.67, 0.2: 94.67, 0.4: 91.00, 0.6: 87.67, 0.8: 70.67},
    "Qwen-7B-Chat": {0.0: 94.00, 0.2: 92.33, 0.4: 88.00, 0.6: 84.33, 0.8: 68.67},
}
PUBLISHED_REJECTION = {"ChatGPT": 5.33, "Qwen-7B-Chat": 8.67}
PASSAGE_TITLE = "检索结果"


def passages_for_answerer(mixed: list[dict]) -> list[dict]:
    return [{"text": p["text"], "doc_id": f"{'pos' if p['positive'] else 'neg'}{i}", "title": PASSAGE_TITLE}
            for i, p in enumerate(mixed, 1)]


def passages_in_prompt(answerer, passages: list[dict]) -> int:
    """How many of the passages fit the answer prompt's context budget (build_context, as the answer uses)."""
    from assistant.retrieval import Hit
    hits = [Hit(p["doc_id"], p["doc_id"], "", p["text"], {"title": p["title"]}) for p in passages]
    return len(answerer.build_context(hits)[1])


class RGBSuite:
    name = "rgb"

    def prepare(self, ctx: RunContext) -> list[WorkItem]:
        if ctx.options.retrieval_only:
            raise EvalError("the rgb suite has no retrieval stage (its passages are given); drop --retrieval-only")
        rows = load_rgb(ctx.options.data)
        items = []
        # grouped by query: --limit N gives N queries at every noise ratio plus their rejection test
        for rec in rows:
            g = f"rgb:{rec['id']}"
            for ratio in ctx.options.noise_ratios:
                items.append(WorkItem(f"{g}:noise{ratio:g}", {"rec": rec, "ratio": ratio, "task": "noise"}, g))
            items.append(WorkItem(f"{g}:reject", {"rec": rec, "ratio": 1.0, "task": "rejection"}, g))
        return items

    def is_complete(self, ctx: RunContext, record: dict) -> bool:
        return "answer" in record

    def run_item(self, ctx: RunContext, item: WorkItem) -> dict:
        rec, ratio, task = item.payload["rec"], item.payload["ratio"], item.payload["task"]
        mixed = mix_passages(rec, ratio, ctx.options.passages, ctx.options.seed)
        passages = passages_for_answerer(mixed)
        answerer = ctx.container.answerer
        answer = answerer.answer_from_passages(rec["query"], passages)
        text = answer.answer
        marker_refusal = M.is_refusal(text)
        record = {"id": rec["id"], "question": rec["query"], "task": task, "noise_ratio": ratio,
                  "gold": {"answer": rec["answer"]},
                  "passages": [{"positive": p["positive"], "text": p["text"]} for p in mixed],
                  "passages_in_prompt": passages_in_prompt(answerer, passages),
                  "answer": text, "refused": bool(answer.refused), "refusal_marker": marker_refusal,
                  "citations": [{"n": c.n, "doc_id": c.doc_id, "cited": c.cited} for c in answer.citations],
                  "timings": {f"answer_{k}": round(v, 1) for k, v in answer.timings.items()}}
        n_in = record["passages_in_prompt"]
        record["positives_in_prompt"] = sum(p["positive"] for p in mixed[:n_in])
        if task == "noise":
            record["metrics"] = {"correct": float(M.contains_answer(text, rec["answer"]) and not answer.refused)}
        else:
            record["metrics"] = {"rejected": float(marker_refusal)}
        return record
