"""Laws: citizens' questions in lay language whose answer is a specific article of a national law (laws.db).

Data (default samples/law_questions.jsonl), one JSON object a line:
  {"id", "question", "law": full law name, "articles": ["第X条", ...], "paraphrase"?: bool,
   "also"?: [{"law", "articles"}], "note"?: str}
`also` names another law's articles that answer the question as well (a hit there counts); `paraphrase` marks the
questions that share (almost) no wording with their article. Held-out split by id parity (eval.suites.rejection
.half_of): even ids may be tuned on, odd ids never; the report shows both apart.

Knowledge base (default eval-laws): exactly the laws the questions name, every version laws.db holds (so the
validity filter is exercised: a repealed or historical version has articles of the same number), ingested through
the product's path (ingest.laws.iter_law_documents → KnowledgeBaseService.ingest_documents; idempotent, so a re-run
reuses it). Law documents of other laws are deleted from it; documents from elsewhere are only reported.

Each question is searched once per mode (bm25, dense, hybrid) through SearchService with the product's default
filters (validity: retrieval.default_status). Article-level: a retrieved chunk is a hit when its metadata law is a
gold law, its article a gold article of that law and its status 现行有效 (whatever the filter let through);
Hit@1/5/10 and MRR@10 over the ranked chunk list (one chunk per article). Law-level Hit@5: a current version of a
gold law among the first 5 distinct documents.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from assistant.services.access import LOCAL_ADMIN
from eval import metrics as M
from eval.data import DEFAULT_PATHS, DataError
from eval.base import EvalError, RunContext, WorkItem, timed
from eval.suites.common import note_embedding, note_ingest, retrieval_complete, warm_up
from eval.suites.rejection import half_of

DEFAULT_KB = "eval-laws"
CURRENT = "现行有效"
CUTOFFS = (1, 5, 10)
KEPT = 10                     # chunks recorded per mode (the metrics need no more)
SUBSETS = ("all", "even (tuned)", "odd (held-out)", "paraphrase")
FIELDS = {"id", "question", "law", "articles", "paraphrase", "also", "note"}
ARTICLE = re.compile(r"第[零〇一二两三四五六七八九十百千]+条(之[一二三四五六七八九十]+)?")


# --- the question file ---------------------------------------------------------------------------------------

def _articles(value, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: field 'articles': a non-empty list like [\"第三十条\"]")
    bad = [a for a in value if not isinstance(a, str) or not ARTICLE.fullmatch(a)]
    if bad:
        raise DataError(f"{where}: field 'articles': {bad[0]!r} is not an article number like 第三十条")
    return list(value)


def _law(value, where: str, field: str = "law") -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field '{field}': the law's full name as in laws.db (中华人民共和国…法)")
    return value.strip()


def parse_question(rec, where: str) -> dict:
    """One line of the question file, checked field by field (errors name the file:line and the field)."""
    if not isinstance(rec, dict):
        raise DataError(f"{where}: each line must be a JSON object")
    unknown = sorted(set(rec) - FIELDS)
    if unknown:
        raise DataError(f"{where}: unknown field '{unknown[0]}' (fields: {', '.join(sorted(FIELDS))})")
    for key in ("id", "question", "law", "articles"):
        if rec.get(key) in (None, "", []):
            raise DataError(f"{where}: field '{key}' is missing")
    if isinstance(rec["id"], bool) or not isinstance(rec["id"], (int, str)):
        raise DataError(f"{where}: field 'id': a number or a string")
    if not isinstance(rec["question"], str) or not rec["question"].strip():
        raise DataError(f"{where}: field 'question': a non-empty string")
    if not isinstance(rec.get("paraphrase", False), bool):
        raise DataError(f"{where}: field 'paraphrase': true or false")
    if not isinstance(rec.get("note", ""), str):
        raise DataError(f"{where}: field 'note': a string")
    gold = [(_law(rec["law"], where), _articles(rec["articles"], where))]
    also = rec.get("also", [])
    if not isinstance(also, list):
        raise DataError(f"{where}: field 'also': a list of {{\"law\", \"articles\"}}")
    for i, alt in enumerate(also):
        if not isinstance(alt, dict) or set(alt) != {"law", "articles"}:
            raise DataError(f"{where}: field 'also[{i}]': an object with exactly law and articles")
        gold.append((_law(alt["law"], where, f"also[{i}].law"), _articles(alt["articles"], f"{where} (also[{i}])")))
    return {"id": str(rec["id"]), "question": rec["question"].strip(), "law": gold[0][0], "articles": gold[0][1],
            "gold": [{"law": law, "articles": arts} for law, arts in gold],
            "paraphrase": bool(rec.get("paraphrase", False)), "note": rec.get("note", ""), "where": where}


def load_questions(path: Path | None = None) -> list[dict]:
    path = Path(path or DEFAULT_PATHS["laws"])
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    questions, seen = [], {}
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc.msg})") from None
            q = parse_question(rec, where)
            if q["id"] in seen:
                raise DataError(f"{where}: field 'id': {q['id']} again (first at line {seen[q['id']]})")
            seen[q["id"]] = lineno
            questions.append(q)
    if not questions:
        raise DataError(f"{path}: no questions")
    return questions


def gold_laws(questions: list[dict]) -> list[str]:
    return sorted({g["law"] for q in questions for g in q["gold"]})


def check_against_laws_db(questions: list[dict], db_path: Path | None = None) -> list[str]:
    """Problems with the gold answers in laws.db: a law without a current version, an article its current version
    lacks. Empty when every gold article exists (read-only)."""
    import sqlite3

    from ingest.laws import laws_db_path
    db = sqlite3.connect(f"file:{db_path or laws_db_path()}?mode=ro", uri=True)
    try:
        current: dict[str, set[str]] = {}
        for law, article in db.execute("SELECT law_name, article_no FROM articles WHERE status=?", (CURRENT,)):
            current.setdefault(law, set()).add(article)
    finally:
        db.close()
    problems = []
    for q in questions:
        for g in q["gold"]:
            if g["law"] not in current:
                problems.append(f"{q['where']}: law {g['law']!r} has no {CURRENT} version in laws.db")
                continue
            problems += [f"{q['where']}: {g['law']} has no {a} in its {CURRENT} version"
                         for a in g["articles"] if a not in current[g["law"]]]
    return problems


# --- the metric ----------------------------------------------------------------------------------------------

def is_gold(chunk: dict, gold: list[dict]) -> bool:
    """A retrieved chunk answers the question: a gold law's gold article in the current version (a historical or
    repealed version's article of the same number does not)."""
    return chunk.get("status") == CURRENT and any(
        chunk.get("law") == g["law"] and chunk.get("article") in g["articles"] for g in gold)


