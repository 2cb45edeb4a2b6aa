"""The OpenAI-compatible backend (`llm.mode=openai`, production's path to `vllm serve`) against a real server on
loopback: the HTTP listener that the in-process llama.cpp engine opens, with its random API key."""
from __future__ import annotations

import httpx
import openai
import pytest

from assistant.components.llm.openai import build
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import load_settings
from conftest import MODELS_DIR, make_container

pytestmark = pytest.mark.e2e

LONG = "请写一篇关于春天的长文章，至少五百字。"


def openai_settings(local, **extra):
    env = {"GOV_ASSISTANT_LLM__MODE": "openai", "GOV_ASSISTANT_LLM__OPENAI__BASE_URL": f"{local.listening_address}/v1",
           "GOV_ASSISTANT_LLM__OPENAI__API_KEY": local.api_key, "GOV_ASSISTANT_MODELS_DIR": str(MODELS_DIR), **extra}
    return load_settings("test", environ=env)


@pytest.fixture(scope="module")
def local(e2e_container):
    llm = e2e_container.llm                                 # shares the session's model: loaded once
    assert llm.listening_address.startswith("http://127.0.0.1:")
    return llm


def test_invoke_honours_max_tokens(local):
    llm = build(openai_settings(local, GOV_ASSISTANT_LLM__MAX_TOKENS="8"))
    out = llm.invoke(LONG)
    assert isinstance(out.content, str) and out.content.strip()
    assert out.usage_metadata["output_tokens"] <= 8
    assert out.response_metadata["finish_reason"] == "length"


def test_stream_returns_text(local):
    llm = build(openai_settings(local, GOV_ASSISTANT_LLM__MAX_TOKENS="12"))
    chunks = list(llm.stream("用一句话介绍示范市政务服务中心。"))
    text = "".join(str(c.content) for c in chunks)
    assert len(chunks) > 2 and text.strip()
    assert sum((c.usage_metadata or {}).get("output_tokens", 0) for c in chunks) <= 12


def test_wrong_key_is_refused(local):
    s = openai_settings(local, GOV_ASSISTANT_LLM__OPENAI__API_KEY="wrong-key")
    with pytest.raises(openai.AuthenticationError):
        build(s).invoke("你好")
    r = httpx.post(f"{local.listening_address}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]},
                   timeout=30)
    assert r.status_code == 401                             # no key at all


def test_server_honours_max_tokens_sent_as_extra_body(local):
    """langchain-openai sends max_completion_tokens; the backend repeats the limit as max_tokens in extra_body
    for llama.cpp-based servers. Both must reach the server and each alone must bound the output."""
    llm = build(openai_settings(local, GOV_ASSISTANT_LLM__MAX_TOKENS="6"))
    assert llm.extra_body == {"max_tokens": 6}
    headers = {"Authorization": f"Bearer {local.api_key}"}
    for limit in ({"max_tokens": 5}, {"max_completion_tokens": 5}):
        r = httpx.post(f"{local.listening_address}/v1/chat/completions", headers=headers, timeout=120,
                       json={"messages": [{"role": "user", "content": LONG}], **limit})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["usage"]["completion_tokens"] <= 5 and body["choices"][0]["finish_reason"] == "length", limit


def test_rag_answer_through_the_openai_backend(e2e_container, local):
    c = make_container(e2e_container.settings.data_dir, profile="test", GOV_ASSISTANT_LLM__MODE="openai",
                       GOV_ASSISTANT_LLM__OPENAI__BASE_URL=f"{local.listening_address}/v1",
                       GOV_ASSISTANT_LLM__OPENAI__API_KEY=local.api_key, GOV_ASSISTANT_LLM__MAX_TOKENS="60")
    answer = c.qa.ask("新生儿落户需要哪些材料？", ["samples"], principal=LOCAL_ADMIN)
    assert answer.model == "openai:Qwen/Qwen2.5-7B-Instruct"
    assert not answer.refused and answer.answer.strip()
    assert 0 < answer.usage.get("output_tokens", 0) <= 60
    assert answer.citations[0].metadata["source"] == "samples/示范市新生儿入户办事指南.txt"
