"""Batch summaries end to end on the real 0.5B model (the `test` profile): a sample 通知 in the structured and
action-items styles, generated under a JSON schema (structured outputs by construction, issue #13 item 5)."""
from __future__ import annotations

import json
import time

import pytest

from assistant.grounding.atoms import has_figure, unsupported_atoms
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
    for o in rec["model_outputs"]:
        json.loads(o["text"])                           # what the model generated is JSON of the schema
    source = NOTICE.read_text(encoding="utf-8")
    assert len(ids) >= 3 and len(summary["points"]) >= 3, rec["markdown"]
    assert all(len(p["sections"]) == 1 and p["sections"][0] in ids for p in summary["points"])   # traced
    assert all(p["text"] not in ("无", "") for p in summary["points"])
    for f in summary["figures"]:                       # only figures, and only figures the document states
        assert has_figure(f["text"]) and not [a for a in unsupported_atoms(f["text"], source) if a.is_figure], f
    assert all(u in source for u in summary["units"]) and "市数据局" in summary["units"]
    assert any("2025年6月底前" in d["text"] for d in summary["deadlines"])
    assert rec["usage"]["output_tokens"] > 0
    digest = (out / "digest.md").read_text(encoding="utf-8")
    assert load_prompt("ai_label") in digest and "示政办发〔2025〕12号" in digest
    # resumable: the same command again does not call the model
    again = c.summarize.summarize_paths([NOTICE], out, "structured")
    assert again["counts"]["skipped"] == 1 and again["counts"]["summarized"] == 0
    print(f"{seconds:.1f}s")


def test_action_items_of_a_sample_notice_on_the_real_model(tmp_path):
    c = make_container(tmp_path / "data", profile="test")
    r = c.summarize.summarize_text(NOTICE.read_text(encoding="utf-8"), style="action-items")
    print(f"\n{r['n_parts']} part(s), {r['llm_calls']} request(s), {r['timings']}\n{r['markdown']}")
    ids = {s["id"] for s in r["sections"]}
    rows = r["summary"]["items"]
    assert len(rows) >= 3 and all(row["sections"] and set(row["sections"]) <= ids for row in rows)
    assert all(row["task"] and row["task"] != "无" for row in rows)
    assert any(row["deadline"] == "2025年6月底前" and "市数据局" in row["units"] for row in rows)
    assert r["markdown"].startswith("| 事项 | 责任单位 | 完成时限 | 出处 |")
