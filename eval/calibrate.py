"""Calibrate a refusal threshold from a rejection run that recorded its signal without acting on it, on the
tuned half only; the held-out half is reported as it falls. Three signals:

- `answerability` (`answer.min_answerability`; run with `answer.answerability` on and `min_answerability: 0`): the
  decision is taken before any text is shown, so "refused at t" = refused in the run, or the signal < t.
- `support` (`answer.min_support`; run with `min_support: 0`): each verified sentence records the share of its own
  wording found in its passages; at t the sentences below t go too, and an answer left with none is refused.
- `anchor` (`answer.min_anchor`; any run with `answer.verify`, best with `min_anchor: 0`): each kept sentence
  records the share of the question's terms where its own content sits in a passage; at t an answer none of whose
  sentences reaches t (or lacks no more than answer.anchor_tolerated_terms of the terms) is refused.

`gov-assistant eval calibrate RUN [--signal support]` prints the sweep and the pick, and writes
RUN/calibration-<signal>.json + .png."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from assistant.grounding.verify import MIN_OWN_GRAMS, SentenceCheck, anchored, substantive
from assistant.settings import AnswerSettings
from eval.data import read_jsonl
from eval.suites.rejection import HALVES, TARGETS, declined


class CalibrationError(ValueError):
    pass


@dataclass
class Point:
    threshold: float
    refused_absent: float | None      # share of absent questions refused
    answered_present: float | None    # share of present questions answered


SIGNALS = ("answerability", "support", "anchor")
ANCHOR_TOLERATED = AnswerSettings().anchor_tolerated_terms   # terms a place may lack whatever the share


def _kept(record: dict) -> list[dict]:
    return [s for s in (record.get("verification") or {}).get("sentences") or [] if s.get("supported")]


def values(record: dict, signal: str) -> list[float]:
    if signal == "answerability":
        p = (record.get("verification") or {}).get("answerability")
        return [] if p is None else [p]
    return [s[signal] for s in _kept(record) if s.get(signal) is not None]


def load(run: Path, signal: str = "answerability") -> list[dict]:
    if signal not in SIGNALS:
        raise CalibrationError(f"--signal must be one of {', '.join(SIGNALS)}, not {signal!r}")
    path = Path(run) / "items.jsonl"
    if not path.is_file():
        raise CalibrationError(f"{path}: no items (run `gov-assistant eval run --suite rejection` first)")
    records = [r for r in read_jsonl(path) if r.get("suite") == "rejection" and r.get("kind")]
    if not any(values(r, signal) for r in records):
        how = {"answerability": "answer.answerability first_token (or logprob) and answer.min_answerability 0",
               "support": "answer.verify true and answer.min_support 0 (sentences record their support)",
               "anchor": "answer.verify true and answer.min_anchor 0 (sentences record their anchor)"}[signal]
        raise CalibrationError(f"{path}: no answer records the {signal} signal; run with {how}")
    return records


def refused_at(record: dict, threshold: float, signal: str = "answerability") -> bool:
    if declined(record):
        return True
    if signal == "answerability":
        p = (record.get("verification") or {}).get("answerability")
        return p is not None and p < threshold
    if threshold <= 0:                      # off: the run as it was
        return False
    if signal == "anchor":                  # as the gate: no kept sentence anchored at t, no answer
        placed = [s for s in _kept(record) if s.get("anchor") is not None]
        return bool(placed) and not any(anchored(SentenceCheck("", [], True, anchor=s["anchor"],
                                                               unanchored_terms=s.get("unanchored_terms") or []),
                                                 threshold, ANCHOR_TOLERATED) for s in placed)
    # as the answerer's gate: at t, sentences judged by wording (enough of their own) below t go, and an answer
    # left without a substantive sentence is refused; records from before `own` judged only at MIN_OWN_GRAMS
    kept = [s for s in _kept(record) if not (s.get("own", MIN_OWN_GRAMS) >= MIN_OWN_GRAMS and s.get("support")
                                             is not None and s["support"] < threshold)]
    return bool(_kept(record)) and not any(substantive(SentenceCheck(
        s.get("text", ""), [], True, support=s.get("support"), own=s.get("own", MIN_OWN_GRAMS)), threshold)
        for s in kept)


def point(records: list[dict], threshold: float, signal: str = "answerability") -> Point:
    absent = [r for r in records if r["kind"] == "absent"]
    present = [r for r in records if r["kind"] == "present"]
    ra = sum(refused_at(r, threshold, signal) for r in absent) / len(absent) if absent else None
    ap = sum(not refused_at(r, threshold, signal) for r in present) / len(present) if present else None
    return Point(threshold, ra, ap)


def thresholds(records: list[dict], signal: str = "answerability") -> list[float]:
    """0 (off), the midpoints between consecutive recorded values (a decision changes only there; the midpoint
    leaves a margin on both sides for questions not seen) and just above the highest."""
    vals = sorted({v for r in records for v in values(r, signal)})
    mids = [round((a + b) / 2, 4) for a, b in zip(vals, vals[1:])]
    return [0.0] + mids + ([round(vals[-1] + 1e-4, 4)] if vals else [])


def pick(records: list[dict], min_answered: float, signal: str = "answerability") -> Point:
    """The threshold that refuses the most absent questions of the tuned half while it still answers at least
    `min_answered` of the present ones — or, where the run answers fewer than that already, loses none of them.
    Of the thresholds that do equally well, the middle one: the widest margin for questions not seen."""
    tuned = [r for r in records if r.get("half") == HALVES[0]]
    off = point(tuned, 0.0, signal)
    floor = min(min_answered, off.answered_present if off.answered_present is not None else 1.0)
    allowed = [p for p in (point(tuned, t, signal) for t in thresholds(tuned, signal))
               if p.answered_present is None or p.answered_present >= floor - 1e-9]
    best = max((p.refused_absent or 0.0) for p in allowed) if allowed else 0.0
    if best <= (off.refused_absent or 0.0):
        return off
    plateau = [p for p in allowed if (p.refused_absent or 0.0) == best]
    most = max((p.answered_present or 0.0) for p in plateau)
    plateau = [p for p in plateau if (p.answered_present or 0.0) == most]
    return plateau[(len(plateau) - 1) // 2]


def answer_score(record: dict, signal: str) -> float | None:
    """One number per answer for the AUC: the answerability, or its best-supported kept sentence."""
    vals = values(record, signal)
    return max(vals) if vals else None


def calibrate(run: Path, min_answered: float = TARGETS["answer_rate_present"],
              signal: str = "answerability") -> dict:
    records = load(run, signal)
    chosen = pick(records, min_answered, signal)
    halves = {h: [r for r in records if r.get("half") == h] for h in HALVES}
    scores = {h: {kind: sorted(v for r in rs if r["kind"] == kind and not declined(r)
                               and (v := answer_score(r, signal)) is not None)
                  for kind in ("absent", "present")} for h, rs in halves.items()}
    result = {
        "run": str(run), "signal": signal, "min_answered": min_answered, "threshold": chosen.threshold,
        "at_threshold": {h: vars(point(rs, chosen.threshold, signal)) for h, rs in halves.items()},
        "without": {h: vars(point(rs, 0.0, signal)) for h, rs in halves.items()},
        "sweep": {h: [vars(point(rs, t, signal)) for t in thresholds(records, signal)] for h, rs in halves.items()},
        "scores": scores,
        "auc": {h: auc(s["present"], s["absent"]) for h, s in scores.items()},
    }
    base = Path(run) / f"calibration-{signal}"
    base.with_suffix(".json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    chart(result, base.with_suffix(".png"))
    return result


def auc(positives: list[float], negatives: list[float]) -> float | None:
    """P(signal of a present question > signal of an absent one): 0.5 = no separation."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return round(wins / (len(positives) * len(negatives)), 4)


def chart(result: dict, path: Path) -> Path:
    from eval.report_format import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles = {HALVES[0]: "-", HALVES[1]: "--"}
    for half, points in result["sweep"].items():
        xs = [p["threshold"] for p in points]
        for key, label, color in (("refused_absent", "absent refused", "C3"),
                                  ("answered_present", "present answered", "C0")):
            ys = [100 * p[key] if p[key] is not None else None for p in points]
            ax.step(xs, ys, where="post", ls=styles[half], color=color, label=f"{label} ({half})")
    ax.axvline(result["threshold"], color="k", lw=1, alpha=.6)
    ax.text(result["threshold"], 3, f" picked {result['threshold']:.3f}", fontsize=8)
    ax.set_xlabel(f"min_{result['signal']} (refuse when the signal is below)")
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.set_title(f"{result['signal']} threshold, picked on the tuned half (AUC tuned {result['auc'][HALVES[0]]}, "
                 f"held-out {result['auc'][HALVES[1]]})", fontsize=9)
    ax.legend(fontsize=7, loc="center right")
    ax.grid(alpha=.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
