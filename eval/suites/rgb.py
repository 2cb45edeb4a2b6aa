"""RGB (Chen et al., AAAI-24), Chinese: noise robustness and negative rejection.

Each query gets 5 passages: positives (containing the answer) mixed with negatives (noise) at noise ratio
0/0.2/0.4/0.6/0.8, shuffled with a fixed seed; the product's Answerer answers from them through its own prompt,
context building and LLM (Answerer.answer_from_passages: no retrieval, no evidence gate). Accuracy as in RGB:
every answer item (any of its alternatives) occurs in the normalised answer, and the answer is not a refusal.
Negative rejection: 5 negatives only; the rate of answers that refuse (eval.metrics.is_refusal).
"""
from __future__ import annotations

from pathlib import Path

import json

from eval import metrics as M
from eval.data import load_rgb, mix_passages
from eval.base import EvalError, RunContext, WorkItem
from eval.report_format import fmt_value, latency_stats, pyplot, rounded, short_text

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
        if answer.verification:     # every generated sentence, kept or removed, and what screening read
            record["verification"] = answer.verification
        n_in = record["passages_in_prompt"]
        record["positives_in_prompt"] = sum(p["positive"] for p in mixed[:n_in])
        if task == "noise":
            record["metrics"] = {"correct": float(M.contains_answer(text, rec["answer"]) and not answer.refused)}
        else:
            record["metrics"] = {"rejected": float(marker_refusal)}
        return record


# --- report (eval/report.py calls aggregate, chart and report_section of a suite that has them) ---------

CHART = ("noise", "rgb_noise.png")   # the chart's key in the report and its file in the run folder


def aggregate(records: list[dict]) -> dict:
    noise: dict[str, dict] = {}
    for ratio in sorted({r["noise_ratio"] for r in records if r.get("task") == "noise"}):
        rows = [r for r in records if r.get("task") == "noise" and r["noise_ratio"] == ratio]
        noise[f"{ratio:g}"] = {"n": len(rows), "accuracy": rounded(100 * M.mean(r["metrics"]["correct"] for r in rows), 2),
                               "no_positive_in_prompt": sum(1 for r in rows if r.get("positives_in_prompt") == 0
                                                            and any(p["positive"] for p in r["passages"]))}
    rej = [r for r in records if r.get("task") == "rejection"]
    out: dict = {"noise": noise}
    if rej:
        out["rejection"] = {"n": len(rej), "rate": rounded(100 * M.mean(r["metrics"]["rejected"] for r in rej), 2),
                            "product_refusal_rate": rounded(100 * M.mean(float(r["refused"]) for r in rej), 2)}
    out["published"] = {"noise": {m: {f"{k:g}": v for k, v in d.items()} for m, d in PUBLISHED_NOISE.items()},
                        "rejection": PUBLISHED_REJECTION}
    out["latency"] = latency_stats([r.get("timings", {}).get("answer_total_ms") for r in records])
    return out


def chart(summary: dict, path: Path) -> Path | None:
    agg = summary["suites"].get("rgb")
    if not agg or not agg.get("noise"):
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    xs = [float(k) for k in agg["noise"]]
    ax.plot(xs, [v["accuracy"] for v in agg["noise"].values()], "o-", lw=2,
            label=f"{summary['model']} (this run)")
    for name, d in agg["published"]["noise"].items():
        ax.plot([float(k) for k in d], list(d.values()), "s--", alpha=.7, label=f"{name} (RGB paper)")
    ax.set_xlabel("noise ratio (negatives among 5 passages)")
    ax.set_ylabel("accuracy (%)")
    rej = agg.get("rejection")
    title = "RGB zh: accuracy vs noise ratio"
    if rej:
        title += f"; rejection {rej['rate']:.1f}% (ChatGPT {agg['published']['rejection']['ChatGPT']})"
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, 100)
    ax.grid(alpha=.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report_section(doc, agg, records, charts):
    pub = agg["published"]["noise"]
    doc.append(("h", 3, "Noise robustness (accuracy %, Chinese)"))
    rows = []
    for ratio, v in agg["noise"].items():
        rows.append([ratio, v["n"], fmt_value(v["accuracy"], True), *[fmt_value(pub[m].get(ratio), True) for m in pub],
                     v["no_positive_in_prompt"]])
    doc.append(("table", ["noise ratio", "n", "this run", *[f"{m} (paper)" for m in pub],
                          "items whose positives were cut by the context budget"], rows))
    rej = agg.get("rejection")
    if rej:
        doc.append(("h", 3, "Negative rejection (all-noise passages)"))
        doc.append(("table", ["n", "rejection rate % (this run)", "product refusal flag %",
                              *[f"{m} (paper)" for m in agg["published"]["rejection"]]],
                    [[rej["n"], fmt_value(rej["rate"], True), fmt_value(rej["product_refusal_rate"], True),
                      *[fmt_value(v, True) for v in agg["published"]["rejection"].values()]]]))
    if "noise" in charts:
        doc.append(("img", charts["noise"], "accuracy vs noise ratio"))
    rows = []
    for r in [r for r in records if r.get("task") == "noise" and not r["metrics"]["correct"]][:15]:
        rows.append([r["id"], f"{r['noise_ratio']:g}", short_text(r["question"], 30),
                     short_text(json.dumps(r["gold"]["answer"], ensure_ascii=False), 30), short_text(r["answer"], 60)])
    if rows:
        doc.append(("h", 3, "Wrong answers (first 15; all items in items.jsonl)"))
        doc.append(("table", ["id", "noise", "query", "gold", "answer"], rows))
