"""Every route through FastAPI's TestClient on the unit profile (scripted LLM, hashing embedder)."""
from __future__ import annotations

import io
import json
import time

import pytest

from assistant.retrieval import Hit
from assistant.services.access import LOCAL_ADMIN

QUESTION = "新生儿落户需要哪些材料？"


# ---------------------------------------------------------------- health, docs, metrics

def test_health_ready_and_docs(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and set(body["checks"]) == {"store", "embeddings", "llm"}
    assert all(check["ok"] for check in body["checks"].values())
    assert api.client.get("/docs").status_code == 200
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in ("/v1/chat/completions", "/v1/models", "/api/v1/ask", "/api/v1/search", "/api/v1/kbs",
                 "/api/v1/kbs/{kb}/documents", "/api/v1/jobs/{job_id}", "/api/v1/service/guide", "/api/v1/draft",
                 "/api/v1/polish", "/api/v1/extract-actions", "/api/v1/feedback", "/api/v1/feedback/export"):
        assert path in paths, path


def test_readyz_reports_the_failing_part(api, monkeypatch):
    def broken():
        raise RuntimeError("model file missing")
    monkeypatch.setattr(type(api.container), "llm", property(lambda self: broken()))
    r = api.client.get("/readyz")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["store"]["ok"] and checks["embeddings"]["ok"]
    assert not checks["llm"]["ok"] and "model file missing" in checks["llm"]["error"]


def test_metrics_prometheus_format(api):
    api.client.post("/api/v1/ask", json={"question": QUESTION, "kb": "samples"}, headers=api.h("reader"))
    text = api.client.get("/metrics").text
    assert '# TYPE gov_assistant_http_requests_total counter' in text
    assert 'gov_assistant_http_requests_total{method="POST",route="/api/v1/ask",status="200"}' in text
    assert 'gov_assistant_http_request_duration_seconds_bucket{method="POST",route="/api/v1/ask",le="+Inf"}' in text
    assert 'gov_assistant_llm_tokens_total{kind="completion"}' in text
    assert 'gov_assistant_answers_total{outcome="answered"}' in text


# ---------------------------------------------------------------- ask and search

def test_ask_answers_with_citations(api):
    r = api.client.post("/api/v1/ask", json={"question": QUESTION, "kb": "samples"}, headers=api.h("reader"))
    assert r.status_code == 200
    body = r.json()
    assert body["refused"] is False and body["ai_generated"] is True
    assert body["answer"] and "[1]" in body["answer"]
    assert body["citations"] and body["citations"][0]["cited"] is True
    assert {"n", "doc_id", "chunk_id", "kb", "title", "label", "text", "metadata", "cited"} <= set(body["citations"][0])
    assert body["answer_id"] and "total_ms" in body["timings"]


def test_ask_refuses_without_evidence(api):
    r = api.client.post("/api/v1/ask", json={"question": "火星基地的氧气配额怎么申请？", "kb": "samples"},
                        headers=api.h("reader"))
    assert r.status_code == 200
    assert r.json()["refused"] is True and r.json()["citations"] == [] and r.json()["ai_generated"] is True


INVENTED = "预算总额是10亿元[1]。"   # no passage of the samples KB holds 10亿元


@pytest.fixture
def judged(api, monkeypatch):
    """The answerability judgement on (the scripted model answers 是 unless a test queues 否), whatever the
    profile's default."""
    monkeypatch.setattr(api.container.settings.answer, "answerability", "logprob")
    return api


def _refused_with_related(body: dict) -> None:
    assert body["refused"] is True and body["citations"] == []
    assert body["related"] and all(c["related"] is True and c["cited"] is False for c in body["related"])
    assert {"n", "doc_id", "chunk_id", "kb", "title", "label", "text", "metadata"} <= set(body["related"][0])


def test_ask_answer_carries_its_verification(judged):
    api = judged
    body = api.client.post("/api/v1/ask", json={"question": QUESTION, "kb": "samples"}, headers=api.h("reader")).json()
    v = body["verification"]
    assert set(v) == {"sentences", "answerability", "missing_constraints", "reason", "removed", "extract"}
    assert v["reason"] == "" and v["removed"] == 0 and v["missing_constraints"] == []
    assert v["sentences"] and all(s["supported"] for s in v["sentences"]) and v["sentences"][0]["cites"] == [1]
    assert isinstance(v["answerability"], float) and v["answerability"] >= 0.5
    assert body["related"] == [] and all(c["related"] is False for c in body["citations"])


def test_ask_invented_figure_is_removed_and_refused(api, monkeypatch):
    # the passage that answers is there: its clause under 申请材料 is quoted instead of the invented sentence
    api.container.llm.replies.append(INVENTED)
    quoted = api.client.post("/api/v1/ask", json={"question": QUESTION, "kb": "samples"}, headers=api.h("reader")).json()
    assert not quoted["refused"] and quoted["answer"].startswith("依据原文摘录") and "10亿元" not in quoted["answer"]
    assert quoted["verification"]["extract"]["rule"] == "anchor" and quoted["verification"]["removed"] == 1
    monkeypatch.setattr(api.container.settings.answer, "quote_min_anchor", 0.0)     # the quote off: refused
    api.container.llm.replies.append(INVENTED)
    r = api.client.post("/api/v1/ask", json={"question": QUESTION, "kb": "samples"}, headers=api.h("reader"))
    assert r.status_code == 200
    body = r.json()
    _refused_with_related(body)
    v = body["verification"]
    assert v["reason"] == "unsupported" and v["removed"] == 1
    assert v["sentences"][0]["unsupported"] == ["10亿元"] and v["sentences"][0]["supported"] is False
    assert v["sentences"][0]["kinds"] == ["amount"] and "10亿元" not in body["answer"]
    assert {"support", "own", "added_cites"} <= set(v["sentences"][0])       # the wording check, machine-readable


def test_ask_judged_unanswerable_is_refused(judged):
    api = judged
    api.container.llm.judgements.append("否")
    body = api.client.post("/api/v1/ask", json={"question": QUESTION, "kb": "samples"}, headers=api.h("reader")).json()
    _refused_with_related(body)
    assert body["verification"]["reason"] == "unanswerable" and body["verification"]["answerability"] < 0.5
    assert body["verification"]["sentences"] == []


def test_ask_without_evidence_lists_related_passages(api):
    body = api.client.post("/api/v1/ask", json={"question": "火星基地的氧气配额怎么申请？", "kb": "samples"},
                           headers=api.h("reader")).json()
    assert body["refused"] is True and body["verification"]["reason"] == "no_evidence"
    assert all(c["related"] is True for c in body["related"])


def test_ask_schema_documents_verification_and_related(api):
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    ask = schemas["AskResponse"]["properties"]
    assert {"verification", "related", "citations"} <= set(ask)
    assert {"sentences", "answerability", "missing_constraints", "reason", "removed"} <= set(
        schemas["VerificationOut"]["properties"])
    assert {"unsupported", "supported", "cites"} <= set(schemas["SentenceCheckOut"]["properties"])
    assert "related" in schemas["CitationOut"]["properties"]
    assert {"verification", "related", "sources"} <= set(schemas["ChatCompletionOut"]["properties"])


def test_ask_with_filters_and_history(api):
    llm = api.container.llm
    llm.replies.append(QUESTION)   # the scripted model's rewrite of the follow-up
    r = api.client.post("/api/v1/ask", headers=api.h("reader"), json={
        "question": "需要哪些材料？", "kbs": ["samples"], "filters": {"doc_type": "办事指南", "status": ["现行有效"]},
        "history": [{"role": "user", "content": "新生儿入户怎么办理？"}, {"role": "assistant", "content": "到派出所。"}]})
    assert r.status_code == 200
    body = r.json()
    assert body["standalone_question"] == QUESTION and not body["refused"]
    assert body["citations"] and all(c["metadata"]["doc_type"] == "办事指南" for c in body["citations"])
    assert any("到派出所" in str(call) for call in llm.calls)   # the history reached the condense step


@pytest.mark.parametrize("body, needle", [
    ({"question": QUESTION}, "kb"),
    ({"question": "", "kb": "samples"}, "question"),
    ({"question": QUESTION, "kb": "samples", "filters": {"status": "作废"}}, "status"),
    ({"question": QUESTION, "kb": "samples", "filters": {"BAD KEY": "x"}}, "filter"),
    ({"question": QUESTION, "kb": "samples", "colour": "red"}, "colour"),
    ({"question": QUESTION, "kb": "bad name!"}, "kb"),
    ({"question": QUESTION, "kb": "samples", "history": [{"role": "robot", "content": "x"}]}, "role"),
    ({"question": "问" * 2001, "kb": "samples"}, "question"),
])
def test_ask_rejects_bad_input_with_422(api, body, needle):
    r = api.client.post("/api/v1/ask", json=body, headers=api.h("admin"))
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]


