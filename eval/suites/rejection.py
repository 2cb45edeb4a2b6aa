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
from itertools import zip_longest
from pathlib import Path

from assistant.services.access import LOCAL_ADMIN
from eval import metrics as M
from eval.data import load_ncp, read_jsonl
from eval.base import EvalError, RunContext, WorkItem
from eval.report_format import fmt_value, latency_stats, pyplot, rounded, short_text
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
        ask(ctx, q["question"], ctx.options.kb, record, q["answer"] if present else None,
            q["gold_ids"] if present else None)
        refused = declined(record)
        am = record["metrics"]["answer"]
        am["declined"] = float(refused)
        am["correct"] = float(refused != present)
        if present and not refused:
            am["cites_gold"] = float(any(c["cited"] and c["doc_id"] in set(q["gold_ids"])
                                         for c in record["citations"]))
        return record


# --- report (eval/report.py calls aggregate, chart and report_section of a suite that has them) ---------

CHART = ("rejection", "rejection.png")   # the chart's key in the report and its file in the run folder


def aggregate(records: list[dict]) -> dict:
    """Refusal rate on absent questions, answer rate on present ones, per half (tuned / held-out) and overall;
    for the present questions answered: character F1 against the gold span and the share citing the gold
    document."""
    def part(rows: list[dict]) -> dict:
        absent = [r for r in rows if r.get("kind") == "absent"]
        present = [r for r in rows if r.get("kind") == "present"]
        answered = [r for r in present if not declined(r)]
        am = [r["metrics"]["answer"] for r in answered]
        out = {"absent": len(absent), "present": len(present), "answered_present": len(answered),
               "refusal_rate_absent": rounded(M.mean(float(declined(r)) for r in absent)) if absent else None,
               "answer_rate_present": rounded(len(answered) / len(present)) if present else None,
               "f1_answered": rounded(M.mean(a.get("f1", 0.0) for a in am)) if am else None,
               "cites_gold_answered": rounded(M.mean(a.get("cites_gold", 0.0) for a in am)) if am else None,
               # answered items (either kind) stating a figure none of their passages states (common.ask)
               "unsupported_figure_answers": sum(int(r["metrics"]["answer"].get("unsupported_figures", 0) > 0)
                                                 for r in rows if not declined(r))}
        out["meets_targets"] = None if None in (out["refusal_rate_absent"], out["answer_rate_present"]) else (
            out["refusal_rate_absent"] >= TARGETS["refusal_rate_absent"]
            and out["answer_rate_present"] >= TARGETS["answer_rate_present"])
        return out

    halves = {h: part([r for r in records if r.get("half") == h]) for h in HALVES}
    reasons: dict[str, dict[str, int]] = {}
    for r in records:   # why present questions were refused / absent ones answered (verification.reason)
        wrong = declined(r) == (r.get("kind") == "present")
        if wrong:
            reason = str((r.get("verification") or {}).get("reason") or "–")
            reasons.setdefault(r.get("kind", "?"), {}).setdefault(reason, 0)
            reasons[r.get("kind", "?")][reason] += 1
    return {"n": len(records), "halves": halves, "all": part(records), "targets": TARGETS,
            "wrong_by_reason": reasons,
            "latency": latency_stats([r.get("timings", {}).get("answer_total_ms") for r in records])}


def chart(summary: dict, path: Path) -> Path | None:
    agg = summary["suites"].get("rejection")
    if not agg or not agg.get("n"):
        return None
    plt = pyplot()
    groups = [(name, agg["halves"][name]) for name in agg["halves"]] + [("all", agg["all"])]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    xs = range(len(groups))
    series = (("refusal_rate_absent", "absent refused", "absent", "C3"),
              ("answer_rate_present", "present answered", "present", "C0"))
    for i, (key, label, count, color) in enumerate(series):
        vals = [100 * (g[key] or 0.0) for _, g in groups]
        bars = ax.bar([x + (i - .5) * .38 for x in xs], vals, .38, label=label, color=color)
        for bar, (_, g) in zip(bars, groups):
            if g[key] is not None:
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 1, f"{100 * g[key]:.0f}%\n"
                        f"n={g[count]}", ha="center", va="bottom", fontsize=7)
        ax.axhline(100 * agg["targets"][key], ls="--", lw=1, color=color, alpha=.8)
    ax.set_xticks(list(xs), [name for name, _ in groups])
    ax.set_ylim(0, 118)
    ax.set_ylabel("%")
    t = agg["targets"]
    ax.set_title(f"rejection: refuse ≥ {100 * t['refusal_rate_absent']:.0f}% absent, answer ≥ "
                 f"{100 * t['answer_rate_present']:.0f}% present (dashed)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report_section(doc, agg, records, charts):
    t = agg["targets"]
    target = (f"target: refuse ≥ {100 * t['refusal_rate_absent']:.0f}% of absent while answering ≥ "
              f"{100 * t['answer_rate_present']:.0f}% of present")
    doc.append(("h", 3, "Refusal of absent questions, answers to present ones"))
    rows = []
    for name, g in [*agg["halves"].items(), ("all", agg["all"])]:
        pct = lambda v: "–" if v is None else f"{100 * v:.1f}"  # noqa: E731
        rows.append([name, g["absent"], pct(g["refusal_rate_absent"]), g["present"], pct(g["answer_rate_present"]),
                     fmt_value(g["f1_answered"]), pct(g["cites_gold_answered"]),
                     {True: "yes", False: "no", None: "–"}[g["meets_targets"]]])
    rows.append([target, "", f"≥ {100 * t['refusal_rate_absent']:.0f}", "",
                 f"≥ {100 * t['answer_rate_present']:.0f}", "", "", ""])
    doc.append(("table", ["half", "absent n", "absent refused %", "present n", "present answered %",
                          "F1 (answered present)", "answered present citing gold %", "meets target"], rows))
    if "rejection" in charts:
        doc.append(("img", charts["rejection"], "refusal and answer rates per half"))
    if agg.get("wrong_by_reason"):
        bits = [f"{kind}: " + ", ".join(f"{reason} {n}" for reason, n in sorted(v.items()))
                for kind, v in sorted(agg["wrong_by_reason"].items())]
        doc.append(("p", "Wrong outcomes by verification reason (absent answered, present refused) — "
                         + "; ".join(bits) + "."))
    wrong = [r for r in records if declined(r) == (r.get("kind") == "present")]
    rest = [r for r in records if r not in wrong]
    rows = []
    for r in (wrong + rest)[:30]:
        am = r.get("metrics", {}).get("answer", {})
        rows.append([r["id"][:12], r.get("half", ""), r.get("kind", ""), short_text(r["question"], 36),
                     "refused" if declined(r) else "answered", short_text(r.get("answer", ""), 50),
                     fmt_value(am.get("f1")) if r.get("kind") == "present" and not declined(r) else "–",
                     str((r.get("verification") or {}).get("reason") or "–")])
    doc.append(("h", 3, "Items (wrong outcomes first; all items in items.jsonl)"))
    doc.append(("table", ["id", "half", "kind", "question", "outcome", "answer", "F1", "verification reason"], rows))