def first_rank(flags) -> int | None:
    return next((i for i, hit in enumerate(flags, 1) if hit), None)


def article_metrics(chunks: list[dict], gold: list[dict]) -> dict:
    """chunks: the ranked chunk list of one search, each {"doc_id", "law", "article", "status"}."""
    rank = first_rank(is_gold(c, gold) for c in chunks)
    laws = {g["law"] for g in gold}
    docs = {}
    for c in chunks:
        docs.setdefault(c["doc_id"], c.get("law") in laws and c.get("status") == CURRENT)
    law_rank = first_rank(docs.values())
    out = {f"hit@{k}": float(rank is not None and rank <= k) for k in CUTOFFS}
    out["mrr@10"] = 1.0 / rank if rank and rank <= 10 else 0.0
    out["law_hit@5"] = float(law_rank is not None and law_rank <= 5)
    out["rank"] = rank
    out["law_rank"] = law_rank
    out["not_current@10"] = sum(c.get("status") != CURRENT for c in chunks[:10])
    return out


def _chunk(hit) -> dict:
    m = hit.metadata
    return {"doc_id": hit.doc_id, "law": m.get("law") or m.get("title", ""), "article": m.get("article"),
            "status": m.get("status")}


# --- the suite -----------------------------------------------------------------------------------------------