def test_malformed_json_is_422_with_message(api):
    r = api.client.post("/api/v1/ask", content=b'{"question": "x", "kb": ', headers={
        **api.h("admin"), "Content-Type": "application/json"})
    assert r.status_code == 422 and "malformed JSON" in r.json()["detail"]
    r = api.client.post("/api/v1/ask", content=b"[1, 2]", headers={**api.h("admin"), "Content-Type": "application/json"})
    assert r.status_code == 422


def test_ask_unknown_kb_is_404_for_admin(api):
    r = api.client.post("/api/v1/ask", json={"question": QUESTION, "kb": "nosuchkb"}, headers=api.h("admin"))
    assert r.status_code == 404 and "does not exist" in r.json()["detail"]


def test_search_returns_cli_hit_shape(api):
    r = api.client.post("/api/v1/search", json={"query": "新生儿 入户 材料", "kb": "samples", "top_k": 3},
                        headers=api.h("reader"))
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert 0 < len(hits) <= 3
    cli_keys = set(Hit("c", "d", "k", "t", {}).to_dict())
    assert all(set(h) == cli_keys for h in hits)
    bm25 = api.client.post("/api/v1/search", json={"query": "新生儿", "kb": "samples", "mode": "bm25"},
                           headers=api.h("reader")).json()["hits"]
    assert bm25 and all(h["scores"]["dense"] is None for h in bm25)
    assert api.client.post("/api/v1/search", json={"query": "x", "kb": "samples", "mode": "magic"},
                           headers=api.h("reader")).status_code == 422


