"""Aggregation and reports: summary.json, report.md, report.html (charts embedded) and PNG charts, all rebuilt
from DIR/items.jsonl and DIR/run.json, so a report is a pure function of the recorded items."""
from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

from eval import metrics as M
from eval.report_format import fmt_latency, fmt_value, latency_stats, pyplot, rounded, short_text
from eval.base import MODES
from eval.run_folder import load_items, settings_snapshot
from eval.suites.common import CUTOFFS

SUITE_ORDER = ("ncp", "rgb", "summaries", "custom", "rejection", "laws")
CURVE_K = tuple(range(1, 11))


# --- aggregation -----------------------------------------------------------------------------------------

def aggregate_retrieval(records: list[dict]) -> dict:
    out = {}
    for mode in MODES:
        rows = [r for r in records if mode in r.get("metrics", {})]
        if not rows:
            continue
        ms = [r["metrics"][mode] for r in rows]
        agg = {"n": len(ms)}
        for k in CUTOFFS:
            agg[f"R@{k}"] = rounded(M.mean(m[f"R@{k}"] for m in ms))
        agg["MRR@10"] = rounded(M.mean(m["MRR@10"] for m in ms))
        agg["nDCG@10"] = rounded(M.mean(m["nDCG@10"] for m in ms))
        agg["recall_curve"] = [rounded(M.mean(float(m["gold_rank"] is not None and m["gold_rank"] <= k) for m in ms))
                               for k in CURVE_K]
        agg["latency"] = latency_stats([r.get("timings", {}).get(f"{mode}_ms") for r in rows])
        out[mode] = agg
    return out


def aggregate_answers(records: list[dict]) -> dict:
    rows = [r for r in records if "answer" in r.get("metrics", {})]
    if not rows:
        return {}
    ams = [r["metrics"]["answer"] for r in rows]

    def avg(key: str, pool=ams) -> float | None:
        vals = [a[key] for a in pool if a.get(key) is not None]
        return rounded(M.mean(vals)) if vals else None

    answered = [a for a in ams if not a.get("refused")]
    out = {"n": len(ams), "f1": avg("f1"), "em": avg("em"), "rouge_l": avg("rouge_l"), "contains": avg("contains"),
           "f1_answered": avg("f1", answered), "refusal_rate": avg("refused"),
           "citation_acc": avg("citation_acc"), "citation_precision": avg("citation_precision"),
           "context_hit": avg("context_hit"),
           # answers stating a figure (amount, percentage, quantity, date) that none of their passages states
           "unsupported_figure_answers": sum(int(a.get("unsupported_figures", 0) > 0) for a in ams),
           "removed_sentences": sum(int(a.get("removed_sentences", 0)) for a in ams),
           "latency": latency_stats([r.get("timings", {}).get("answer_total_ms") for r in rows]),
           "first_token": latency_stats([r.get("timings", {}).get("answer_first_token_ms") for r in rows])}
    judged = [a["judge"] for a in ams if isinstance(a.get("judge"), dict)]
    if judged:
        out["judge"] = {"n": len(judged),
                        "faithfulness": rounded(M.mean(j["faithfulness"] for j in judged if j.get("faithfulness") is not None)),
                        "relevance": rounded(M.mean(j["relevance"] for j in judged if j.get("relevance") is not None))}
    must = [r for r in rows if r.get("must_refuse") is not None]
    if must:
        pos = [r for r in must if r["must_refuse"]]
        neg = [r for r in must if not r["must_refuse"]]
        out["must_refuse"] = {"n": len(pos), "correct_refusal_rate": rounded(M.mean(float(r["refused"]) for r in pos))
                              if pos else None,
                              "false_refusal_rate": rounded(M.mean(float(r["refused"]) for r in neg)) if neg else None}
    return {k: v for k, v in out.items() if v is not None}


def own_report(suite: str):
    """The suite's module when it builds its own report part (aggregate, CHART + chart, report_section); None for
    the question suites (ncp, custom), whose retrieval and answer tables are the generic ones below."""
    from importlib import import_module

    from eval.suites import REGISTRY
    if suite not in REGISTRY:
        return None
    module = import_module(REGISTRY[suite].split(":")[0])
    return module if hasattr(module, "report_section") else None


