"""`eval compare` deltas, and the `gov-assistant eval` command line (in-process, unit profile)."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assistant.cli.main import app
from eval.compare import compare, flatten, to_markdown
from eval.base import EvalError
from eval_fixtures import write_ncp

from conftest import MODELS_DIR


def _summary(path, r5: float, f1: float, p50: float, rrf_k: int = 60):
    path.mkdir(parents=True, exist_ok=True)
    (path / "summary.json").write_text(json.dumps({
        "model": "m", "embedding": "e", "generated": "now",
        "config": {"retrieval": {"rrf_k": rrf_k, "top_k": 5}},
        "suites": {"ncp": {"n": 10, "retrieval": {"hybrid": {"n": 10, "R@5": r5, "recall_curve": [0.1] * 10,
                                                              "latency": {"p50_ms": p50, "p95_ms": 1.0}}},
                           "answer": {"f1": f1, "refusal_rate": 0.1}, "published": {"BM25": {"R@5": 0.925}},
                           "run": {"seconds": 3}}}}), encoding="utf-8")
    return path


def test_flatten_skips_anchors_curves_and_run_metadata():
    flat = flatten({"ncp": {"n": 3, "retrieval": {"hybrid": {"R@5": 0.5, "recall_curve": [1.0]}},
                            "published": {"x": 1.0}, "run": {"seconds": 2}, "ok": True}})
    assert flat == {"ncp.n": 3.0, "ncp.retrieval.hybrid.R@5": 0.5}


def test_compare_computes_deltas_and_direction(tmp_path):
    a = _summary(tmp_path / "a", r5=0.90, f1=0.40, p50=100.0)
    b = _summary(tmp_path / "b", r5=0.95, f1=0.35, p50=80.0, rrf_k=10)
    result = compare(a, b)
    rows = {r["metric"]: r for r in result["rows"]}
    assert rows["ncp.retrieval.hybrid.R@5"]["delta"] == pytest.approx(0.05)
    assert rows["ncp.retrieval.hybrid.R@5"]["better"] is True
    assert rows["ncp.answer.f1"]["delta"] == pytest.approx(-0.05) and rows["ncp.answer.f1"]["better"] is False
    assert rows["ncp.retrieval.hybrid.latency.p50_ms"]["better"] is True        # faster is better
    assert rows["ncp.answer.refusal_rate"]["delta"] == 0 and rows["ncp.answer.refusal_rate"]["better"] is None
    assert not any("published" in k or "recall_curve" in k or "p95" in k for k in rows)
    assert result["config_diff"] == [("retrieval.rrf_k", "60", "10")]
    md = to_markdown(result)
    assert "| ncp.retrieval.hybrid.R@5 | 0.9000 | 0.9500 | +0.0500 | ✓ |" in md
    assert "retrieval.rrf_k" in md


def test_compare_needs_summaries(tmp_path):
    with pytest.raises(EvalError, match="no summary.json"):
        compare(tmp_path / "x", tmp_path / "y")


def _env(tmp_path):
    return {"GOV_ASSISTANT_DATA_DIR": str(tmp_path / "data"), "GOV_ASSISTANT_MODELS_DIR": str(MODELS_DIR),
            "GOV_ASSISTANT_PROFILE": ""}


def test_cli_run_resume_and_compare(tmp_path):
    runner = CliRunner()
    data = write_ncp(tmp_path / "ncp")
    out1, out2 = tmp_path / "r1", tmp_path / "r2"
    args = ["-p", "unit", "eval", "run", "--suite", "ncp", "--data", str(data), "--kb", "evalcli", "--limit", "3",
            "--retrieval-only"]
    res = runner.invoke(app, args + ["--out", str(out1)], env=_env(tmp_path))
    assert res.exit_code == 0, res.output
    assert "document retrieval" in res.output and "BM25 (published)" in res.output
    summary = json.loads((out1 / "summary.json").read_text(encoding="utf-8"))
    assert summary["suites"]["ncp"]["retrieval"]["hybrid"]["n"] == 3
    assert "eval run --suite ncp" in summary["suites"]["ncp"]["run"]["command"]

    res = runner.invoke(app, args + ["--out", str(out1)], env=_env(tmp_path))       # resumed: nothing to do
    assert res.exit_code == 0, res.output
    assert json.loads((out1 / "run.json").read_text())["runs"]["ncp"]["skipped"] == 3

    res = runner.invoke(app, args[:-1] + ["--modes", "bm25,hybrid", "--retrieval-only", "--out", str(out2)],
                        env=_env(tmp_path))
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", "compare", str(out1), str(out2)], env=_env(tmp_path))
    assert res.exit_code == 0, res.output
    assert "ncp.retrieval.hybrid.R@5" in res.output
    assert (out2 / "compare.md").is_file()


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["-p", "unit", "eval", "run", "--suite", "bogus", "--out", str(tmp_path / "o")],
                        env=_env(tmp_path))
    assert res.exit_code == 2 and "unknown suite" in res.output
    res = runner.invoke(app, ["-p", "unit", "eval", "run", "--suite", "summaries", "--out", str(tmp_path / "o"),
                              "--data", str(tmp_path / "nothing")], env=_env(tmp_path))
    assert res.exit_code in (0, 2)          # skipped (no summarizer yet) or a clear data error
    assert "Traceback" not in res.output


def test_cli_report_rebuilds_a_cut_off_run_and_says_it_is_partial(tmp_path):
    runner = CliRunner()
    data = write_ncp(tmp_path / "ncp")
    out = tmp_path / "r"
    args = ["-p", "unit", "eval", "run", "--suite", "ncp", "--data", str(data), "--kb", "evalcli", "--limit", "3",
            "--retrieval-only", "--out", str(out)]
    assert runner.invoke(app, args, env=_env(tmp_path)).exit_code == 0
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["runs"]["ncp"]["status"] == "finished" and run["runs"]["ncp"]["items"] == 3
    assert "Partial run" not in (out / "report.md").read_text(encoding="utf-8")

    # as if the run had been cut off after its first item: run.json says "running", items.jsonl holds one line
    run["runs"]["ncp"]["status"] = "running"
    (out / "run.json").write_text(json.dumps(run), encoding="utf-8")
    lines = (out / "items.jsonl").read_text(encoding="utf-8").splitlines()
    (out / "items.jsonl").write_text(lines[0] + "\n", encoding="utf-8")
    res = runner.invoke(app, ["-p", "unit", "eval", "report", str(out)], env=_env(tmp_path))
    assert res.exit_code == 0, res.output
    assert "Partial run: 1 of 3 items done" in (out / "report.md").read_text(encoding="utf-8")
    assert json.loads((out / "summary.json").read_text())["suites"]["ncp"]["retrieval"]["hybrid"]["n"] == 1

    # resumed: the run keeps its first start and lists both sessions
    first = run["runs"]["ncp"]["started"]
    assert runner.invoke(app, args, env=_env(tmp_path)).exit_code == 0
    meta = json.loads((out / "run.json").read_text(encoding="utf-8"))["runs"]["ncp"]
    assert meta["started"] == first and meta["status"] == "finished"
    assert [s.get("done_before") for s in meta["sessions"]] == [None, 1]
    assert "Ran in 2 sessions" in (out / "report.md").read_text(encoding="utf-8")

    # another configuration, or no run folder: one-line errors
    res = runner.invoke(app, ["-p", "unit", "eval", "report", str(out)],
                        env={**_env(tmp_path), "GOV_ASSISTANT_RETRIEVAL__RRF_K": "7"})
    assert res.exit_code == 2 and "another configuration" in res.output
    res = runner.invoke(app, ["-p", "unit", "eval", "report", str(tmp_path / "nothing")], env=_env(tmp_path))
    assert res.exit_code == 2 and "not a run folder" in res.output


def test_cli_rgb_noise_ratios_are_chosen_and_checked(tmp_path):
    from eval_fixtures import write_rgb
    runner = CliRunner()
    data = write_rgb(tmp_path / "zh.json", n=2)
    out = tmp_path / "rgb"
    res = runner.invoke(app, ["-p", "unit", "eval", "run", "--suite", "rgb", "--data", str(data), "--noise", "0.4",
                              "--limit", "2", "--out", str(out)], env=_env(tmp_path))
    assert res.exit_code == 0, res.output
    items = [json.loads(x) for x in (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted((r["task"], r["noise_ratio"]) for r in items) == [("noise", 0.4)] * 2 + [("rejection", 1.0)] * 2
    for bad in ("x", "1.0", ""):
        res = runner.invoke(app, ["-p", "unit", "eval", "run", "--suite", "rgb", "--data", str(data), "--noise", bad,
                                  "--out", str(tmp_path / "bad")], env=_env(tmp_path))
        assert res.exit_code == 2 and "--noise" in res.output