# ---------------------------------------------------------------- knowledge bases

def test_kb_lifecycle(api):
    r = api.client.post("/api/v1/kbs", json={"name": "drafts", "description": "草稿库"}, headers=api.h("editor"))
    assert r.status_code == 201 and r.json()["name"] == "drafts"
    assert api.client.post("/api/v1/kbs", json={"name": "drafts"}, headers=api.h("editor")).status_code == 409
    assert api.client.post("/api/v1/kbs", json={"name": "坏名字"}, headers=api.h("admin")).status_code == 422
    # an editor creates only knowledge bases in its own list
    assert api.client.post("/api/v1/kbs", json={"name": "elsewhere"}, headers=api.h("editor")).status_code == 403
    names = [kb["name"] for kb in api.client.get("/api/v1/kbs", headers=api.h("editor")).json()]
    assert names == ["drafts", "samples"]
    info = api.client.get("/api/v1/kbs/samples", headers=api.h("reader")).json()
    assert info["documents"] == 5 and info["chunks"] > 0 and "by_status" in info
    assert api.client.delete("/api/v1/kbs/drafts", headers=api.h("editor")).status_code == 403
    assert api.client.delete("/api/v1/kbs/drafts", headers=api.h("admin")).json() == {"deleted": "drafts"}
    assert api.client.get("/api/v1/kbs/drafts", headers=api.h("admin")).status_code == 404
    assert api.client.delete("/api/v1/kbs/drafts", headers=api.h("admin")).status_code == 404


