"""What the screening decides over RGB's given passages before any generation (no model call): the share of
all-noise passage sets (negative rejection: must be refused) and of sets that hold the answer (noise 0 … 0.8:
must be answered) that the constraints, the asked kind and the passage scorer (`answer.passage_scorer`, fitted on
NCP by `gov-assistant eval fit-answerability`; nothing here is tuned on RGB) refuse, by reason.

    python benchmarks/rgb_screening.py [--limit 300] [--noise 0,0.4,0.8] [--threshold 0.3 ...]

`--threshold` lists passage-scorer thresholds to report side by side with the configured one (the same run's
signals). Passages are mixed as the rgb suite mixes them (eval.data.mix_passages, seed 2333), so the sets are the
ones `gov-assistant eval run --suite rgb` answers. A refusal here is a refusal end to end; the rest still meets
the answer's own checks.
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.answering import given_hits  # noqa: E402
from assistant.grounding.answerability import scorer_probability  # noqa: E402
from assistant.settings import load_settings  # noqa: E402
from eval.data import load_rgb, mix_passages  # noqa: E402
from eval.suites.rgb import passages_for_answerer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--noise", default="0,0.4,0.8", help="noise ratios of the sets that hold the answer")
    ap.add_argument("--threshold", type=float, action="append", default=[])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("-p", "--profile", default=None)
    args = ap.parse_args()

    from assistant.container import Container
    settings = load_settings(args.profile)
    answerer = Container(settings).answerer          # screening only: the LLM is never called
    ps = settings.answer.passage_scorer
    thresholds = sorted({ps.min_answerability, *args.threshold})
    rows = load_rgb(args.data)[:args.limit]
    settings_ = [("rejection", 1.0)] + [(f"noise {r:g}", r) for r in map(float, args.noise.split(","))]
    print(f"passage scorer: bias {ps.bias}, weights {ps.weights}, configured threshold {ps.min_answerability}")
    print(f"{'set':<11} {'n':>4}  screened out by reason{'':<26}" + "".join(f"  refused@{t:<5g}" for t in thresholds))
    for name, ratio in settings_:
        reasons: collections.Counter = collections.Counter()
        probs = []
        for rec in rows:
            hits = given_hits(passages_for_answerer(mix_passages(rec, ratio)))
            s = answerer.screen(rec["query"], hits, score_only=True)
            if s.refusal is not None:
                reasons[s.verification.reason] += 1
                probs.append(None)
            else:
                probs.append(scorer_probability(s.verification.signals, ps.weights, ps.bias))
        n = len(rows)
        refused = [sum(1 for p in probs if p is None or p < t) / n for t in thresholds]
        why = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none"
        print(f"{name:<11} {n:>4}  {why:<48}" + "".join(f"  {100 * r:>9.1f}%" for r in refused))


if __name__ == "__main__":
    main()
