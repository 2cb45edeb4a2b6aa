"""`eval calibrate`: the answerability threshold is picked on the tuned half of a rejection run and reported on
both halves; a run without the signal is a clear error."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from eval.calibrate import CalibrationError, auc, calibrate, pick, point


def _rec(kind: str, half: str, p: float | None, refused: bool = False) -> dict:
    return {"suite": "rejection", "kind": kind, "half": half, "refused": refused, "refusal_marker": False,
            "verification": {"answerability": p}}


def _run(tmp_path, records):
    (tmp_path / "items.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    return tmp_path


RECORDS = (
    # tuned: present answers carry .8-.99; absent ones .3-.9 (one already refused by verification)
    [_rec("present", "tuned", p) for p in (0.99, 0.95, 0.9, 0.85, 0.8)]
    + [_rec("absent", "tuned", p) for p in (0.3, 0.5, 0.7, 0.9)] + [_rec("absent", "tuned", 0.95, refused=True)]
    + [_rec("present", "held-out", p) for p in (0.97, 0.75, 0.88)] + [_rec("absent", "held-out", p) for p in (0.4, 0.92)]
)


def test_the_pick_refuses_most_absent_while_answering_the_present_of_the_tuned_half():
    best = pick(RECORDS, min_answered=1.0)
    assert best.threshold == pytest.approx(0.75)          # midway between absent .7 and present .8
    assert best.refused_absent == pytest.approx(4 / 5) and best.answered_present == 1.0
    loose = pick(RECORDS, min_answered=0.8)               # refusing the .8 answer would win no absent one
    assert loose.threshold == best.threshold
    assert point(RECORDS, 0.0).refused_absent == pytest.approx(1 / 7)   # off: only the verification refusal


def test_calibrate_reports_both_halves_and_writes_json_and_chart(tmp_path):
    result = calibrate(_run(tmp_path, RECORDS), min_answered=1.0)
    held = result["at_threshold"]["held-out"]
    assert held["refused_absent"] == pytest.approx(0.5) and held["answered_present"] == 1.0
    assert result["auc"]["tuned"] == auc([0.99, 0.95, 0.9, 0.85, 0.8], [0.3, 0.5, 0.7, 0.9, 0.95])
    assert (tmp_path / "calibration.png").stat().st_size > 1000
    assert json.loads((tmp_path / "calibration.json").read_text())["threshold"] == result["threshold"]


def test_a_run_without_the_signal_is_a_clear_error(tmp_path):
    with pytest.raises(CalibrationError, match="answerability"):
        calibrate(_run(tmp_path, [_rec("absent", "tuned", None)]))
    from assistant.cli import app
    out = CliRunner().invoke(app, ["eval", "calibrate", str(tmp_path / "nowhere")])
    assert out.exit_code == 2 and "items.jsonl" in out.output