def aggregate(suite: str, records: list[dict]) -> dict:
    if (module := own_report(suite)) is not None:
        return module.aggregate(records)
    out: dict = {"n": len(records), "retrieval": aggregate_retrieval(records), "answer": aggregate_answers(records)}
    if suite == "ncp":
        from eval.suites.ncp import PUBLISHED
        out["published"] = PUBLISHED
    return out


def build_summary(out: Path, container) -> tuple[dict, dict[str, list[dict]]]:
    run = json.loads((out / "run.json").read_text(encoding="utf-8")) if (out / "run.json").exists() else {}
    by_suite: dict[str, list[dict]] = {}
    for rec in load_items(out):
        by_suite.setdefault(rec.get("suite", "?"), []).append(rec)
    for recs in by_suite.values():
        recs.sort(key=lambda r: r["key"])
    suites = {}
    errors: dict[str, list[dict]] = {}
    for suite in list(by_suite):
        errors[suite] = [r for r in by_suite[suite] if "error" in r]
        by_suite[suite] = [r for r in by_suite[suite] if "error" not in r]
    for suite in [s for s in SUITE_ORDER if s in by_suite] + sorted(set(by_suite) - set(SUITE_ORDER)):
        agg = aggregate(suite, by_suite[suite])
        if errors[suite]:
            agg["errors"] = {"n": len(errors[suite]), "first": errors[suite][0]["error"]}
        agg["run"] = run.get("runs", {}).get(suite, {})
        suites[suite] = agg
    s = container.settings
    summary = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model": container.model_name,
               "embedding": container.embedding_name, "profiles": list(s.profiles),
               "config_fingerprint": run.get("config_fingerprint"), "config": settings_snapshot(container),
               "judge": next((m.get("judge") for m in run.get("runs", {}).values() if m.get("judge")), None),
               "suites": suites}
    return summary, by_suite


# --- charts ----------------------------------------------------------------------------------------------

