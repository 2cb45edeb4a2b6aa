"""The command line, in-process with typer's CliRunner on the unit profile: JSON shapes, knowledge base and
document commands, and one-line errors with exit code 2 (never a traceback)."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assistant.cli.main import app
from assistant.services.access import LOCAL_ADMIN
from conftest import make_container
from ingest.loaders import SourceDocument

KB = "cli"
DOCS = [
    SourceDocument("parking", "示范市停车收费办法", "p.txt", "第一条 路内停车每小时收费五元。\n第二条 夜间停车免费。",
                   metadata={"agency": "示范市交通局", "doc_number": "示交发〔2025〕1号"}),
    SourceDocument("parking-old", "示范市停车收费旧办法", "po.txt", "第一条 路内停车每小时收费八元。",
                   metadata={"status": "已废止"}),
    SourceDocument("elderly", "养老补贴办法", "e.txt", "第一条 年满八十周岁的老年人可以申请高龄津贴。"),
    SourceDocument("fund", "公积金提取指南", "f.txt", "职工购房可以提取住房公积金。"),
    SourceDocument("marriage", "婚姻登记须知", "m.txt", "结婚登记需要双方当事人共同到婚姻登记机关办理。"),
    SourceDocument("garbage", "垃圾分类通知", "g.txt", "居民应当将厨余垃圾投放到绿色垃圾桶。"),
]


@pytest.fixture
def cli(tmp_path):
    data = tmp_path / "data"
    assert make_container(data).knowledge_bases.ingest_documents(KB, DOCS, principal=LOCAL_ADMIN).ok
    runner = CliRunner()
    env = {"GOV_ASSISTANT_DATA_DIR": str(data), "GOV_ASSISTANT_PROFILE": "unit"}

    def run(*args, input=None, **more_env):
        return runner.invoke(app, list(args), env={**env, **more_env}, input=input)

    return run


def assert_one_line_error(result, *needles, progress=False):
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    if progress:                                          # a progress bar may have started before the error
        lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith("错误 error:"), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0]


def test_search_json_hits_best_first(cli):
    result = cli("search", "路内停车每小时收费", "--kb", KB, "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert hits and {"doc_id", "title", "text", "score", "metadata"} <= set(hits[0])
    assert hits[0]["doc_id"] == "parking" and hits[0]["title"] == "示范市停车收费办法"
    assert hits[0]["text"] == "第一条 路内停车每小时收费五元。"
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert all(h["metadata"]["status"] == "现行有效" for h in hits)           # the repealed one is filtered
    assert len(json.loads(cli("search", "停车", "--kb", KB, "--json", "-k", "1").stdout)) == 1
    old = json.loads(cli("search", "路内停车", "--kb", KB, "--json", "--filter", "status=已废止").stdout)
    assert [h["doc_id"] for h in old] == ["parking-old"]
    bm25 = json.loads(cli("search", "路内停车", "--kb", KB, "--json", "--mode", "bm25").stdout)
    assert bm25 and all(h["scores"]["dense_rank"] is None for h in bm25)


def test_search_plain_output(cli):
    result = cli("search", "路内停车每小时收费", "--kb", KB)
    assert result.exit_code == 0
    assert "《示范市停车收费办法》（示交发〔2025〕1号）" in result.stdout and "路内停车每小时收费五元" in result.stdout
    none = cli("search", "路内停车", "--kb", KB, "--filter", "agency=不存在")
    assert none.exit_code == 0 and "no hits" in none.stdout


def test_ask_json(cli):
    result = cli("ask", "路内停车每小时收费多少？", "--kb", KB, "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert {"answer", "refused", "citations", "timings"} <= set(answer)
    assert answer["refused"] is False and "[1]" in answer["answer"]
    cite = answer["citations"][0]
    assert {"n", "doc_id", "title", "text", "metadata"} <= set(cite)
    assert cite["n"] == 1 and cite["doc_id"] == "parking" and cite["cited"] is True
    assert cite["text"] in answer["answer"] or "五元" in answer["answer"]
    assert answer["timings"]["total_ms"] >= 0
    refused = json.loads(cli("ask", "示范市的出租车起步价是多少？", "--kb", KB, "--json").stdout)
    assert refused["refused"] is True and refused["citations"] == []


def _queue_reply(monkeypatch, reply: str) -> None:
    """The next command's scripted model answers with `reply` (each invocation builds its own container)."""
    from assistant.cli import context as cli_module
    build = getattr(cli_module.container, "unpatched", cli_module.container)

    def with_reply():
        c = build()
        c.llm.replies.append(reply)
        return c
    with_reply.unpatched = build
    monkeypatch.setattr(cli_module, "container", with_reply)


