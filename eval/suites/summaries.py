"""Summaries: ROUGE-L of the product's summarizer (container.summarize, issue #5) on LawBench 2-7 (500 legal news
items with one-sentence references) and a seeded sample of CRUD-RAG event summaries.

ROUGE-L is reported at character level (eval.metrics.rouge_l, tokenize="char", the headline figure) and at jieba
word level (closer to LawBench's own scorer, which joins jieba tokens for rouge_chinese; its published zero-shot
figures are word-level). The suite is skipped with a clear message while the summarizer does not exist.
"""
from __future__ import annotations

from pathlib import Path

import inspect
import time

from eval import metrics as M
from eval.data import load_summaries
from eval.base import EvalError, RunContext, WorkItem
from eval.report_format import fmt_latency, fmt_value, latency_stats, pyplot, rounded, short_text

PUBLISHED = {"lawbench": {"GPT-4": 37.92, "GPT-3.5": 33.49, "qwen-7b-chat": 36.04}}


class SummarizerMissing(EvalError):
    pass


def find_summarizer(container):
    """The summarization service of issue #5, imported lazily; SummarizerMissing says what is absent."""
    try:
        import assistant.services.summarize  # noqa: F401
    except ImportError as exc:
        raise SummarizerMissing("the summaries suite needs assistant/services/summarize.py (issue #5), which is "
                                f"not there yet ({exc}); nothing was run") from None
    svc = getattr(container, "summarize", None)
    if svc is None:
        raise SummarizerMissing("the summaries suite needs container.summarize (issue #5), which is not there yet; "
                                "nothing was run")
    return svc


def _text_of(result) -> str:
    """The summary text from whatever the service returns: str, a dict or an object with a summary field."""
    if isinstance(result, str):
        return result
    for attr in ("summary", "text", "brief", "content"):
        value = result.get(attr) if isinstance(result, dict) else getattr(result, attr, None)
        if value:
            return _text_of(value) if not isinstance(value, str) else value
    if isinstance(result, dict):
        return "\n".join(str(v) for v in result.values() if isinstance(v, str))
    if isinstance(result, (list, tuple)):
        return "\n".join(_text_of(r) for r in result)
    return str(result)


def summarize(svc, text: str, title: str = "") -> str:
    """Call the service's text-summarization entry point with the brief style (one paragraph); the summary text
    is what the service itself calls its plain text (summary_format.summary_plain_text) where it has one."""
    fn = next((getattr(svc, n) for n in ("summarize_text", "summarize_document", "summarize")
               if callable(getattr(svc, n, None))), svc if callable(svc) else None)
    if fn is None:
        raise SummarizerMissing("container.summarize has no summarize_text/summarize method")
    params = inspect.signature(fn).parameters
    kwargs = {}
    if "style" in params:
        kwargs["style"] = "brief"
    if "title" in params and title:
        kwargs["title"] = title
    result = fn(text, **kwargs)
    if isinstance(result, dict) and isinstance(result.get("summary"), dict) and result.get("style"):
        try:
            from assistant.services.summary_format import summary_plain_text
            return summary_plain_text(result["style"], result["summary"])
        except ImportError:
            pass
    return _text_of(result)