def test_kb_check_and_repair(api):
    c = api.container
    check = api.client.get("/api/v1/kbs/samples/check", headers=api.h("reader")).json()
    assert check["consistent"] and check["chunks"] == check["vectors"] > 0
    doc = c.knowledge_bases.documents("samples", principal=LOCAL_ADMIN)[0]["doc_id"]
    c.store.vectors.delete_ids("samples", [ch["chunk_id"] for ch in c.store.catalog.document_chunks("samples", doc)])
    check = api.client.get("/api/v1/kbs/samples/check", headers=api.h("reader")).json()
    assert check["documents_missing_vectors"] == [doc] and not check["consistent"]
    assert api.client.post("/api/v1/kbs/samples/repair", headers=api.h("editor")).status_code == 403
    fixed = api.client.post("/api/v1/kbs/samples/repair", headers=api.h("admin")).json()
    assert fixed["repaired"]["vectors_written"] == fixed["repaired"]["vectors_marked_pending"] > 0
    assert api.client.get("/api/v1/kbs/samples/check", headers=api.h("reader")).json()["consistent"]


# ---------------------------------------------------------------- documents and jobs

def _files(*items: tuple[str, bytes]) -> list:
    return [("files", (name, io.BytesIO(data), "application/octet-stream")) for name, data in items]


def test_upload_job_list_show_reindex_delete(api):
    notice = "示范市上传测试通知\n一、各单位应当于2025年6月30日前完成上传测试工作。\n二、联系人：赵六。\n".encode()
    guide = "# 上传测试办事指南\n\n办理时限：5个工作日。收费标准：不收费。\n".encode("gb18030")
    r = api.client.post("/api/v1/kbs/samples/documents", headers=api.h("editor"),
                        files=_files(("通知.txt", notice), ("指南.md", guide)), data={"metadata": '{"agency": "测试局"}'})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["files"] == ["通知.txt", "指南.md"] and accepted["status_url"].endswith(accepted["job_id"])
    job = api.wait_job(accepted["job_id"], "editor")
    assert job["state"] == "done" and job["ok"], job
    # both stages: each file's text (searchable by keywords), then the vectors (the job's last progress)
    assert job["counts"] == {"added": 2} and job["progress"]["phase"] == "vectors"
    assert job["progress"]["done"] == job["progress"]["total"] == sum(r["chunks"] for r in job["results"])
    assert sorted(r["source"] for r in job["results"]) == ["指南.md", "通知.txt"]
    assert all(r["pending_vectors"] == 0 for r in job["results"])

    docs = api.client.get("/api/v1/kbs/samples/documents", headers=api.h("reader")).json()
    uploaded = [d for d in docs if d["source"] == "通知.txt"]
    assert len(uploaded) == 1 and uploaded[0]["metadata"]["agency"] == "测试局"
    doc_id = uploaded[0]["doc_id"]
    assert len(api.client.get("/api/v1/kbs/samples/documents?limit=2", headers=api.h("reader")).json()) == 2
    shown = api.client.get(f"/api/v1/kbs/samples/documents/{doc_id}?chunks=true", headers=api.h("reader")).json()
    assert shown["chunks"] and "上传测试" in shown["chunks"][0]["text"]

    r = api.client.post(f"/api/v1/kbs/samples/documents/{doc_id}/reindex", headers=api.h("editor"))
    assert r.status_code == 202
    job = api.wait_job(r.json()["job_id"], "editor")
    assert job["state"] == "done" and job["ok"] and job["kind"] == "reindex"
    assert api.client.post("/api/v1/kbs/samples/documents/nope/reindex", headers=api.h("editor")).status_code == 404

    assert api.client.delete(f"/api/v1/kbs/samples/documents/{doc_id}", headers=api.h("reader")).status_code == 403
    assert api.client.delete(f"/api/v1/kbs/samples/documents/{doc_id}", headers=api.h("editor")).status_code == 200
    assert api.client.get(f"/api/v1/kbs/samples/documents/{doc_id}", headers=api.h("reader")).status_code == 404
    other = [d["doc_id"] for d in api.client.get("/api/v1/kbs/samples/documents", headers=api.h("reader")).json()
             if d["source"] == "指南.md"]
    api.client.delete(f"/api/v1/kbs/samples/documents/{other[0]}", headers=api.h("editor"))


