"""custom suite (gold_file alias, must_refuse), the optional LLM judge over loopback HTTP, and the summaries suite."""
from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assistant.demo import sample_documents
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import PROJECT_ROOT
from eval.data import resolve_gold_files
from eval.judge import Judge, parse_score
from eval.base import EvalError, RunOptions
from eval.runner import run_suite
from eval.suites.summaries import SummarizerMissing

from conftest import make_container

QUESTIONS = PROJECT_ROOT / "samples" / "questions.jsonl"


@pytest.fixture
def samples_container(tmp_path):
    c = make_container(tmp_path / "data")
    report = c.knowledge_bases.ingest_documents("samples", sample_documents(), principal=LOCAL_ADMIN)
    assert report.ok
    return c


def test_gold_file_alias_resolves_to_document_ids(samples_container):
    docs = samples_container.store.catalog.list_documents("samples")
    ids = resolve_gold_files(["示范市新生儿入户办事指南.txt"], docs)
    assert len(ids) == 1
    assert samples_container.store.catalog.get_document("samples", ids[0])["source"].endswith("新生儿入户办事指南.txt")
    assert resolve_gold_files(["示范市新生儿入户办事指南"], docs) == ids      # the title / stem works too
    assert resolve_gold_files(["nothing.md"], docs) == []


def test_custom_suite_on_the_sample_questions(samples_container, tmp_path):
    out = tmp_path / "run"
    summary = run_suite(samples_container, RunOptions("custom", out, data=QUESTIONS, kb="samples"))
    custom = summary["suites"]["custom"]
    rows = [json.loads(x) for x in QUESTIONS.read_text(encoding="utf-8").splitlines() if x.strip()]
    answerable = [r for r in rows if not r.get("must_refuse")]
    assert custom["retrieval"]["hybrid"]["n"] == len(answerable)      # every gold_file resolved
    assert custom["retrieval"]["bm25"]["R@5"] > 0.5
    assert custom["answer"]["n"] == len(rows)
    if any(r.get("must_refuse") for r in rows):
        mr = custom["answer"]["must_refuse"]
        assert mr["n"] == sum(bool(r.get("must_refuse")) for r in rows)
        assert 0 <= mr["correct_refusal_rate"] <= 1
    items = [json.loads(x) for x in (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    for rec in items:
        assert "refusal_correct" in rec["metrics"]["answer"]
        if rec["must_refuse"]:
            assert rec["metrics"]["answer"]["refusal_correct"] == float(rec["refused"])


def test_custom_refusal_handling(samples_container, tmp_path):
    qs = tmp_path / "qs.jsonl"
    qs.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": "out", "question": "火星基地的氧气配额是多少？", "must_refuse": True},
        {"id": "in", "question": "申请餐饮服务食品经营许可是否收费？", "answer": "不收费",
         "gold_file": "示范市餐饮服务经营许可办事指南.md"},
        {"id": "ghost", "question": "示范市数据条例何时施行？", "gold_file": "missing.md"},
        {"id": "refused", "question": "火星基地的氧气配额由谁核实？", "answer": "由相关部门核实。"},
    ]) + "\n", encoding="utf-8")
    summary = run_suite(samples_container, RunOptions("custom", tmp_path / "run", data=qs, kb="samples"))
    items = {r["id"]: r for r in map(json.loads, (tmp_path / "run" / "items.jsonl").read_text().splitlines())}
    assert items["out"]["refused"] is True                   # the evidence gate refuses without the LLM
    assert items["out"]["metrics"]["answer"]["refusal_correct"] == 1.0
    assert items["in"]["refused"] is False and items["in"]["metrics"]["answer"]["refusal_correct"] == 1.0
    # a refusal scores 0 on an answerable question, although its wording shares characters with the gold span
    assert items["refused"]["refused"] is True
    assert {k: items["refused"]["metrics"]["answer"][k] for k in ("f1", "em", "rouge_l", "contains")} == \
        dict.fromkeys(("f1", "em", "rouge_l", "contains"), 0.0)
    mr = summary["suites"]["custom"]["answer"]["must_refuse"]
    assert (mr["n"], mr["correct_refusal_rate"]) == (1, 1.0)
    assert mr["false_refusal_rate"] == pytest.approx(1 / 3, abs=1e-3)   # "refused" of the 3 not must_refuse
    assert any("missing.md" in n for n in summary["suites"]["custom"]["run"]["notes"])