class SummariesSuite:
    name = "summaries"

    def prepare(self, ctx: RunContext) -> list[WorkItem]:
        if ctx.options.retrieval_only:
            raise EvalError("the summaries suite has no retrieval stage; drop --retrieval-only")
        self.svc = find_summarizer(ctx.container)
        items = load_summaries(ctx.options.data, ctx.options.crud_sample, ctx.options.seed)
        return [WorkItem(f"summaries:{it['set']}:{it['id']}", it) for it in items]

    @staticmethod
    def apply_limit(items: list[WorkItem], limit: int | None) -> list[WorkItem]:
        """--limit N: the first N items of each set."""
        if not limit:
            return items
        seen: dict[str, int] = {}
        out = []
        for it in items:
            s = it.payload["set"]
            if seen.get(s, 0) < limit:
                seen[s] = seen.get(s, 0) + 1
                out.append(it)
        return out

    def is_complete(self, ctx: RunContext, record: dict) -> bool:
        return "answer" in record

    def run_item(self, ctx: RunContext, item: WorkItem) -> dict:
        it = item.payload
        t0 = time.perf_counter()
        pred = summarize(self.svc, it["source"], it.get("title", ""))
        ms = (time.perf_counter() - t0) * 1000
        return {"id": it["id"], "set": it["set"], "question": it.get("title") or it["source"][:60],
                "gold": {"answer": it["reference"]}, "source_chars": len(it["source"]), "answer": pred,
                "metrics": {"rouge_l": M.rouge_l(pred, it["reference"], "char"),
                            "rouge_l_jieba": M.rouge_l(pred, it["reference"], "jieba")},
                "timings": {"answer_total_ms": round(ms, 1)}}


# --- report (eval/report.py calls aggregate, chart and report_section of a suite that has them) ---------

CHART = ("summaries", "summaries_rouge.png")   # the chart's key in the report and its file in the run folder


def aggregate(records: list[dict]) -> dict:
    out: dict = {"sets": {}}
    for s in sorted({r["set"] for r in records}):
        rows = [r for r in records if r["set"] == s]
        out["sets"][s] = {"n": len(rows),
                          "rouge_l_char": rounded(100 * M.mean(r["metrics"]["rouge_l"] for r in rows), 2),
                          "rouge_l_jieba": rounded(100 * M.mean(r["metrics"]["rouge_l_jieba"] for r in rows), 2),
                          "latency": latency_stats([r.get("timings", {}).get("answer_total_ms") for r in rows])}
    out["published"] = PUBLISHED
    return out


def chart(summary: dict, path: Path) -> Path | None:
    agg = summary["suites"].get("summaries")
    if not agg or not agg.get("sets"):
        return None
    plt = pyplot()
    labels, char, word = [], [], []
    for s, v in agg["sets"].items():
        labels.append(f"{s} (n={v['n']})")
        char.append(v["rouge_l_char"])
        word.append(v["rouge_l_jieba"])
    fig, ax = plt.subplots(figsize=(6.5, 4))
    xs = range(len(labels))
    ax.bar([x - .2 for x in xs], char, .4, label="ROUGE-L (characters)")
    ax.bar([x + .2 for x in xs], word, .4, label="ROUGE-L (jieba words)")
    for name, v in agg["published"].get("lawbench", {}).items():
        if "lawbench" in agg["sets"]:
            ax.axhline(v, ls="--", lw=1, color="gray")
            ax.text(len(labels) - .5, v, f"{name} {v}", fontsize=7, va="bottom", ha="right")
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("ROUGE-L F (x100)")
    ax.set_title("summaries (dashed: LawBench 2-7 published, word level)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report_section(doc, agg, records, charts):
    rows = []
    for s, v in agg["sets"].items():
        pub = agg["published"].get(s, {})
        rows.append([s, v["n"], fmt_value(v["rouge_l_char"], True), fmt_value(v["rouge_l_jieba"], True),
                     ", ".join(f"{k} {x}" for k, x in pub.items()) or "–", fmt_latency(v["latency"], "s")])
    doc.append(("table", ["set", "n", "ROUGE-L char", "ROUGE-L jieba words", "published (word level)",
                          "p50/p95 s"], rows))
    if "summaries" in charts:
        doc.append(("img", charts["summaries"], "ROUGE-L per set"))
    rows = [[r["set"], r["id"], short_text(r["gold"]["answer"], 50), short_text(r["answer"], 60),
             fmt_value(r["metrics"]["rouge_l"])] for r in records[:10]]
    doc.append(("table", ["set", "id", "reference", "summary", "ROUGE-L char"], rows))