class LawsSuite:
    name = "laws"

    def prepare(self, ctx: RunContext) -> list[WorkItem]:
        opts = ctx.options
        questions = load_questions(opts.data)
        problems = check_against_laws_db(questions)
        if problems:
            raise EvalError(f"{len(problems)} gold article(s) not in laws.db, e.g. {problems[0]}")
        kb = opts.kb = opts.kb or DEFAULT_KB
        self._sync_kb(ctx, kb, gold_laws(questions))
        warm_up(ctx, kb)
        n_para = sum(q["paraphrase"] for q in questions)
        ctx.note(f"{len(questions)} question(s) over {len(gold_laws(questions))} law(s), {n_para} paraphrase; "
                 "held-out: odd ids (never tune on them)")
        return [WorkItem(f"laws:{q['id']}", q) for q in questions]

    def _sync_kb(self, ctx: RunContext, kb: str, names: list[str]) -> None:
        from ingest.laws import iter_law_documents, select_laws
        c = ctx.container
        if ctx.options.no_ingest:
            c.store.catalog.require_kb(kb)
            ctx.note(f"{kb}: used as it is (--no-ingest)")
        else:
            laws = [law for law in select_laws() if law["law_name"] in set(names)]
            if c.store.catalog.get_kb(kb) is None:
                c.knowledge_bases.create(kb, "评测：法律条文检索（laws 套件）", principal=LOCAL_ADMIN)
            report = c.knowledge_bases.ingest_documents(
                kb, list(iter_law_documents(laws)),
                lambda phase, done, total, detail="": ctx.progress(f"{phase} {kb}", done, total, detail),
                principal=LOCAL_ADMIN)
            note_ingest(ctx, report, f"laws.db → {kb} ({len(names)} law(s) in {len(laws)} version(s), "
                                     f"{len(laws) - len(names)} not current)")
            wanted = {f"law-{law['law_id']}" for law in laws}
            stale = [d["doc_id"] for d in c.store.catalog.list_documents(kb)
                     if d["doc_id"].startswith("law-") and d["doc_id"] not in wanted]
            for doc_id in stale:
                c.knowledge_bases.delete_document(kb, doc_id, principal=LOCAL_ADMIN)
            if stale:
                ctx.note(f"{len(stale)} law(s) no question names deleted from {kb}")
        foreign = [d for d in c.store.catalog.list_documents(kb) if not d["doc_id"].startswith("law-")]
        if foreign:
            ctx.note(f"warning: {kb} holds {len(foreign)} document(s) that are not from laws.db")
        note_embedding(ctx, kb)

    def is_complete(self, ctx: RunContext, record: dict) -> bool:
        return retrieval_complete(ctx, record)

    def run_item(self, ctx: RunContext, item: WorkItem) -> dict:
        q = item.payload
        record = {"id": q["id"], "question": q["question"], "kb": ctx.options.kb, "half": half_of(q["id"]),
                  "paraphrase": q["paraphrase"], "gold": q["gold"], "note": q["note"],
                  "retrieval": {}, "metrics": {}, "timings": {}}
        for mode in ctx.options.modes:
            result, ms = timed(ctx.container.search.search, q["question"], [ctx.options.kb], None,
                               ctx.options.retrieval_k, principal=LOCAL_ADMIN, mode=mode)
            chunks = [_chunk(h) for h in result.hits]
            record["metrics"][mode] = article_metrics(chunks, q["gold"])
            record["retrieval"][mode] = chunks[:KEPT]
            record["timings"][f"{mode}_ms"] = round(ms, 1)
            if getattr(result, "vector_share", 1.0) < 1.0:
                record.setdefault("vector_share", {})[mode] = result.vector_share
        return record


# --- aggregation and report (called from eval/report.py and eval/cli.py) ----------------------------------------

def _in(subset: str, r: dict) -> bool:
    return {"all": True, "even (tuned)": r.get("half") == "tuned", "odd (held-out)": r.get("half") == "held-out",
            "paraphrase": bool(r.get("paraphrase"))}[subset]


CHART = ("laws", "laws_hits.png")   # the chart's key in the report and its file in the run folder


def aggregate(records: list[dict]) -> dict:
    from eval.report_format import latency_stats, rounded
    from eval.base import MODES
    out: dict = {"n": len(records), "articles": {}, "curve": {}}
    for mode in [m for m in MODES if any(m in r.get("metrics", {}) for r in records)]:
        rows = [r for r in records if mode in r.get("metrics", {})]
        out["articles"][mode] = {}
        for subset in SUBSETS:
            ms = [r["metrics"][mode] for r in rows if _in(subset, r)]
            if not ms:
                continue
            agg = {"n": len(ms), **{k: rounded(M.mean(m[k] for m in ms)) for k in
                                    (*(f"hit@{c}" for c in CUTOFFS), "mrr@10", "law_hit@5")}}
            agg["not_current@10"] = sum(m["not_current@10"] for m in ms)
            out["articles"][mode][subset] = agg
        out["curve"][mode] = [rounded(M.mean(float(r["metrics"][mode]["rank"] is not None
                                                and r["metrics"][mode]["rank"] <= k) for r in rows))
                              for k in range(1, 11)]
        out["articles"][mode]["latency"] = latency_stats([r.get("timings", {}).get(f"{mode}_ms") for r in rows])
    return out