def chart_recall(summary: dict, path: Path) -> Path | None:
    panels = [(name, agg) for name, agg in summary["suites"].items() if agg.get("retrieval")]
    if not panels:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (name, agg) in zip(axes[0], panels):
        for mode, m in agg["retrieval"].items():
            ax.plot(CURVE_K, m["recall_curve"], marker="o", label=f"{mode} (n={m['n']})")
        for label, pub in (agg.get("published") or {}).items():
            ks = [k for k in CURVE_K if f"R@{k}" in pub]
            ax.plot(ks, [pub[f"R@{k}"] for k in ks], "k*--", markersize=10, label=label)
        ax.set_title(f"{name}: document recall@k")
        ax.set_xlabel("k (distinct documents)")
        ax.set_ylabel("recall@k")
        ax.set_xticks(CURVE_K)
        ax.grid(alpha=.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def chart_latency(by_suite: dict[str, list[dict]], path: Path) -> Path | None:
    retrieval = {m: [r["timings"][f"{m}_ms"] for recs in by_suite.values() for r in recs
                     if f"{m}_ms" in r.get("timings", {})] for m in MODES}
    retrieval = {m: v for m, v in retrieval.items() if v}
    answers = {s: [r["timings"]["answer_total_ms"] / 1000 for r in recs if "answer_total_ms" in r.get("timings", {})]
               for s, recs in by_suite.items()}
    answers = {s: v for s, v in answers.items() if v}
    panels = [p for p in (("retrieval latency per mode (ms)", retrieval), ("answer latency per suite (s)", answers))
              if p[1]]
    if not panels:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.8), squeeze=False)
    import numpy as np
    for ax, (title, data) in zip(axes[0], panels):
        every = [v for values in data.values() for v in values]
        lo, hi = max(min(every), 1e-3), max(max(every), 1e-3)
        log = hi / lo > 30
        bins = np.geomspace(lo, hi * 1.001, 31) if log else np.linspace(min(every), hi * 1.001, 31)
        for name, values in data.items():
            ax.hist(values, bins=bins, alpha=.55, label=f"{name} (p50 {M.percentile(values, 50):.3g})")
        if log:
            ax.set_xscale("log")
        ax.set_title(title)
        ax.set_ylabel("items")
        ax.legend()
        ax.grid(alpha=.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- documents (one model, rendered to Markdown and HTML) ---------------------------------------------------

def build_document(summary: dict, by_suite: dict[str, list[dict]], charts: dict[str, Path]) -> list[tuple]:
    doc: list[tuple] = [("h", 1, "政务大模型助手 · evaluation report")]
    cfg = summary["config"]
    llm, ret = cfg["llm"], cfg["retrieval"]
    doc.append(("p", f"Generated {summary['generated']}. Model **{summary['model']}**, embedding "
                     f"**{summary['embedding']}**, profiles: {', '.join(summary['profiles']) or '(default)'}; "
                     f"configuration fingerprint `{summary['config_fingerprint']}`. Every suite calls the product's "
                     "services (KnowledgeBaseService ingest, SearchService retrieval, QAService / Answerer answers)."))
    if summary.get("judge"):
        j = summary["judge"]
        doc.append(("p", f"**LLM-as-judge used**: {j['model']} at {j['url']} — judge scores are another model's "
                         "opinion, not reference metrics."))
    doc.append(("h", 2, "Configuration"))
    doc.append(("table", ["setting", "value"], [
        ["llm", f"{llm['mode']} · {summary['model']} · temperature {llm['temperature']} · seed {llm['seed']} · "
                f"max_tokens {llm['max_tokens']}"],
        ["embedding", f"{cfg['embedding']['mode']} ({summary['embedding']})"],
        ["retrieval", f"top_k {ret['top_k']} · candidates {ret['candidates']} · RRF k={ret['rrf_k']} · weights "
                      f"{ret['weights']} · evidence gate dense≥{ret['min_dense_similarity']} or "
                      f"coverage≥{ret['min_term_coverage']} · default status {ret['default_status']}"],
        ["rerank", cfg["rerank"]["mode"]],
        ["chunking", f"max {cfg['chunking']['max_chars']} / min {cfg['chunking']['min_chars']} chars"],
        ["answer", f"context ≤ {cfg['answer']['max_context_chars']} chars"],
        ["data dir", str(cfg["data_dir"])],
    ]))
    for suite, agg in summary["suites"].items():
        run = agg.get("run", {})
        doc.append(("h", 2, f"Suite `{suite}`"))
        if run.get("command"):
            doc.append(("code", run["command"]))
        opts = run.get("options", {})
        bits = [f"{run.get('items', '?')} item(s) selected", f"{run.get('ran', '?')} run now",
                f"{run.get('skipped', 0)} resumed", f"{run.get('seconds', '?')} s"]
        if opts.get("kb"):
            bits.append(f"knowledge base `{opts['kb']}`")
        if opts.get("data"):
            bits.append(f"data `{opts['data']}`")
        done = len(by_suite.get(suite, []))
        if run.get("status") == "running" or (isinstance(run.get("items"), int) and done < run["items"]):
            doc.append(("p", f"**Partial run: {done} of {run.get('items', '?')} items done** (started "
                             f"{run.get('started', '?')}; resume with the command above). Not a final result: "
                             "the items are in file order, not a random sample."))
        else:
            doc.append(("p", "Last run: " + ", ".join(bits) + "."))
        sessions = run.get("sessions", [])
        if len(sessions) > 1:
            resumed = ", ".join(f"{s['started']} ({s.get('done_before', '?')} done)" for s in sessions[1:])
            doc.append(("p", f"Ran in {len(sessions)} sessions: started {sessions[0]['started']}, resumed {resumed}."))
        for note in run.get("notes", []):
            doc.append(("p", f"Note: {note}"))
        if agg.get("errors"):
            doc.append(("p", f"**{agg['errors']['n']} item(s) failed** and are left out of the tables (a re-run "
                             f"retries them); first error: {agg['errors']['first']}"))
        if (module := own_report(suite)) is not None:
            module.report_section(doc, agg, by_suite[suite], charts)
        else:
            _retrieval_answer_sections(doc, suite, agg, by_suite[suite], charts)
    if "latency" in charts:
        doc.append(("h", 2, "Latency"))
        doc.append(("img", charts["latency"], "latency histograms"))
    doc.append(("h", 2, "Definitions"))
    doc.append(("list", [
        "Retrieval is document-level: the ranked chunk list (retrieval_k chunks per query) is turned into a document "
        "ranking by each document's first chunk; R@k = gold document among the first k documents; MRR@10 and "
        "nDCG@10 (binary relevance) on that ranking. Text-identical twin documents count as the gold document.",
        "Answer metrics compare the answer (citation markers removed) with the gold span after NFKC, lowercasing and "
        "removing punctuation and spaces: character F1, exact match, character ROUGE-L F1; `contains` = the gold span "
        "occurs in the answer.",
        "Citation accuracy: share of non-refused answers citing ([n]) at least one chunk of the gold document; "
        "citation precision: share of cited chunks from the gold document; context hit: the gold document was among "
        "the passages given to the LLM. Refusal rate: answers flagged refused by the product (evidence gate or "
        "refusal text).",
        "RGB: 5 passages per query, round(5·ratio) negatives, shuffled with a fixed seed (RGB's code uses "
        "ceil(), which float error makes 4 negatives at 0.6); correct = every answer item (any alternative) occurs in "
        "the normalised answer and the answer is not a refusal (RGB: no '信息不足'); rejection = eval.metrics.is_refusal "
        "on all-noise passages (RGB's published 5.33 counts exact '信息不足' answers).",
        "Summaries: ROUGE-L F1 x100 at character level (headline) and over jieba words (LawBench's scorer uses jieba "
        "words with rouge_chinese, so its published figures compare with the word-level column).",
        "Rejection: NCP questions whose gold document and every document containing the gold span were removed "
        "from the knowledge base (absent: must be refused) and questions whose gold document is there (present: "
        "must be answered); refused = the product's refusal flag or a refusal text; halves by question-id parity "
        "(even: tuned, odd: held-out).",
        "Latency: p50 / p95 over the items of the run on this machine.",
    ]))
    return doc


def _retrieval_answer_sections(doc, suite, agg, records, charts):
    if agg.get("retrieval"):
        doc.append(("h", 3, "Retrieval (document level)"))
        rows = []
        for mode, m in agg["retrieval"].items():
            rows.append([mode, m["n"], fmt_value(m["R@1"]), fmt_value(m["R@3"]), fmt_value(m["R@5"]), fmt_value(m["R@10"]),
                         fmt_value(m["MRR@10"]), fmt_value(m["nDCG@10"]), fmt_latency(m["latency"])])
        for label, pub in (agg.get("published") or {}).items():
            rows.append([label, "", fmt_value(pub.get("R@1")), "–", fmt_value(pub.get("R@5")), fmt_value(pub.get("R@10")),
                         fmt_value(pub.get("MRR@10")), "–", "–"])
        doc.append(("table", ["mode", "n", "R@1", "R@3", "R@5", "R@10", "MRR@10", "nDCG@10", "p50/p95 ms"], rows))
        if "recall" in charts:
            doc.append(("img", charts["recall"], "recall@k per mode"))
    a = agg.get("answer")
    if a:
        doc.append(("h", 3, "Answers (QAService, hybrid retrieval)"))
        head = ["n", "F1", "EM", "ROUGE-L", "contains", "F1 (answered)", "citation acc", "citation prec",
                "context hit", "refusal rate", "p50/p95 s", "first token p50 s"]
        ft = a.get("first_token") or {}
        doc.append(("table", head, [[a["n"], fmt_value(a.get("f1")), fmt_value(a.get("em")), fmt_value(a.get("rouge_l")),
                                     fmt_value(a.get("contains")), fmt_value(a.get("f1_answered")), fmt_value(a.get("citation_acc")),
                                     fmt_value(a.get("citation_precision")), fmt_value(a.get("context_hit")),
                                     fmt_value(a.get("refusal_rate")), fmt_latency(a.get("latency"), "s"),
                                     f"{ft['p50_ms'] / 1000:.1f}" if ft else "–"]]))
        doc.append(("p", f"Answers stating a figure none of their passages states: "
                         f"{a.get('unsupported_figure_answers', 0)} (target 0); sentences removed by verification: "
                         f"{a.get('removed_sentences', 0)}."))
        if a.get("must_refuse"):
            mr = a["must_refuse"]
            doc.append(("p", f"Must-refuse questions: {mr['n']}; correctly refused "
                             f"{fmt_value(mr.get('correct_refusal_rate'))}; answerable questions refused "
                             f"{fmt_value(mr.get('false_refusal_rate'))}."))
        if a.get("judge"):
            j = a["judge"]
            doc.append(("p", f"LLM-as-judge (labelled, not a reference metric) over {j['n']} answered items: "
                             f"faithfulness {fmt_value(j['faithfulness'])}, relevance {fmt_value(j['relevance'])} (0–1)."))
    # per-item: misses first (gold not in the first 5 documents of the first available mode), then the rest
    modes = list(agg.get("retrieval", {}))
    if records:
        doc.append(("h", 3, "Items (gold document not in the first 5 first; all items in items.jsonl)"))
        key = modes[-1] if modes else None

        def miss(r):   # 0: gold document not in the first 5, 1: found, 2: no gold document (must_refuse ...)
            m = r.get("metrics", {}).get(key) if key else None
            if m is None:
                return (2, r["key"])
            return (int(m["gold_rank"] is not None and m["gold_rank"] <= 5), r["key"])
        rows = []
        for r in sorted(records, key=miss)[:25]:
            ranks = [str(r.get("metrics", {}).get(m, {}).get("gold_rank") or "–") for m in modes]
            am = r.get("metrics", {}).get("answer", {})
            rows.append([r["id"], short_text(r["question"], 40), *ranks, short_text(r.get("answer", ""), 50),
                         fmt_value(am.get("f1")) if "answer" in r else "–"])
        doc.append(("table", ["id", "question", *[f"gold rank {m}" for m in modes], "answer", "F1"], rows))


def render_markdown(doc: list[tuple], out: Path) -> str:
    lines: list[str] = []
    for block in doc:
        kind = block[0]
        if kind == "h":
            lines += [f"{'#' * block[1]} {block[2]}", ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "code":
            lines += ["```bash", block[1], "```", ""]
        elif kind == "list":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            esc = lambda c: str(c).replace("|", "\\|").replace("\n", " ")  # noqa: E731
            lines.append("| " + " | ".join(esc(h) for h in block[1]) + " |")
            lines.append("|" + "---|" * len(block[1]))
            lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in block[2]]
            lines.append("")
        elif kind == "img":
            lines += [f"![{block[2]}]({Path(block[1]).relative_to(out)})", ""]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}td,th{border:1px solid #ccc;
padding:.25em .6em;text-align:left}th{background:#f3f3f3}code,pre{background:#f6f6f6;padding:.1em .3em}
pre{padding:.6em;overflow-x:auto}img{max-width:100%;border:1px solid #eee}h2{border-bottom:1px solid #ddd}"""


def render_html(doc: list[tuple]) -> str:
    import re

    def inline(text: str) -> str:
        t = html.escape(str(text))
        t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", t)

    parts = ["<!doctype html><html lang='zh'><head><meta charset='utf-8'><title>evaluation report</title>",
             f"<style>{_CSS}</style></head><body>"]
    for block in doc:
        kind = block[0]
        if kind == "h":
            parts.append(f"<h{block[1]}>{inline(block[2])}</h{block[1]}>")
        elif kind == "p":
            parts.append(f"<p>{inline(block[1])}</p>")
        elif kind == "code":
            parts.append(f"<pre>{html.escape(block[1])}</pre>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            parts.append("<table><tr>" + "".join(f"<th>{inline(h)}</th>" for h in block[1]) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in block[2]]
            parts.append("</table>")
        elif kind == "img":
            data = base64.b64encode(Path(block[1]).read_bytes()).decode()
            parts.append(f"<figure><img alt='{html.escape(block[2])}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(block[2])}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out: Path, container) -> dict:
    out = Path(out)
    summary, by_suite = build_summary(out, container)
    charts: dict[str, Path] = {}
    parts = [("recall", "recall_at_k.png", lambda p: chart_recall(summary, p))]
    for suite in summary["suites"]:
        if (module := own_report(suite)) is not None:
            key, file = module.CHART
            parts.append((key, file, lambda p, m=module: m.chart(summary, p)))
    parts.append(("latency", "latency.png", lambda p: chart_latency(by_suite, p)))
    for key, file, fn in parts:
        if path := fn(out / file):
            charts[key] = path
    summary["charts"] = {k: v.name for k, v in charts.items()}
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    doc = build_document(summary, by_suite, charts)
    (out / "report.md").write_text(render_markdown(doc, out), encoding="utf-8")
    (out / "report.html").write_text(render_html(doc), encoding="utf-8")
    return summary