def test_ask_json_carries_verification_and_related(cli, monkeypatch):
    answered = json.loads(cli("ask", "路内停车每小时收费多少？", "--kb", KB, "--json").stdout)
    assert answered["verification"]["reason"] == "" and answered["verification"]["removed"] == 0
    assert answered["verification"]["sentences"][0]["supported"] is True and answered["related"] == []
    _queue_reply(monkeypatch, "路内停车每小时收费十元[1]。")   # the passage says 五元
    quoted = json.loads(cli("ask", "路内停车每小时收费多少？", "--kb", KB, "--json").stdout)
    assert not quoted["refused"] and "五元" in quoted["answer"] and "十元" not in quoted["answer"]
    assert quoted["verification"]["extract"]["rule"] == "anchor" and quoted["verification"]["removed"] == 1
    # with the quote off, the refusal
    _queue_reply(monkeypatch, "路内停车每小时收费十元[1]。")
    result = cli("ask", "路内停车每小时收费多少？", "--kb", KB, "--json", GOV_ASSISTANT_ANSWER__QUOTE_MIN_ANCHOR="0")
    assert result.exit_code == 0, result.output
    refused = json.loads(result.stdout)
    v = refused["verification"]
    assert refused["refused"] is True and refused["citations"] == [] and v["reason"] == "unsupported"
    assert v["removed"] == 1 and v["sentences"][0]["unsupported"] and "十元" not in refused["answer"]
    assert refused["related"] and all(c["related"] is True and c["cited"] is False for c in refused["related"])


def test_ask_plain_prints_removal_note_and_related(cli, monkeypatch):
    _queue_reply(monkeypatch, "路内停车每小时收费五元[1]。停车收费标准自2030年1月1日起施行[1]。")
    result = cli("ask", "路内停车每小时收费多少？", "--kb", KB)
    assert result.exit_code == 0, result.output
    assert "五元" in result.stdout and "2030" not in result.stdout.split("已删除")[0]
    assert "已删除 1 句：依据中未找到「2030年1月1日」" in result.stdout
    _queue_reply(monkeypatch, "路内停车每小时收费十元[1]。")
    result = cli("ask", "路内停车每小时收费多少？", "--kb", KB, GOV_ASSISTANT_ANSWER__QUOTE_MIN_ANCHOR="0")
    assert "相关但未直接回答" in result.stdout and "《示范市停车收费办法》" in result.stdout


def test_ask_plain_marks_cited_sources(cli):
    result = cli("ask", "路内停车每小时收费多少？", "--kb", KB)
    assert result.exit_code == 0
    assert "*[1] 《示范市停车收费办法》" in result.stdout and "人工智能生成内容" in result.stdout


def test_kb_commands(cli):
    listed = json.loads(cli("kb", "list", "--json").stdout)
    assert [(k["name"], k["documents"]) for k in listed] == [(KB, len(DOCS))]
    assert listed[0]["chunks"] == 8 and listed[0]["embedding"] == "hash"   # 7 + parking's 文件信息 passage
    assert cli("kb", "create", "second", "-d", "第二个知识库").exit_code == 0
    assert {k["name"] for k in json.loads(cli("kb", "list", "--json").stdout)} == {KB, "second"}
    assert "second" in cli("kb", "list").stdout
    info = json.loads(cli("kb", "info", KB).stdout)
    assert info["documents"] == len(DOCS) and info["chunks"] == info["vectors"] == 8
    assert info["by_status"] == {"现行有效": len(DOCS) - 1, "已废止": 1} and info["pending_documents"] == 0
    assert_one_line_error(cli("kb", "create", KB), "already exists")
    assert_one_line_error(cli("kb", "create", "中文名"), "invalid knowledge base name")
    keep = cli("kb", "delete", KB, input="n\n")
    assert keep.exit_code == 1 and KB in {k["name"] for k in json.loads(cli("kb", "list", "--json").stdout)}
    gone = cli("kb", "delete", KB, "-y")
    assert gone.exit_code == 0 and f"deleted {KB}" in gone.stdout
    assert {k["name"] for k in json.loads(cli("kb", "list", "--json").stdout)} == {"second"}
    assert_one_line_error(cli("search", "停车", "--kb", KB), "does not exist")
    assert_one_line_error(cli("kb", "info", KB), KB)
    assert_one_line_error(cli("kb", "delete", KB, "-y"), "does not exist")


