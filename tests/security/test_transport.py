"""Issue #14, the API transport: what a hostile client can make a real `gov-assistant serve` (uvicorn on 127.0.0.1,
the options serve uses) read, parse, store, hold or log. Each test is one case of the campaign; sizes are small
but prove the guard (a body that claims 1 GB is refused before 50 MB got out of the client).

Limits of the module's server: JSON bodies 1 MiB, an upload 3 MiB in all and 1 MiB per file, one upload at a time,
a body within 1.5 s (+1 s per 64 KiB), headers 16 KiB within 1 s."""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from itertools import chain

import httpx
import pytest

from assistant.api import redact
from tests.api.conftest import make_container, make_keys
from tests.security.transport_fixtures import (
    MiB,
    chunked,
    endless,
    exchange,
    file_part,
    head,
    multipart_head,
    start_server,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LIMITS = {"GOV_ASSISTANT_API__RATE_LIMIT_PER_MINUTE": "0", "GOV_ASSISTANT_API__WARMUP": "false",
          "GOV_ASSISTANT_API__MAX_JSON_MB": "1", "GOV_ASSISTANT_API__MAX_UPLOAD_MB": "1",
          "GOV_ASSISTANT_API__MAX_UPLOAD_REQUEST_MB": "3", "GOV_ASSISTANT_API__MAX_CONCURRENT_UPLOADS": "1",
          "GOV_ASSISTANT_API__BODY_TIMEOUT_S": "1.5", "GOV_ASSISTANT_API__BODY_MIN_KB_PER_S": "64",
          "GOV_ASSISTANT_API__HEADER_TIMEOUT_S": "1", "GOV_ASSISTANT_API__MAX_HEADER_KB": "16"}
UPLOAD = "/api/v1/kbs/samples/documents"
CHAT = "/v1/chat/completions"
ONE_GB = 2**30
PIECE = b"x" * 65536
SLACK = 512 * 1024   # uvicorn hands the app what one socket read brought in: a limit is exceeded by less than this


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    c = make_container(tmp_path_factory.mktemp("transport") / "data", **LIMITS)
    srv = start_server(c)
    srv.keys = make_keys(c)
    yield srv
    srv.stop()


@pytest.fixture
def fresh(live):
    live.counter.body_bytes = 0
    return live


def bearer(live, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {live.keys[who]}"}


def last_audit(live) -> dict:
    return live.container.audit.tail(1)[0]


# ---------------------------------------------------------------- item 1: no key, no body read

def test_unauthenticated_chunked_upload_is_refused_before_its_body(fresh):
    """Was: an 800 MB / 1.5 GB chunked upload without a key was read to the end (to disk), then 401."""
    boundary = "b0undary"
    body = chunked(chain([file_part(boundary, "big.txt")], endless(PIECE, ONE_GB)))
    r = exchange(fresh.port, multipart_head(UPLOAD, boundary), body)
    assert r.status == 401 and "API key" in r.json()["detail"] and r.headers["connection"] == "close"
    assert r.sent < 50 * MiB and fresh.counter.body_bytes == 0
    row = last_audit(fresh)
    assert (row["principal"], row["status"], row["outcome"], row["operation"]) == (
        "anonymous", 401, "denied", "upload_documents")


def test_unauthenticated_json_is_refused_before_it_is_parsed(fresh):
    """Was: a 300 MB JSON to /v1/chat/completions without a key was parsed (RSS +0.7 GB), then 401."""
    r = exchange(fresh.port, head("POST", CHAT, {"Content-Type": "application/json",
                                                 "Content-Length": str(300 * MiB)}),
                 chain([b'{"model": "samples", "messages": ['], endless(PIECE, 300 * MiB)))
    assert r.status == 401 and r.json()["error"]["type"] == "authentication_error"
    assert r.sent < 50 * MiB and fresh.counter.body_bytes == 0
    assert last_audit(fresh)["operation"] == "chat_completions"


def test_every_protected_route_authenticates_before_the_body(fresh):
    with httpx.Client(base_url=fresh.base, timeout=10) as client:
        for method, path in [("POST", "/api/v1/ask"), ("POST", "/api/v1/search"), ("POST", "/api/v1/kbs"),
                             ("POST", "/api/v1/summarize"), ("POST", "/api/v1/summarize/batch"),
                             ("POST", "/api/v1/feedback"), ("POST", "/api/v1/draft"), ("GET", "/api/v1/jobs"),
                             ("POST", CHAT), ("GET", "/v1/models"), ("POST", "/api/v1/no-such-route")]:
            r = client.request(method, path, content=b'{"question": ' + b"[" * 5000)
            assert r.status_code == 401, (path, r.status_code)
        assert fresh.counter.body_bytes == 0
        # public routes stay public
        assert client.get("/healthz").status_code == 200 and client.get("/openapi.json").status_code == 200
        assert client.get("/metrics").status_code == 200 and client.get("/docs").status_code == 200


def test_authenticated_chunked_json_stops_at_the_json_limit(fresh):
    """The limit counts streamed bytes (no Content-Length here); the refusal names the limit and is audited."""
    r = exchange(fresh.port, head("POST", "/api/v1/ask", {**bearer(fresh, "reader"), "Transfer-Encoding": "chunked",
                                                          "Content-Type": "application/json"}),
                 chunked(chain([b'{"question": "'], endless(PIECE, ONE_GB))))
    assert r.status == 413 and "limit is 1 MiB" in r.json()["detail"]
    assert r.sent < 50 * MiB and fresh.counter.body_bytes <= 1 * MiB + SLACK
    row = last_audit(fresh)
    assert (row["principal"], row["status"], row["operation"]) == (fresh.key_id("reader"), 413, "ask")


def test_declared_length_over_the_limit_is_refused_unread(fresh):
    r = exchange(fresh.port, head("POST", CHAT, {**bearer(fresh, "reader"), "Content-Type": "application/json",
                                                 "Content-Length": str(ONE_GB)}), endless(PIECE, ONE_GB))
    assert r.status == 413 and "limit is 1 MiB" in r.json()["error"]["message"]
    assert r.sent < 50 * MiB and fresh.counter.body_bytes == 0


def test_one_file_over_the_file_limit_stops_while_streaming(fresh):
    """A file part is cut at max_upload_mb as it streams, not after it was spooled to disk."""
    boundary = "b0undary"
    body = chunked(chain([file_part(boundary, "大文件.txt")], endless(PIECE, ONE_GB)))
    r = exchange(fresh.port, multipart_head(UPLOAD, boundary, bearer(fresh, "editor")), body)
    assert r.status == 413 and "大文件.txt" in r.json()["detail"] and "limit is 1 MiB per file" in r.json()["detail"]
    assert r.sent < 50 * MiB and fresh.counter.body_bytes <= 1 * MiB + SLACK
    assert last_audit(fresh)["principal"] == fresh.key_id("editor")


def test_an_upload_stops_at_its_total_limit(fresh):
    boundary = "b0undary"
    parts = []
    for i in range(8):   # 8 files of 0.9 MiB: each under the file limit, together over the 3 MiB upload limit
        parts += [file_part(boundary, f"f{i}.txt"), b"y" * (9 * MiB // 10), b"\r\n"]
    r = exchange(fresh.port, multipart_head(UPLOAD, boundary, bearer(fresh, "editor")), chunked(parts))
    assert r.status == 413 and "limit is 3 MiB" in r.json()["detail"]
    assert fresh.counter.body_bytes <= 3 * MiB + SLACK


# ---------------------------------------------------------------- item 10: authentication first

def test_a_malformed_body_with_a_valid_key_is_audited_as_that_key(fresh):
    """Was: validation ran before authentication, so the 422 was audited as `anonymous`."""
    r = httpx.post(fresh.base + "/api/v1/ask", content=b'{"question": ', timeout=10,
                   headers={**bearer(fresh, "reader"), "Content-Type": "application/json"})
    assert r.status_code == 422 and "malformed JSON" in r.json()["detail"]
    row = last_audit(fresh)
    assert (row["principal"], row["status"], row["outcome"]) == (fresh.key_id("reader"), 422, "rejected")


def test_no_key_gets_401_before_any_validation_detail(fresh):
    """Was: an unauthenticated client saw the 422 validation details of its body."""
    for body in (b'{"question": ', b'{"question": "x", "kb": "samples", "colour": "red"}', b"[1, 2]"):
        r = httpx.post(fresh.base + "/api/v1/ask", content=body, timeout=10,
                       headers={"Content-Type": "application/json"})
        assert r.status_code == 401 and set(r.json()) == {"detail"} and "colour" not in r.text
    r = httpx.post(fresh.base + CHAT, json={"model": "samples", "messages": []}, timeout=10,
                   headers={"Authorization": "Bearer gak_wrong"})
    assert r.status_code == 401 and "messages" not in r.text
