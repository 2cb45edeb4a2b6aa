"""The evaluation runner end to end on the unit profile (scripted LLM, hashing embedder), tiny synthetic data."""
from __future__ import annotations

import json

import pytest

from eval.base import EvalError, RunOptions
from eval.run_folder import ItemLog
from eval.runner import _sessions, run_suite
from eval_fixtures import write_ncp

from conftest import make_container

MODES = ("bm25", "dense", "hybrid")


@pytest.fixture
def ncp_data(tmp_path):
    return write_ncp(tmp_path / "ncp")


def _items(out):
    return [json.loads(line) for line in (out / "items.jsonl").read_text(encoding="utf-8").splitlines() if line]


def test_ncp_end_to_end_writes_every_report_file(tmp_path, ncp_data):
    c = make_container(tmp_path / "data")
    out = tmp_path / "run"
    summary = run_suite(c, RunOptions("ncp", out, data=ncp_data, kb="evalncp"))

    for name in ("summary.json", "items.jsonl", "report.md", "report.html", "run.json", "recall_at_k.png",
                 "latency.png"):
        assert (out / name).is_file(), name
    on_disk = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert on_disk["suites"].keys() == summary["suites"].keys() == {"ncp"}
    assert on_disk["model"] == "scripted" and on_disk["embedding"] == "hash"
    assert on_disk["config"]["llm"]["temperature"] == 0.0
    assert "api_key" not in on_disk["config"]["llm"]["openai"]
    ncp = on_disk["suites"]["ncp"]
    assert set(ncp["retrieval"]) == set(MODES)
    for mode in MODES:
        m = ncp["retrieval"][mode]
        assert m["n"] == 6
        assert {"R@1", "R@5", "R@10", "MRR@10", "nDCG@10", "recall_curve", "latency"} <= set(m)
        assert 0 <= m["R@1"] <= m["R@5"] <= m["R@10"] <= 1 and len(m["recall_curve"]) == 10
    # lexical retrieval on distinctive terms finds every gold document (the twin counts as gold)
    assert ncp["retrieval"]["bm25"]["R@5"] == 1.0
    assert ncp["retrieval"]["hybrid"]["R@5"] == 1.0
    ans = ncp["answer"]
    assert ans["n"] == 6
    assert {"f1", "em", "rouge_l", "citation_acc", "refusal_rate", "latency"} <= set(ans)
    assert ans["citation_acc"] > 0.5          # the scripted model cites [1], the best hybrid passage
    assert any("twin" in n for n in ncp["run"]["notes"])

    items = _items(out)
    assert len(items) == 6
    for rec in items:
        assert {"key", "suite", "question", "gold", "retrieval", "answer", "refused", "citations", "metrics",
                "timings"} <= set(rec)
        assert set(rec["retrieval"]) == set(MODES)
        assert all(isinstance(d, str) for d in rec["retrieval"]["hybrid"])
        assert {"bm25_ms", "dense_ms", "hybrid_ms", "answer_total_ms"} <= set(rec["timings"])
    twin_q = next(r for r in items if r["id"] == "q6")
    assert twin_q["gold"]["doc_ids"] == ["doc-tax", "doc-tax-copy"]

    md = (out / "report.md").read_text(encoding="utf-8")
    assert "BM25 (published)" in md and "![recall@k per mode](recall_at_k.png)" in md
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 2 and "<table>" in html


def test_retrieval_only_skips_the_llm(tmp_path, ncp_data):
    c = make_container(tmp_path / "data")
    out = tmp_path / "run"
    summary = run_suite(c, RunOptions("ncp", out, data=ncp_data, kb="evalncp", retrieval_only=True, limit=3))
    assert summary["suites"]["ncp"]["answer"] == {}
    assert c.llm.calls == []
    assert all("answer" not in r for r in _items(out))


