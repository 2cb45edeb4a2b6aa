"""The harness counts answers that state a figure none of their passages states, independently of the product's
own verification (which is switched off here so an invented figure reaches the answer)."""
from __future__ import annotations

import json

from conftest import make_container
from eval.base import RunOptions
from eval.runner import run_suite
from eval_fixtures import write_ncp


def test_an_invented_figure_is_counted(tmp_path):
    data = write_ncp(tmp_path / "ncp")
    c = make_container(tmp_path / "data", GOV_ASSISTANT_ANSWER__VERIFY="false")
    c.llm.replies += ["补贴总额为987654321元[1]。", "根据资料，按规定办理[1]。"]
    out = tmp_path / "run"
    summary = run_suite(c, RunOptions("ncp", out, data=data, kb="evalncp", limit=2))
    items = [json.loads(x) for x in (out / "items.jsonl").read_text(encoding="utf-8").splitlines() if x]
    counts = sorted(i["metrics"]["answer"].get("unsupported_figures", 0) for i in items)
    assert counts == [0, 1]
    assert summary["suites"]["ncp"]["answer"]["unsupported_figure_answers"] == 1
    assert "figure none of their passages states: 1" in (out / "report.md").read_text(encoding="utf-8")
