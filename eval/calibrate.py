"""Calibrate `answer.min_answerability` from a rejection run that recorded the signal without acting on it
(`answer.answerability` on, `min_answerability: 0`), on the tuned half only; the held-out half is reported as it
falls. Refusing at the signal changes nothing else about an answer (the decision is taken before any text is
shown), so "refused at threshold t" = refused in the run, or signal < t.

`gov-assistant eval calibrate RUN` prints the sweep and the pick, and writes RUN/calibration.json + .png."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from eval.data import read_jsonl
from eval.suites.rejection import HALVES, TARGETS, declined


class CalibrationError(ValueError):
    pass


@dataclass
class Point:
    threshold: float
    refused_absent: float | None      # share of absent questions refused
    answered_present: float | None    # share of present questions answered


def load(run: Path) -> list[dict]:
    path = Path(run) / "items.jsonl"
    if not path.is_file():
        raise CalibrationError(f"{path}: no items (run `gov-assistant eval run --suite rejection` first)")
    records = [r for r in read_jsonl(path) if r.get("suite") == "rejection" and r.get("kind")]
    if not any((r.get("verification") or {}).get("answerability") is not None for r in records):
        raise CalibrationError(f"{path}: no answer records an answerability signal; run with answer.answerability "
                               "first_token (or logprob) and answer.min_answerability 0")
    return records


def refused_at(record: dict, threshold: float) -> bool:
    p = (record.get("verification") or {}).get("answerability")
    return declined(record) or (p is not None and p < threshold)


def point(records: list[dict], threshold: float) -> Point:
    absent = [r for r in records if r["kind"] == "absent"]
    present = [r for r in records if r["kind"] == "present"]
    ra = sum(refused_at(r, threshold) for r in absent) / len(absent) if absent else None
    ap = sum(not refused_at(r, threshold) for r in present) / len(present) if present else None
    return Point(threshold, ra, ap)


def thresholds(records: list[dict]) -> list[float]:
    """0 (off), the midpoints between consecutive recorded signals (a decision changes only there; the midpoint
    leaves a margin on both sides for questions not seen) and just above the highest."""
    values = sorted({r["verification"]["answerability"] for r in records
                     if (r.get("verification") or {}).get("answerability") is not None})
    mids = [round((a + b) / 2, 4) for a, b in zip(values, values[1:])]
    return [0.0] + mids + ([round(values[-1] + 1e-4, 4)] if values else [])


def pick(records: list[dict], min_answered: float) -> Point:
    """The threshold that refuses the most absent questions of the tuned half while it still answers at least
    `min_answered` of the present ones (ties: the lowest threshold, the least intrusive)."""
    tuned = [r for r in records if r.get("half") == HALVES[0]]
    best = point(tuned, 0.0)
    for t in thresholds(tuned):
        p = point(tuned, t)
        if p.answered_present is not None and p.answered_present >= min_answered and \
                (p.refused_absent or 0) > (best.refused_absent or 0):
            best = p
    return best


def calibrate(run: Path, min_answered: float = TARGETS["answer_rate_present"]) -> dict:
    records = load(run)
    chosen = pick(records, min_answered)
    halves = {h: [r for r in records if r.get("half") == h] for h in HALVES}
    signal = {h: {kind: sorted(r["verification"]["answerability"] for r in rs if r["kind"] == kind
                               and (r.get("verification") or {}).get("answerability") is not None)
                  for kind in ("absent", "present")} for h, rs in halves.items()}
    result = {
        "run": str(run), "min_answered": min_answered, "threshold": chosen.threshold,
        "at_threshold": {h: vars(point(rs, chosen.threshold)) for h, rs in halves.items()},
        "without": {h: vars(point(rs, 0.0)) for h, rs in halves.items()},
        "sweep": {h: [vars(point(rs, t)) for t in thresholds(records)] for h, rs in halves.items()},
        "signal": signal,
        "auc": {h: auc(s["present"], s["absent"]) for h, s in signal.items()},
    }
    (Path(run) / "calibration.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    chart(result, Path(run) / "calibration.png")
    return result


def auc(positives: list[float], negatives: list[float]) -> float | None:
    """P(signal of a present question > signal of an absent one): 0.5 = no separation."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return round(wins / (len(positives) * len(negatives)), 4)


def chart(result: dict, path: Path) -> Path:
    from eval.report import _plt

    plt = _plt()
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
    ax.set_xlabel("min_answerability (refuse when the signal is below)")
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.set_title(f"answerability threshold, picked on the tuned half (AUC tuned {result['auc'][HALVES[0]]}, "
                 f"held-out {result['auc'][HALVES[1]]})", fontsize=9)
    ax.legend(fontsize=7, loc="center right")
    ax.grid(alpha=.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