def test_reindex_whole_kb_and_job_listing(api):
    r = api.client.post("/api/v1/kbs/secret/reindex", headers=api.h("admin"))
    assert r.status_code == 202
    job = api.wait_job(r.json()["job_id"])
    assert job["state"] == "done" and job["ok"] and job["files"] == ["xinghe"]
    assert any(j["id"] == job["id"] for j in api.client.get("/api/v1/jobs", headers=api.h("admin")).json())
    # a job belongs to its owner (and admins)
    assert api.client.get(f"/api/v1/jobs/{job['id']}", headers=api.h("editor")).status_code == 404
    editor_id = api.container.api_keys.authenticate(api.keys["editor"]).id   # jobs are owned by the key id
    assert all(j["owner"] == editor_id for j in api.client.get("/api/v1/jobs", headers=api.h("editor")).json())
    assert api.client.get("/api/v1/jobs/job_unknown", headers=api.h("admin")).status_code == 404
    assert api.client.post("/api/v1/kbs/secret/reindex", headers=api.h("editor")).status_code == 403


def test_ingestion_waits_for_the_single_writer_lock(api):
    """Jobs (and the UI, and deletes) share KnowledgeBaseService.write_lock: one writer into Chroma at a time."""
    lock = api.container.knowledge_bases.write_lock
    with lock:   # another writer is busy
        r = api.client.post("/api/v1/kbs/samples/documents", headers=api.h("editor"),
                            files=_files(("锁测试.txt", "示范市写锁测试文件，内容用于验证串行写入。".encode())))
        time.sleep(0.5)
        job = api.client.get(f"/api/v1/jobs/{r.json()['job_id']}", headers=api.h("editor")).json()
        assert job["state"] == "running" and job["results"] == [] and job["progress"]["phase"] == "queued"
    job = api.wait_job(r.json()["job_id"], "editor")
    assert job["state"] == "done" and job["counts"] == {"added": 1}


def test_upload_per_file_failures_are_reported(api):
    r = api.client.post("/api/v1/kbs/samples/documents", headers=api.h("editor"),
                        files=_files(("空文件.txt", b""), ("坏记录.jsonl", b'{"text": 1}\n')))
    job = api.wait_job(r.json()["job_id"], "editor")
    assert job["state"] == "done" and not job["ok"] and job["counts"] == {"failed": 2}
    assert {res["source"].split(":")[0] for res in job["results"]} == {"空文件.txt", "坏记录.jsonl"}
    assert all("/uploads/" not in res["source"] for res in job["results"])


def test_upload_hygiene(api):
    post = lambda files, who="editor": api.client.post("/api/v1/kbs/samples/documents",  # noqa: E731
                                                       headers=api.h(who), files=files)
    # path traversal: only the basename survives, written inside the job's own folder
    r = post(_files(("../../../../tmp/evil_traversal.txt", "示范市测试文件，内容足够长，可以被切分。".encode())))
    assert r.status_code == 202 and r.json()["files"] == ["evil_traversal.txt"]
    api.wait_job(r.json()["job_id"], "editor")
    assert r.json()["files"] == ["evil_traversal.txt"]
    r = post(_files(("..\\..\\windows\\win.ini.md", b"x" * 50)))
    assert r.status_code == 202 and r.json()["files"] == ["win.ini.md"]
    api.wait_job(r.json()["job_id"], "editor")
    # type, size, count, duplicates, names, rights
    r = post(_files(("tool.exe", b"MZ")))
    assert r.status_code == 415 and ".exe" in r.json()["detail"]
    r = post(_files(("big.txt", b"a" * (1024 * 1024 + 1))))
    assert r.status_code == 413 and "limit is 1 MiB" in r.json()["detail"]
    r = post(_files(*[(f"f{i}.txt", b"text") for i in range(4)]))
    assert r.status_code == 413 and "at most 3" in r.json()["detail"]
    r = post(_files(("a.txt", b"one"), ("dir/a.txt", b"two")))
    assert r.status_code == 400 and "duplicate" in r.json()["detail"]
    r = post(_files(("..", b"x")))
    assert r.status_code in (400, 415)
    assert post(_files(("a.txt", b"x")), "reader").status_code == 403
    assert api.client.post("/api/v1/kbs/nosuch/documents", headers=api.h("admin"),
                           files=_files(("a.txt", b"x"))).status_code == 404
    assert api.client.post("/api/v1/kbs/samples/documents", headers=api.h("editor")).status_code == 422
    r = api.client.post("/api/v1/kbs/samples/documents", headers=api.h("editor"), files=_files(("a.txt", b"x")),
                        data={"metadata": '{"status": "作废"}'})
    assert r.status_code == 422 and "status" in r.json()["detail"]