def test_custom_needs_a_kb(tmp_path):
    with pytest.raises(EvalError, match="--kb"):
        run_suite(make_container(tmp_path / "data"), RunOptions("custom", tmp_path / "run", data=QUESTIONS))


class _JudgeHandler(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def log_message(self, *args):
        pass

    def _send(self, body: dict):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send({"object": "list", "data": [{"id": "judge-model", "object": "model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        score = 4 if "参考资料" in body["messages"][0]["content"] else 5
        self._send({"choices": [{"index": 0, "message": {"role": "assistant",
                                                         "content": f'{{"score": {score}, "reason": "ok"}}'}}]})


@pytest.fixture
def judge_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JudgeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_parse_score():
    assert parse_score('{"score": 3, "reason": "x"}') == 3
    assert parse_score('评分：```json\n{"score": 5}\n```') == 5
    assert parse_score("我给 2 分") == 2
    assert parse_score("no idea") is None


def test_judge_over_loopback_http_is_labelled_in_the_report(samples_container, tmp_path, judge_url):
    judge = Judge(judge_url)
    assert judge.model == "judge-model"
    assert judge.evaluate("问", "答", ["资料"])["faithfulness"] == 0.75
    qs = tmp_path / "qs.jsonl"
    qs.write_text(json.dumps({"question": "申请餐饮服务食品经营许可是否收费？", "answer": "不收费"},
                             ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    summary = run_suite(samples_container, RunOptions("custom", out, data=qs, kb="samples", judge_url=judge_url))
    assert summary["judge"] == {"url": judge_url, "model": "judge-model"}
    j = summary["suites"]["custom"]["answer"]["judge"]
    assert j == {"n": 1, "faithfulness": 0.75, "relevance": 1.0}
    assert _JudgeHandler.requests[-1]["temperature"] == 0
    assert "LLM-as-judge used" in (out / "report.md").read_text(encoding="utf-8")


def test_summaries_suite_skips_clearly_without_the_summarizer(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "assistant.services.summarize", None)      # import fails
    with pytest.raises(SummarizerMissing, match="issue #5"):
        run_suite(make_container(tmp_path / "data"), RunOptions("summaries", tmp_path / "run"))


def test_summaries_suite_scores_rouge_l(tmp_path, monkeypatch):
    import types
    monkeypatch.setitem(sys.modules, "assistant.services.summarize", types.ModuleType("assistant.services.summarize"))
    law = [{"instruction": "摘要", "question": f"新闻{i}：某市破获案件{i}，涉案金额{i}万元。", "answer": f"某市破获案件{i}"}
           for i in range(4)]
    crud = [{"ID": f"c{i}", "event": "e", "title": f"t{i}", "text": f"事件{i}正文很长。", "summary": f"事件{i}摘要"}
            for i in range(6)]
    (tmp_path / "lawbench_2-7.json").write_text(json.dumps(law, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "crud_event_summary.json").write_text(json.dumps(crud, ensure_ascii=False), encoding="utf-8")

    class FakeSummarizer:
        def summarize_text(self, text: str, style: str = "brief"):
            assert style == "brief"
            return {"summary": text.split("：")[-1].split("，")[0]}

    c = make_container(tmp_path / "data")
    c.__dict__["summarize"] = FakeSummarizer()
    out = tmp_path / "run"
    summary = run_suite(c, RunOptions("summaries", out, data=tmp_path, crud_sample=3, limit=2))
    sets = summary["suites"]["summaries"]["sets"]
    assert sets["lawbench"]["n"] == 2 and sets["crud"]["n"] == 2
    assert sets["lawbench"]["rouge_l_char"] == 100.0
    assert 0 <= sets["crud"]["rouge_l_char"] < 100
    assert summary["suites"]["summaries"]["published"]["lawbench"]["GPT-4"] == 37.92
    assert (out / "summaries_rouge.png").is_file()