def test_resume_skips_done_items_and_redoes_missing_stages(tmp_path, ncp_data):
    c = make_container(tmp_path / "data")
    out = tmp_path / "run"
    first = run_suite(c, RunOptions("ncp", out, data=ncp_data, kb="evalncp", limit=2))
    assert first["suites"]["ncp"]["run"]["ran"] == 2
    n_calls = len(c.llm.calls)

    again = run_suite(c, RunOptions("ncp", out, data=ncp_data, kb="evalncp", limit=4))
    run = again["suites"]["ncp"]["run"]
    assert (run["ran"], run["skipped"]) == (2, 2)
    assert len(c.llm.calls) == n_calls + 2           # only the two new questions were answered
    assert len(_items(out)) == 4 and again["suites"]["ncp"]["retrieval"]["hybrid"]["n"] == 4

    # an interrupted write leaves half a line: it is ignored and that item is redone
    with open(out / "items.jsonl", "a", encoding="utf-8") as f:
        f.write('{"key": "ncp:q5", "suite": "ncp", "quest')
    third = run_suite(c, RunOptions("ncp", out, data=ncp_data, kb="evalncp", limit=5))
    assert (third["suites"]["ncp"]["run"]["ran"], third["suites"]["ncp"]["run"]["skipped"]) == (1, 4)
    assert len(ItemLog(out / "items.jsonl").load()) == 5


def test_retrieval_only_records_are_completed_by_a_full_run(tmp_path, ncp_data):
    c = make_container(tmp_path / "data")
    out = tmp_path / "run"
    run_suite(c, RunOptions("ncp", out, data=ncp_data, kb="evalncp", retrieval_only=True, limit=2))
    full = run_suite(c, RunOptions("ncp", out, data=ncp_data, kb="evalncp", limit=2))
    assert full["suites"]["ncp"]["run"]["ran"] == 2
    assert full["suites"]["ncp"]["answer"]["n"] == 2


def test_a_run_folder_refuses_another_configuration(tmp_path, ncp_data):
    out = tmp_path / "run"
    run_suite(make_container(tmp_path / "data"), RunOptions("ncp", out, data=ncp_data, kb="evalncp", limit=1))
    other = make_container(tmp_path / "data", GOV_ASSISTANT_RETRIEVAL__RRF_K="10")
    with pytest.raises(EvalError, match="another configuration"):
        run_suite(other, RunOptions("ncp", out, data=ncp_data, kb="evalncp", limit=1))
    with pytest.raises(EvalError, match="other options"):
        run_suite(make_container(tmp_path / "data"),
                  RunOptions("ncp", out, data=ncp_data, kb="evalncp", limit=1, retrieval_k=20))
    fresh = run_suite(other, RunOptions("ncp", out, data=ncp_data, kb="evalncp", limit=1, fresh=True))
    assert fresh["suites"]["ncp"]["run"]["ran"] == 1


def test_an_option_left_off_does_not_change_the_fingerprint(tmp_path):
    from eval.run_folder import config_fingerprint
    base = config_fingerprint(make_container(tmp_path / "data"))
    assert config_fingerprint(make_container(tmp_path / "data", GOV_ASSISTANT_LLM__LOCAL__SPECULATIVE="none")) == base
    assert config_fingerprint(make_container(tmp_path / "data",
                                             GOV_ASSISTANT_LLM__LOCAL__SPECULATIVE="ngram_mod")) != base


def test_an_edited_prompt_file_is_another_configuration(tmp_path, ncp_data, monkeypatch):
    import eval.run_folder as runner
    out = tmp_path / "run"
    c = make_container(tmp_path / "data")
    run_suite(c, RunOptions("ncp", out, data=ncp_data, kb="evalncp", limit=1))
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["config"]["prompts"] == \
        runner.prompts_fingerprint()
    monkeypatch.setattr(runner, "prompts_fingerprint", lambda: "edited")
    with pytest.raises(EvalError, match="another configuration"):
        run_suite(c, RunOptions("ncp", out, data=ncp_data, kb="evalncp", limit=1))


def test_bad_options_are_clear_errors(tmp_path, ncp_data):
    c = make_container(tmp_path / "data")
    with pytest.raises(EvalError, match="unknown suite"):
        run_suite(c, RunOptions("nope", tmp_path / "o"))
    with pytest.raises(EvalError, match="invalid retrieval mode"):
        run_suite(c, RunOptions("ncp", tmp_path / "o", data=ncp_data, modes=("sparse",)))
    with pytest.raises(ValueError, match="corpus.jsonl"):
        run_suite(c, RunOptions("ncp", tmp_path / "o2", data=tmp_path / "missing"))