def test_oversize_body_refused_before_reading(api):
    r = api.client.post("/api/v1/kbs/samples/documents", headers={**api.h("editor"), "Content-Length": str(10**10),
                                                                  "Content-Type": "multipart/form-data; boundary=x"},
                        content=b"--x--")
    assert r.status_code == 413


# ---------------------------------------------------------------- OpenAI-compatible

def _sse(text: str) -> list:
    events = [line[len("data: "):] for line in text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_openai_models(api):
    models = api.client.get("/v1/models", headers=api.h("reader")).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["samples", "llm"]
    assert api.client.get("/v1/models/samples", headers=api.h("reader")).json()["kind"] == "knowledge_base"
    assert api.client.get("/v1/models/secret", headers=api.h("reader")).status_code == 404


def test_openai_chat_rag_non_streaming(api):
    r = api.client.post("/v1/chat/completions", headers=api.h("reader"), json={
        "model": "samples", "temperature": 0.2, "top_p": 1, "user": "x",
        "messages": [{"role": "system", "content": "你是助手"}, {"role": "user", "content": QUESTION}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "samples"
    assert body["choices"][0]["message"]["role"] == "assistant" and body["choices"][0]["finish_reason"] == "stop"
    assert "[1]" in body["choices"][0]["message"]["content"]
    assert body["sources"] and body["sources"][0]["kb"] == "samples" and body["ai_generated"] is True
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert r.headers["X-AI-Generated"] == "true"


def test_openai_chat_history_is_condensed(api):
    llm = api.container.llm
    llm.replies.append(QUESTION)
    r = api.client.post("/v1/chat/completions", headers=api.h("reader"), json={"model": "samples", "messages": [
        {"role": "user", "content": "新生儿入户在哪里办？"}, {"role": "assistant", "content": "到派出所户籍窗口。"},
        {"role": "user", "content": "要带什么？"}]})
    assert r.status_code == 200 and r.json()["sources"]
    assert any("到派出所户籍窗口" in str(call) and "要带什么" in str(call) for call in llm.calls)


def test_openai_chat_rag_streaming_chunks(api):
    r = api.client.post("/v1/chat/completions", headers=api.h("reader"), json={
        "model": "samples", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    chunks = _sse(r.text)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    final = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] == "stop"]
    assert len(final) == 1 and final[0]["sources"] and final[0]["ai_generated"] is True and final[0]["answer_id"]
    assert chunks[-1]["choices"] == [] and "total_tokens" in chunks[-1]["usage"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert "[1]" in text and final[0]["answer"] == text.strip()


def test_openai_stream_final_chunk_carries_the_finished_answer(api):
    # a markers-only reply ("[1]") has nothing of its own to stream: the stream carries the finished answer, the
    # cited passage quoted (finalize_answer)
    api.container.llm.replies.append("[1]")
    r = api.client.post("/v1/chat/completions", headers=api.h("reader"), json={
        "model": "samples", "stream": True, "messages": [{"role": "user", "content": QUESTION}]})
    chunks = _sse(r.text)
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    final = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] == "stop")
    assert final["answer"] == streamed.strip()
    assert final["answer"].endswith("[1]") and final["sources"][0]["text"][:10] in final["answer"]


def test_openai_chat_carries_verification_and_related(api, monkeypatch):
    monkeypatch.setattr(api.container.settings.answer, "quote_min_anchor", 0.0)   # else the passage is quoted
    api.container.llm.replies.append(INVENTED)
    r = api.client.post("/v1/chat/completions", headers=api.h("reader"), json={
        "model": "samples", "messages": [{"role": "user", "content": QUESTION}]})
    body = r.json()
    assert body["refused"] is True and body["sources"] == []
    assert body["related"] and all(c["related"] is True and c["cited"] is False for c in body["related"])
    assert body["verification"]["reason"] == "unsupported"
    assert body["verification"]["sentences"][0]["unsupported"] == ["10亿元"]
    assert "10亿元" not in body["choices"][0]["message"]["content"]
    answered = api.client.post("/v1/chat/completions", headers=api.h("reader"), json={
        "model": "samples", "messages": [{"role": "user", "content": QUESTION}]}).json()
    assert answered["verification"]["reason"] == "" and answered["related"] == []
    assert all(c["related"] is False for c in answered["sources"])


def test_openai_stream_final_chunk_carries_verification(judged):
    api = judged
    # a supported sentence streams; the invented one never reaches the client, the final chunk says why
    api.container.llm.replies.append("根据资料，需要出生医学证明[1]。" + INVENTED)
    r = api.client.post("/v1/chat/completions", headers=api.h("reader"), json={
        "model": "samples", "stream": True, "messages": [{"role": "user", "content": QUESTION}]})
    chunks = _sse(r.text)
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    final = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] == "stop")
    assert "10亿元" not in streamed and "10亿元" not in final["answer"]
    v = final["verification"]
    assert v["removed"] == 1 and [s["unsupported"] for s in v["sentences"] if not s["supported"]] == [["10亿元"]]
    assert final["refused"] is False and final["related"] == []
    api.container.llm.judgements.append("否")
    chunks = _sse(api.client.post("/v1/chat/completions", headers=api.h("reader"), json={
        "model": "samples", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}).text)
    final = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] == "stop")
    assert final["refused"] is True and final["verification"]["reason"] == "unanswerable"
    assert final["sources"] == [] and final["related"] and final["related"][0]["related"] is True


