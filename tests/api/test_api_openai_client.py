"""The real server (uvicorn on 127.0.0.1, a free port, in a thread) driven by the official `openai` client and by
LangChain's ChatOpenAI, streaming included. Unit profile: the scripted LLM answers instantly."""
from __future__ import annotations

import socket
import threading
import time

import openai
import pytest
import uvicorn

from assistant.api.app import create_app
from tests.api.conftest import SECRET_MARKERS, build_knowledge_bases, make_container, make_keys

QUESTION = "新生儿落户需要哪些材料？"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    c = make_container(tmp_path_factory.mktemp("server") / "data", GOV_ASSISTANT_API__RATE_LIMIT_PER_MINUTE="0")
    build_knowledge_bases(c)
    keys = make_keys(c)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(c, with_ui=False), host="127.0.0.1", port=port,
                                        log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", keys
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def client(server):
    base, keys = server
    return openai.OpenAI(base_url=f"{base}/v1", api_key=keys["reader"], max_retries=0, timeout=30)


def test_models_list(client):
    assert [m.id for m in client.models.list()] == ["samples", "llm"]
    assert client.models.retrieve("samples").id == "samples"


def test_chat_completion_with_sources(client):
    resp = client.chat.completions.create(model="samples", messages=[{"role": "user", "content": QUESTION}])
    assert resp.object == "chat.completion" and resp.choices[0].finish_reason == "stop"
    assert "[1]" in resp.choices[0].message.content
    extra = resp.to_dict()
    assert extra["ai_generated"] is True and extra["sources"][0]["kb"] == "samples" and extra["answer_id"]
    raw = client.chat.completions.with_raw_response.create(
        model="samples", messages=[{"role": "user", "content": QUESTION}], extra_body={"filters": {"doc_type": "办事指南"}})
    assert raw.headers["x-ai-generated"] == "true"
    assert all(s["metadata"]["doc_type"] == "办事指南" for s in raw.parse().to_dict()["sources"])


def test_chat_completion_streaming(client):
    stream = client.chat.completions.create(model="samples", messages=[{"role": "user", "content": QUESTION}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert "[1]" in text and text.startswith("根据资料")
    final = [ch for ch in chunks if ch.choices and ch.choices[0].finish_reason == "stop"]
    assert len(final) == 1
    assert final[0].to_dict()["sources"] and final[0].to_dict()["ai_generated"] is True
    assert chunks[-1].usage is not None and chunks[-1].choices == []


def test_plain_model_streaming(client):
    chunks = list(client.chat.completions.create(model="llm", messages=[{"role": "user", "content": "你好"}],
                                                 stream=True, max_tokens=16))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)


def test_client_errors_are_openai_exceptions(server, client):
    base, _ = server
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(model="secret", messages=[{"role": "user", "content": "星河计划经费"}])
    assert not any(m in str(denied.value) for m in SECRET_MARKERS)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="secret", stream=True, messages=[{"role": "user", "content": "x"}])
    bad = openai.OpenAI(base_url=f"{base}/v1", api_key="gak_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="samples", messages=[{"role": "assistant", "content": "x"}])


def test_langchain_chat_openai(server):
    from langchain_openai import ChatOpenAI

    base, keys = server
    llm = ChatOpenAI(base_url=f"{base}/v1", api_key=keys["reader"], model="samples", max_retries=0, timeout=30)
    answer = llm.invoke(QUESTION)
    assert "[1]" in answer.content
    streamed = "".join(str(chunk.content) for chunk in llm.stream(QUESTION))
    assert streamed.strip() == answer.content.strip()
    plain = ChatOpenAI(base_url=f"{base}/v1", api_key=keys["reader"], model="llm", max_retries=0)
    assert plain.invoke([("system", "你是助手"), ("human", "你好")]).content
