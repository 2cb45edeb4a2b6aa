"""Batch summaries end to end on the real 0.5B model (the `test` profile): a sample 通知 in the structured style."""
from __future__ import annotations

import json
import time

import pytest

from assistant.prompts import load_prompt
from tests.conftest import SAMPLES, make_container

pytestmark = pytest.mark.e2e

NOTICE = SAMPLES / "docs" / "示范市人民政府办公厅关于推进公共数据开放共享的通知.md"


def test_structured_summary_of_a_sample_notice_on_the_real_model(tmp_path):
    c = make_container(tmp_path / "data", profile="test")
    out = tmp_path / "out"
    t0 = time.perf_counter()
    report = c.summarize.summarize_paths([NOTICE], out, "structured")
    seconds = time.perf_counter() - t0
    assert report["ok"], report["failures"]
    assert report["counts"]["summarized"] == 1
    rec = json.loads((out / "summaries.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert rec["status"] == "ok" and rec["ai_generated"] is True and rec["model"] == "local:qwen2.5-coder-0.5b"
    assert rec["title"] == "示范市人民政府办公厅关于推进公共数据开放共享的通知"
    assert rec["doc_number"] == "示政办发〔2025〕12号"
    summary, ids = rec["summary"], {s["id"] for s in rec["sections"]}
    print(f"\n{rec['n_parts']} part(s), {rec['llm_calls']} request(s), {rec['timings']}, usage {rec['usage']}\n"
          f"{rec['markdown']}")
    assert rec["n_parts"] == 1                      # 1,500 characters fit one request of the 2,048-token slot
    assert summary["points"], rec["markdown"]
    assert all(p["sections"] and set(p["sections"]) <= ids for p in summary["points"])   # traceable
    assert "市数据局" in summary["units"]
    assert any("2025年6月底前" in d["text"] for d in summary["deadlines"])
    assert rec["llm_calls"] >= rec["n_parts"] and rec["usage"]["output_tokens"] > 0   # + a re-ask if cut off
    digest = (out / "digest.md").read_text(encoding="utf-8")
    assert load_prompt("ai_label") in digest and "示政办发〔2025〕12号" in digest
    # resumable: the same command again does not call the model
    again = c.summarize.summarize_paths([NOTICE], out, "structured")
    assert again["counts"]["skipped"] == 1 and again["counts"]["summarized"] == 0
    print(f"{seconds:.1f}s")