def test_openai_plain_llm(api):
    r = api.client.post("/v1/chat/completions", headers=api.h("outsider"),
                        json={"model": "llm", "max_tokens": 20, "messages": [{"role": "user", "content": "你好"}]})
    assert r.status_code == 200 and r.json()["sources"] == [] and r.json()["ai_generated"] is True
    assert r.json()["choices"][0]["message"]["content"]
    r = api.client.post("/v1/chat/completions", headers=api.h("outsider"),
                        json={"model": "llm", "stream": True, "messages": [{"role": "user", "content": "你好"}]})
    chunks = _sse(r.text)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_openai_errors_use_openai_shape(api):
    r = api.client.post("/v1/chat/completions", json={"model": "samples", "messages": []})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = api.client.post("/v1/chat/completions", headers=api.h("reader"), json={"model": "samples", "messages": []})
    assert r.status_code == 422 and "messages" in r.json()["error"]["message"]
    r = api.client.post("/v1/chat/completions", headers=api.h("reader"),
                        json={"model": "samples", "messages": [{"role": "assistant", "content": "hi"}]})
    assert r.status_code == 422 and "user message" in r.json()["error"]["message"]
    r = api.client.post("/v1/chat/completions", headers=api.h("reader"),
                        json={"model": "samples", "n": 3, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 422
    r = api.client.post("/v1/chat/completions", headers=api.h("admin"),
                        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


# ---------------------------------------------------------------- one-stop service and office

def test_service_guide(api):
    r = api.client.post("/api/v1/service/guide", json={"request": "我要开办餐饮店", "kb": "samples"},
                        headers=api.h("reader"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ai_generated"] is True
    assert set(body["fields"]) == {"办理条件", "申请材料", "办理流程", "办理时限", "收费标准", "办理地点", "依据"}
    assert all({"text", "citations", "found"} <= set(f) for f in body["fields"].values())
    assert api.client.post("/api/v1/service/guide", json={"request": "x"}, headers=api.h("reader")).status_code == 422


def test_draft_polish_extract(api):
    r = api.client.post("/api/v1/draft", headers=api.h("reader"), json={
        "doc_type": "通知", "topic": "做好新生儿入户办理工作", "kb": "samples", "issuer": "示范市公安局",
        "recipients": "各区公安分局"})
    assert r.status_code == 200, r.text
    draft = r.json()
    assert {"title", "recipients", "body", "issuer", "date", "citations", "text"} <= set(draft)
    assert draft["ai_generated"] is True and draft["issuer"] == "示范市公安局"
    r = api.client.post("/api/v1/draft", headers=api.h("reader"), json={"doc_type": "小说", "topic": "x", "kb": "samples"})
    assert r.status_code == 422 and "doc_type" in r.json()["detail"]

    r = api.client.post("/api/v1/polish", headers=api.h("reader"), json={"text": "咱们下周一把数据报上来，别拖了。"})
    assert r.status_code == 200 and r.json()["text"] and r.json()["ai_generated"] is True

    text = "一、示范市数据局负责于2025年6月30日前完成公共数据目录编制。\n二、各区政府负责在2025年9月底前完成数据归集。"
    r = api.client.post("/api/v1/extract-actions", headers=api.h("reader"), json={"text": text})
    assert r.status_code == 200 and r.json()["ai_generated"] is True
    rows = r.json()["rows"]
    assert rows and all({"事项", "责任单位", "完成时限"} <= set(row) for row in rows)
    assert api.client.post("/api/v1/extract-actions", headers=api.h("reader"), json={"text": ""}).status_code == 422


# ---------------------------------------------------------------- feedback and audit

def test_feedback_and_export(api):
    answer = api.client.post("/api/v1/ask", json={"question": QUESTION, "kb": "samples"}, headers=api.h("reader")).json()
    r = api.client.post("/api/v1/feedback", headers=api.h("reader"),
                        json={"answer_id": answer["answer_id"], "rating": "down", "comment": "材料清单不全"})
    assert r.status_code == 201 and r.json()["rating"] == "down"
    for bad in ({"answer_id": answer["answer_id"], "rating": "meh"}, {"answer_id": "../x", "rating": "up"},
                {"rating": "up"}):
        assert api.client.post("/api/v1/feedback", headers=api.h("reader"), json=bad).status_code == 422
    assert api.client.get("/api/v1/feedback/export", headers=api.h("reader")).status_code == 403
    r = api.client.get("/api/v1/feedback/export", headers=api.h("admin"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    mine = [x for x in lines if x["answer_id"] == answer["answer_id"]]
    assert mine[0]["rating"] == "down" and mine[0]["comment"] == "材料清单不全"
    assert mine[0]["question"] == QUESTION and mine[0]["kb"] == "samples" and mine[0]["sources"]
    assert mine[0]["principal"] == api.container.api_keys.authenticate(api.keys["reader"]).id   # the rater's key id


def test_audit_records_requests(api):
    answer = api.client.post("/api/v1/ask", json={"question": QUESTION, "kb": "samples"}, headers=api.h("reader")).json()
    api.client.post("/api/v1/ask", json={"question": QUESTION, "kb": "samples"})
    entries = api.container.audit.tail(5)
    ok = next(e for e in entries if e["answer_id"] == answer["answer_id"])
    reader_id = api.container.api_keys.authenticate(api.keys["reader"]).id   # audit names the key id
    assert ok["principal"] == reader_id and ok["operation"] == "ask" and ok["kb"] == "samples"
    assert ok["question"] == QUESTION and ok["outcome"] == "answered" and ok["status"] == 200
    assert ok["sources"] == [c["chunk_id"] for c in answer["citations"]]
    assert ok["model"] == "scripted" and ok["client_ip"] and ok["latency_ms"] > 0
    assert entries[-1]["principal"] == "anonymous" and entries[-1]["outcome"] == "denied"


def test_factory_mounts_the_ui_when_importable(api):
    pytest.importorskip("ui.app")
    from fastapi.testclient import TestClient

    from assistant.api.app import create_app
    app = create_app(api.container)   # with_ui defaults to True, as in `gov-assistant serve`
    client = TestClient(app)
    assert client.get("/ui/", follow_redirects=True).status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}
    assert "/api/v1/ask" in app.openapi()["paths"]
