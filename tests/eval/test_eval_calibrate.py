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
    assert result["auc"]["tuned"] == auc([0.99, 0.95, 0.9, 0.85, 0.8], [0.3, 0.5, 0.7, 0.9])  # answered ones
    assert (tmp_path / "calibration-answerability.png").stat().st_size > 1000
    assert json.loads((tmp_path / "calibration-answerability.json").read_text())["threshold"] == result["threshold"]


def _answer(kind: str, half: str, supports: list) -> dict:
    sentences = [{"supported": True, "support": v} for v in supports] + [{"supported": False, "support": 0.9}]
    return {"suite": "rejection", "kind": kind, "half": half, "refused": False, "refusal_marker": False,
            "verification": {"answerability": None, "sentences": sentences}}


def test_support_refuses_an_answer_only_when_every_kept_sentence_is_below(tmp_path):
    records = [_answer("present", "tuned", [0.95, 0.2]), _answer("present", "tuned", [0.8, None]),
               _answer("absent", "tuned", [0.1, 0.3]), _answer("absent", "tuned", [0.6]),
               _answer("absent", "held-out", [0.2]), _answer("present", "held-out", [0.7])]
    result = calibrate(_run(tmp_path, records), min_answered=1.0, signal="support")
    # .7, between absent .6 and present .8: both absent refused; present 1 keeps its .95 sentence, present 2 its
    # sentence too short to judge
    assert result["threshold"] == pytest.approx(0.7)
    assert result["at_threshold"]["tuned"] == {"threshold": 0.7, "refused_absent": 1.0, "answered_present": 1.0}
    assert result["at_threshold"]["held-out"] == {"threshold": 0.7, "refused_absent": 1.0, "answered_present": 1.0}
    assert (tmp_path / "calibration-support.png").exists()


def test_a_run_without_the_signal_is_a_clear_error(tmp_path):
    with pytest.raises(CalibrationError, match="answerability"):
        calibrate(_run(tmp_path, [_rec("absent", "tuned", None)]))
    from assistant.cli.main import app
    out = CliRunner().invoke(app, ["eval", "calibrate", str(tmp_path / "nowhere")])
    assert out.exit_code == 2 and "items.jsonl" in out.output


def test_anchor_refuses_an_answer_whose_best_sentence_is_below(tmp_path):
    def answer(kind, half, anchors):
        return {"suite": "rejection", "kind": kind, "half": half, "refused": False, "refusal_marker": False,
                "verification": {"sentences": [{"text": "句子。", "supported": True, "anchor": a,
                                                "unanchored_terms": ["甲", "乙"] if a < 1 else []} for a in anchors]}}
    records = [answer("present", "tuned", [0.4, 1.0]), answer("present", "tuned", [0.75]),
               answer("absent", "tuned", [0.25, 0.3]), answer("absent", "tuned", [0.5]),
               answer("absent", "held-out", [0.6]), answer("present", "held-out", [0.8])]
    result = calibrate(_run(tmp_path, records), min_answered=1.0, signal="anchor")
    # between absent .5 and present .75 (the first present answer keeps its 1.0 sentence)
    assert result["threshold"] == pytest.approx(0.625)
    assert result["at_threshold"]["tuned"] == {"threshold": 0.625, "refused_absent": 1.0, "answered_present": 1.0}
    assert result["at_threshold"]["held-out"]["refused_absent"] == 1.0
    assert (tmp_path / "calibration-anchor.png").exists()
    # a place that lacks one term only stands whatever its share (answer.anchor_tolerated_terms)
    records[3]["verification"]["sentences"][0]["unanchored_terms"] = ["甲"]
    assert calibrate(_run(tmp_path, records), min_answered=1.0, signal="anchor")["at_threshold"]["tuned"][
        "refused_absent"] == 0.5