def chart(summary: dict, path: Path) -> Path | None:
    agg = summary["suites"].get("laws")
    if not agg or not agg.get("articles"):
        return None
    from eval.report_format import pyplot
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    for mode, curve in agg["curve"].items():
        left.plot(range(1, 11), curve, marker="o", label=f"{mode} (n={agg['articles'][mode]['all']['n']})")
    left.set(title="laws: article Hit@k (all questions)", xlabel="k (chunks = articles)", ylabel="Hit@k",
             xticks=list(range(1, 11)), ylim=(0, 1.02))
    left.grid(alpha=.3)
    left.legend(loc="lower right")
    modes = list(agg["articles"])
    subsets = [s for s in SUBSETS if all(s in agg["articles"][m] for m in modes)]
    width = .8 / len(modes)
    for i, mode in enumerate(modes):
        xs = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(subsets))]
        bars = right.bar(xs, [agg["articles"][mode][s]["hit@5"] for s in subsets], width, label=mode)
        for bar, s in zip(bars, subsets):
            right.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + .01,
                       f"{agg['articles'][mode][s]['hit@5']:.2f}", ha="center", va="bottom", fontsize=7)
    right.set_xticks(range(len(subsets)), [f"{s}\nn={agg['articles'][modes[0]][s]['n']}" for s in subsets])
    right.set(title="article Hit@5 per subset", ylabel="Hit@5", ylim=(0, 1.22))
    right.grid(alpha=.3, axis="y")
    right.legend(loc="upper center", ncol=len(modes), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


HEAD = ["mode", "subset", "n", "Hit@1", "Hit@5", "Hit@10", "MRR@10", "law Hit@5", "not current in top 10"]


def table_rows(agg: dict) -> list[list]:
    from eval.report_format import fmt_value
    return [[mode, subset, m["n"], *(fmt_value(m[k]) for k in ("hit@1", "hit@5", "hit@10", "mrr@10", "law_hit@5")),
             m["not_current@10"]]
            for mode, per in agg.get("articles", {}).items() for subset, m in per.items() if subset in SUBSETS]


def _short_law(name) -> str:
    return str(name or "").removeprefix("中华人民共和国")


def _label(chunk: dict) -> str:
    law = _short_law(chunk.get("law"))
    status = "" if chunk.get("status") == CURRENT else f"（{chunk.get('status')}）"
    return f"{law}{status} {chunk.get('article') or '(说明)'}"


def report_section(doc: list, agg: dict, records: list[dict], charts: dict) -> None:
    from eval.report_format import fmt_latency, short_text
    doc.append(("h", 3, "Article retrieval (a hit: gold law, gold article, current version)"))
    doc.append(("table", HEAD, table_rows(agg)))
    doc.append(("p", "Latency p50 / p95 ms: " + "; ".join(f"{mode} {fmt_latency(per.get('latency'))}"
                                                           for mode, per in agg.get("articles", {}).items())))
    if "laws" in charts:
        doc.append(("img", charts["laws"], "article Hit@k per mode; Hit@5 per subset"))
    modes = list(agg.get("articles", {}))
    if not records or not modes:
        return
    key = "hybrid" if "hybrid" in modes else modes[-1]
    miss = [r for r in records if (r["metrics"][key]["rank"] or 99) > 5]
    doc.append(("h", 3, f"Questions whose gold article is not in {key}'s first 5 ({len(miss)} of {len(records)})"))
    if not miss:
        return
    rows = []
    for r in sorted(miss, key=lambda r: (r["metrics"][key]["rank"] or 99, r["key"])):
        gold = "; ".join(f"{_short_law(g['law'])} {'、'.join(g['articles'])}" for g in r["gold"])
        ranks = [str(r["metrics"][m]["rank"] or "–") for m in modes]
        top = " · ".join(_label(c) for c in r["retrieval"][key][:3])
        rows.append([r["id"], r["half"], "yes" if r.get("paraphrase") else "", short_text(r["question"], 34), gold,
                     *ranks, short_text(top, 70)])
    doc.append(("table", ["id", "half", "paraphrase", "question", "gold", *[f"rank {m}" for m in modes],
                          f"{key} top 3"], rows))
    doc.append(("p", "Ranks are chunk positions (one chunk per article; each law also has one metadata passage); "
                     "– = not in the retrieved chunks. Odd ids are held out: nothing is tuned on them."))


def print_table(agg: dict):
    from rich.table import Table
    t = Table(*HEAD, title="laws: article retrieval")
    for row in table_rows(agg):
        t.add_row(*(str(c) for c in row))
    return t