def test_a_failing_item_is_recorded_and_retried_and_a_broken_run_stops(tmp_path, ncp_data, monkeypatch):
    c = make_container(tmp_path / "data")
    out = tmp_path / "run"
    real_ask = c.qa.ask

    def flaky(question, kbs, *a, **kw):
        if "社会保险" in question:
            raise RuntimeError("backend hiccup")
        return real_ask(question, kbs, *a, **kw)

    monkeypatch.setattr(c.qa, "ask", flaky)
    summary = run_suite(c, RunOptions("ncp", out, data=ncp_data, kb="evalncp"))
    ncp = summary["suites"]["ncp"]
    assert ncp["errors"]["n"] == 1 and "backend hiccup" in ncp["errors"]["first"]
    assert ncp["answer"]["n"] == 5
    assert "item(s) failed" in (out / "report.md").read_text(encoding="utf-8")

    monkeypatch.setattr(c.qa, "ask", real_ask)
    again = run_suite(c, RunOptions("ncp", out, data=ncp_data, kb="evalncp"))
    assert again["suites"]["ncp"]["run"]["ran"] == 1 and "errors" not in again["suites"]["ncp"]

    def broken(*a, **kw):
        raise RuntimeError("model file missing")

    monkeypatch.setattr(c.qa, "ask", broken)
    with pytest.raises(EvalError, match="in a row failed.*model file missing"):
        run_suite(c, RunOptions("ncp", tmp_path / "run2", data=ncp_data, kb="evalncp"))


def test_concurrent_items_give_the_same_records_and_really_overlap(tmp_path, ncp_data, monkeypatch):
    import threading
    import time

    c = make_container(tmp_path / "data")
    seq = run_suite(c, RunOptions("ncp", tmp_path / "seq", data=ncp_data, kb="evalncp"))

    real_ask, lock, state = c.qa.ask, threading.Lock(), {"now": 0, "peak": 0}

    def slow_ask(*a, **kw):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        try:
            return real_ask(*a, **kw)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(c.qa, "ask", slow_ask)
    par = run_suite(c, RunOptions("ncp", tmp_path / "par", data=ncp_data, kb="evalncp", concurrency=3))
    assert state["peak"] == 3
    by_key = lambda out: {r["key"]: (r["answer"], r["retrieval"], r["metrics"]) for r in _items(out)}  # noqa: E731
    assert by_key(tmp_path / "par") == by_key(tmp_path / "seq")
    assert par["suites"]["ncp"]["answer"]["f1"] == seq["suites"]["ncp"]["answer"]["f1"]
    with pytest.raises(EvalError, match="--concurrency"):
        run_suite(c, RunOptions("ncp", tmp_path / "bad", data=ncp_data, kb="evalncp", concurrency=0))


def test_a_broken_run_stops_under_concurrency_too(tmp_path, ncp_data, monkeypatch):
    c = make_container(tmp_path / "data")

    def broken(*a, **kw):
        raise RuntimeError("model file missing")

    monkeypatch.setattr(c.qa, "ask", broken)
    with pytest.raises(EvalError, match="in a row failed.*model file missing"):
        run_suite(c, RunOptions("ncp", tmp_path / "run", data=ncp_data, kb="evalncp", concurrency=2))


def test_sessions_keep_the_first_start_also_for_run_folders_written_before_sessions_were_recorded():
    assert _sessions({}, "T1", 0) == {"started": "T1", "sessions": [{"started": "T1"}]}
    older = {"started": "T0"}                                  # run.json of an earlier release: no "sessions"
    assert _sessions(older, "T1", 5) == {"started": "T0", "sessions": [{"started": "T0"},
                                                                       {"started": "T1", "done_before": 5}]}
    again = _sessions(older, "T1", 5)
    assert _sessions(again, "T2", 9)["sessions"][-1] == {"started": "T2", "done_before": 9}
    assert _sessions(again, "T2", 0) == {"started": "T2", "sessions": [{"started": "T2"}]}   # nothing done: a new run