def test_doc_commands(cli):
    docs = json.loads(cli("doc", "list", "--kb", KB, "--json").stdout)
    assert {d["doc_id"] for d in docs} == {d.doc_id for d in DOCS}
    assert all(d["state"] == "complete" and d["n_chunks"] >= 1 for d in docs)
    table = cli("doc", "list", "--kb", KB)
    assert table.exit_code == 0 and "parking" in table.stdout
    shown = json.loads(cli("doc", "show", "parking", "--kb", KB, "--chunks").stdout)
    assert shown["title"] == "示范市停车收费办法" and len(shown["chunks"]) == 3   # 2 articles + 文件信息
    deleted = cli("doc", "delete", "parking", "--kb", KB)
    assert deleted.exit_code == 0 and "deleted parking" in deleted.stdout
    assert "parking" not in {d["doc_id"] for d in json.loads(cli("doc", "list", "--kb", KB, "--json").stdout)}
    hits = json.loads(cli("search", "路内停车每小时收费", "--kb", KB, "--json", "--filter", "status=*").stdout)
    assert "parking" not in {h["doc_id"] for h in hits}
    assert_one_line_error(cli("doc", "delete", "parking", "--kb", KB), "parking", "not found")
    assert_one_line_error(cli("doc", "show", "nope", "--kb", KB), "nope")


@pytest.mark.parametrize("args, needle", [
    (["search", "停车", "--kb", KB, "--filter", "status=有效"], "status"),
    (["search", "停车", "--kb", KB, "--filter", "date_from=明天"], "date_from"),
    (["search", "停车", "--kb", KB, "--filter", "Agency=x"], "Agency"),
    (["search", "停车", "--kb", KB, "--filter", "agency"], "key=value"),
    (["ask", "停车收费？", "--kb", KB, "--filter", "status=,"], "status"),
    (["search", "停车", "--kb", KB, "--mode", "fuzzy"], "fuzzy"),
    (["search", "  ", "--kb", KB], "empty"),
    (["ingest", "x.txt", "--kb", KB, "--meta", "oops"], "--meta"),
])
def test_bad_requests_are_one_line_errors(cli, args, needle):
    assert_one_line_error(cli(*args), needle)


def test_bad_profile_is_a_one_line_error(cli):
    assert_one_line_error(cli("-p", "nope", "kb", "list"), "unknown profile 'nope'")


def test_each_invocation_uses_its_own_settings(cli, tmp_path):
    assert len(json.loads(cli("kb", "list", "--json").stdout)) == 1
    other = CliRunner().invoke(app, ["kb", "list", "--json"],
                               env={"GOV_ASSISTANT_DATA_DIR": str(tmp_path / "other"), "GOV_ASSISTANT_PROFILE": "unit"})
    assert other.exit_code == 0 and json.loads(other.stdout) == []


def test_ingest_laws_command(cli):
    result = cli("ingest-laws", "--kb", "laws", "--law", "户口登记条例", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["counts"] == {"added": 1} and report["chunks"] == 25   # 24 articles + 文件信息
    hits = json.loads(cli("search", "户口登记", "--kb", "laws", "--json", "-k", "3").stdout)
    assert hits[0]["metadata"]["law"] == "中华人民共和国户口登记条例"
    assert_one_line_error(cli("ingest-laws", "--kb", "laws", "--law", "不存在的法"), "no law", progress=True)
