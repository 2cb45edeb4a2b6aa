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
from assistant.api.body_guard import BodyGuardMiddleware
from tests.api.conftest import build_knowledge_bases, make_container, make_keys
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
    build_knowledge_bases(c)
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


def body_guard(live) -> BodyGuardMiddleware:
    node = live.counter.app.middleware_stack   # built by the first request
    while not isinstance(node, BodyGuardMiddleware):
        node = node.app
    return node


def wait_for(condition, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


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


def test_a_mounted_app_gets_the_upload_limits(fresh):
    """The UI under /ui is public (its own login) and Gradio takes uploads there: a file is cut at max_upload_mb as
    it streams, as on the API (a stand-in app mounted like the UI, so this does not depend on the UI package)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def upload(request):
        form = await request.form()
        return JSONResponse({"files": len(form.getlist("files"))})

    if not any(getattr(r, "path", None) == "/mounted" for r in fresh.counter.app.router.routes):
        fresh.counter.app.mount("/mounted", Starlette(routes=[Route("/upload", upload, methods=["POST"])]))
    boundary = "b0undary"
    r = exchange(fresh.port, multipart_head("/mounted/upload", boundary),
                 chunked(chain([file_part(boundary, "ui.txt")], endless(PIECE, ONE_GB))))
    assert r.status == 413 and b"limit is 1 MiB per file" in r.body and r.sent < 50 * MiB
    r = exchange(fresh.port, multipart_head("/mounted/upload", boundary),
                 chunked([file_part(boundary, "ok.txt"), b"small", b"\r\n--b0undary--\r\n"]))
    assert r.status == 200 and r.json() == {"files": 1}


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


# ---------------------------------------------------------------- item 9: malformed and oversized input → 422

def test_deeply_nested_json_is_422_with_a_message(fresh):
    """Was: 400 "There was an error parsing the body" (the parser's RecursionError)."""
    h = {**bearer(fresh, "reader"), "Content-Type": "application/json"}
    for path, body in [("/api/v1/ask", b"[" * 100_000), ("/api/v1/ask", b'{"question": ' + b"[" * 5000 + b"]" * 5000
                                                                   + b', "kb": "samples"}'), (CHAT, b'{"model": "llm", "messages": ' + b"[" * 100_000)]:
        r = httpx.post(fresh.base + path, content=body, headers=h, timeout=10)
        assert r.status_code == 422 and "nested too deeply" in r.text, (path, r.text)


def test_non_utf8_json_is_422_with_a_message(fresh):
    r = httpx.post(fresh.base + "/api/v1/ask", content='{"question": "新生儿落户", "kb": "samples"}'.encode("gbk"),
                   headers={**bearer(fresh, "reader"), "Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 422 and "not UTF-8" in r.json()["detail"]


def test_filter_lists_and_values_are_bounded(fresh):
    """Was: filters.doc_ids with 100,000 items → 500 (Chroma: too many SQL variables)."""
    h = bearer(fresh, "reader")
    many = [f"doc{i}" for i in range(100_000)]   # ~1 MB of JSON: under the body limit, over the list bound
    big = {"max_json_mb": 1}
    assert len(json.dumps(many)) < big["max_json_mb"] * MiB + 200_000
    for path, field in [("/api/v1/ask", "question"), ("/api/v1/search", "query")]:
        r = httpx.post(fresh.base + path, headers=h, timeout=20,
                       json={field: "新生儿落户", "kb": "samples", "filters": {"doc_ids": many[:30_000]}})
        assert r.status_code == 422 and "filters.doc_ids" in r.json()["detail"] and "at most 100" in r.text
        r = httpx.post(fresh.base + path, headers=h, timeout=20,
                       json={field: "新生儿落户", "kb": "samples", "filters": {"agency": "局" * 5000}})
        assert r.status_code == 422 and "filters.agency" in r.json()["detail"]
        r = httpx.post(fresh.base + path, headers=h, timeout=20,
                       json={field: "新生儿落户", "kb": "samples", "filters": {"doc_ids": many[:100]}})
        assert r.status_code == 200, r.text   # the bound itself is served
    r = httpx.post(fresh.base + "/api/v1/ask", headers=h, timeout=20, json={"question": "问" * 2001, "kb": "samples"})
    assert r.status_code == 422 and "question" in r.json()["detail"]
    # the OpenAI-compatible route takes the same filters (extra_body): the same bounds
    r = httpx.post(fresh.base + "/v1/chat/completions", headers=h, timeout=20, json={
        "model": "samples", "messages": [{"role": "user", "content": "新生儿落户"}],
        "filters": {"doc_ids": many[:30_000]}})
    assert r.status_code == 422 and "doc_ids" in r.text


def test_a_10_mb_string_in_one_field_is_413_unparsed(fresh):
    body = json.dumps({"question": "问" * (10 * MiB // 3), "kb": "samples"}, ensure_ascii=False).encode()
    r = exchange(fresh.port, head("POST", "/api/v1/ask", {**bearer(fresh, "reader"), "Content-Type": "application/json",
                                                          "Transfer-Encoding": "chunked"}),
                 chunked(body[i:i + 65536] for i in range(0, len(body), 65536)))
    assert r.status == 413 and fresh.counter.body_bytes <= 1 * MiB + SLACK


# ---------------------------------------------------------------- item 13: keys never in URLs or logs

def test_a_key_in_the_query_string_never_authenticates(fresh):
    key = fresh.keys["admin"]
    for name in ("api_key", "key", "token", "access_token", "apikey"):
        r = httpx.get(f"{fresh.base}/api/v1/kbs?{name}={key}", timeout=10)
        assert r.status_code == 401, name
    assert httpx.get(f"{fresh.base}/api/v1/kbs", headers=bearer(fresh, "admin"), timeout=10).status_code == 200


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter("%(name)s %(message)s").format(record))


def test_no_secret_reaches_a_log_line(fresh):
    """Was: uvicorn's access log wrote `?api_key=` values in clear."""
    loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error", "assistant")]
    capture, levels = Capture(), [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(capture)
        lg.setLevel(logging.INFO)
    secrets = [fresh.keys["admin"], "gak_secret_from_the_campaign_000", "s3cr3t-token-value"]
    try:
        httpx.get(f"{fresh.base}/api/v1/kbs?api_key={secrets[0]}", timeout=10)
        httpx.get(f"{fresh.base}/v1/models?key={secrets[1]}&x=1", timeout=10)
        httpx.get(f"{fresh.base}/api/v1/kbs?token={secrets[2]}", headers=bearer(fresh, "admin"), timeout=10)
        log = logging.getLogger("assistant.api")
        log.warning("client sent Authorization: Bearer %s and X-API-Key: %s", secrets[1], secrets[2])
        try:
            raise ValueError(f"rejected key {secrets[0]}")
        except ValueError:
            log.exception("while checking %s", f"api_key={secrets[2]}")
        deadline = time.monotonic() + 5
        while sum("/api/v1/kbs" in line for line in capture.lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)   # uvicorn writes the access line after the response
    finally:
        for lg, level in zip(loggers, levels):
            lg.removeHandler(capture)
            lg.setLevel(level)
    text = "\n".join(capture.lines)
    assert "api_key=***" in text and "GET /v1/models?key=***" in text and "Bearer ***" in text, text
    for secret in secrets:
        assert secret not in text
    # uvicorn's own handlers carry the filter too (if anything replaces the record factory)
    for name in ("uvicorn", "uvicorn.access"):
        handlers = [h for h in logging.getLogger(name).handlers if type(h) is logging.StreamHandler]   # not pytest's
        assert handlers and all(any(isinstance(f, redact.RedactSecrets) for f in h.filters) for h in handlers), [
            (h, h.filters) for h in handlers]


@pytest.mark.parametrize("raw, clean", [
    ("GET /api/v1/kbs?api_key=gak_AbC-12_x&kb=1 HTTP/1.1", "GET /api/v1/kbs?api_key=***&kb=1 HTTP/1.1"),
    ("key=abc&token=def&monkey=banana", "key=***&token=***&monkey=banana"),
    ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
    ("authorization: basic dXNlcjpwYXNz", "authorization: basic ***"),
    ('{"X-API-Key": "plain-secret"}', '{"X-API-Key": "***"}'),
    ("seeded gak_0123456789abcdef for env-admin", "seeded gak_*** for env-admin"),
    ("/x?access_token=t0k%3Dn&password=hunter2", "/x?access_token=***&password=***"),
])
def test_redaction_patterns(raw, clean):
    assert redact.redact(raw) == clean


# ---------------------------------------------------------------- new cases: slow and lying clients

def test_slowloris_body_is_cut_off(fresh):
    """Tried: a body that trickles one byte every 0.2 s. Found: nothing bounded the time a body could take.
    Fixed: 408 once the body falls behind body_timeout_s + 1 s per body_min_kb_per_s KiB; audited."""
    r = exchange(fresh.port, head("POST", "/api/v1/ask", {**bearer(fresh, "reader"), "Content-Type": "application/json",
                                                          "Content-Length": "10000"}),
                 endless(b" ", 10000), pause_s=0.2, timeout=10)
    assert r.status == 408 and r.headers["connection"] == "close" and r.seconds < 5
    row = last_audit(fresh)
    assert (row["principal"], row["status"], row["outcome"]) == (fresh.key_id("reader"), 408, "rejected")


def test_content_length_larger_than_the_body_times_out(fresh):
    r = exchange(fresh.port, head("POST", "/api/v1/ask", {**bearer(fresh, "reader"), "Content-Type": "application/json",
                                                          "Content-Length": "1000"}), [b'{"question": "x"'], timeout=10)
    assert r.status == 408 and r.seconds < 5


def test_content_length_smaller_than_the_body_smuggles_nothing(fresh):
    """Held: the server reads the declared bytes; what follows is parsed as a new request, which carries no key of
    its own and gets 401 (the first request's key does not carry over)."""
    with socket.create_connection(("127.0.0.1", fresh.port), timeout=5) as sock:
        sock.sendall(head("POST", "/api/v1/ask", {**bearer(fresh, "admin"), "Content-Type": "application/json",
                                                  "Content-Length": "2"})
                     + b'{}GET /api/v1/kbs HTTP/1.1\r\nHost: x\r\n\r\n')
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"HTTP/1.1 ") < 2 and time.monotonic() < deadline:
            data += sock.recv(65536)
    first, second = data.split(b"HTTP/1.1 ")[1:3]
    assert first.startswith(b"422") and second.startswith(b"401")


def test_content_length_with_chunked_is_refused(fresh):
    r = exchange(fresh.port, head("POST", "/api/v1/ask", {**bearer(fresh, "reader"), "Content-Length": "5",
                                                          "Transfer-Encoding": "chunked"}), [b"2\r\n{}\r\n0\r\n\r\n"])
    assert r.status == 400 and fresh.counter.body_bytes == 0


def test_expect_100_continue_without_a_key_never_invites_the_body(fresh):
    with socket.create_connection(("127.0.0.1", fresh.port), timeout=5) as sock:
        sock.sendall(head("POST", UPLOAD, {"Content-Length": str(ONE_GB), "Expect": "100-continue",
                                           "Content-Type": "multipart/form-data; boundary=x"}))
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 401") and b"100 Continue" not in reply


def test_huge_headers_are_refused_with_431(fresh):
    """Tried: a 1 MiB header, and 5,000 small ones. Found: uvicorn's httptools parser buffered them all (20 MB
    took). Fixed: 431 past max_header_kb, counted as the bytes arrive."""
    for extra in ({"X-Big": "a" * MiB}, {f"X-H{i}": "v" for i in range(5000)}):
        r = exchange(fresh.port, head("GET", "/healthz", extra), timeout=10)
        assert r.status == 431, r.status
    assert httpx.get(fresh.base + "/healthz", headers={"X-Ok": "a" * 8000}, timeout=10).status_code == 200


def test_slow_headers_and_idle_connections_are_closed(fresh):
    """Tried: a connection that sends nothing, and one that trickles its headers. Found: both were held forever
    (uvicorn's keep-alive timeout starts only after a first response). Fixed: header_timeout_s."""
    with socket.create_connection(("127.0.0.1", fresh.port), timeout=6) as idle, \
            socket.create_connection(("127.0.0.1", fresh.port), timeout=6) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        start = time.monotonic()
        assert idle.recv(100) == b"" and time.monotonic() - start < 4
        assert slow.recv(200).startswith(b"HTTP/1.1 408") and time.monotonic() - start < 4
    # a keep-alive connection serves its next request as usual
    with httpx.Client(base_url=fresh.base, timeout=10) as client:
        assert [client.get("/healthz").status_code for _ in range(3)] == [200, 200, 200]


class EndlessChat:
    """The plain model, streaming forever; counts what it produced and whether it was closed."""

    def __init__(self):
        self.tokens, self.closed = 0, threading.Event()

    def stream(self, messages, max_tokens=None):
        def events():
            try:
                while True:
                    self.tokens += 1
                    yield {"type": "token", "text": "字" * 50}
            finally:
                self.closed.set()
        return events()


def test_an_sse_client_that_never_reads_holds_no_memory_and_frees_the_model(fresh, monkeypatch):
    """Tried: a streaming chat completion whose client never reads, then goes away. Held: TCP back-pressure stops
    the generator once the socket buffers are full. Found: after the disconnect the generator stayed suspended
    until a garbage collection (the model slot with it). Fixed: the stream is closed when the response ends."""
    chat = EndlessChat()
    monkeypatch.setattr(fresh.container, "plain_chat", chat, raising=False)
    body = json.dumps({"model": "llm", "stream": True, "messages": [{"role": "user", "content": "你好"}]}).encode()
    sock = socket.create_connection(("127.0.0.1", fresh.port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.sendall(head("POST", CHAT, {**bearer(fresh, "reader"), "Content-Type": "application/json",
                                     "Content-Length": str(len(body))}) + body)
    assert sock.recv(200).startswith(b"HTTP/1.1 200")
    last, deadline = -1, time.monotonic() + 15
    while chat.tokens != last and time.monotonic() < deadline:   # until it stops (the socket buffers are full)
        last = chat.tokens
        time.sleep(0.5)
    assert chat.tokens == last and last * 150 < 32 * MiB   # stopped, at a few MiB: nothing piles up in memory
    sock.close()
    assert chat.closed.wait(5)


def test_concurrent_uploads_are_bounded(fresh):
    """Tried: parallel uploads (each spools up to max_upload_request_mb to disk). Found: no bound. Fixed: at most
    max_concurrent_uploads in flight; more get 503 with Retry-After; the slot frees when the upload ends."""
    boundary = "b0undary"
    holder = socket.create_connection(("127.0.0.1", fresh.port), timeout=10)
    holder.sendall(multipart_head(UPLOAD, boundary, bearer(fresh, "editor")))
    holder.sendall(b"%x\r\n%s\r\n" % (len(file_part(boundary, "a.txt")), file_part(boundary, "a.txt")))
    guard = body_guard(fresh)
    assert wait_for(lambda: guard.uploads_in_flight == 1)   # the upload is in flight (its body not finished)
    r = exchange(fresh.port, multipart_head(UPLOAD, boundary, bearer(fresh, "editor")), chunked([b"--b0undary--\r\n"]))
    assert r.status == 503 and r.headers["retry-after"] == "5" and "uploads are in progress" in r.json()["detail"]
    holder.close()
    assert wait_for(lambda: guard.uploads_in_flight == 0)
    r = exchange(fresh.port, multipart_head(UPLOAD, boundary, bearer(fresh, "editor")),
                 chunked([file_part(boundary, "b.txt"), "示范市测试文件，内容足够长。".encode(), b"\r\n--b0undary--\r\n"]))
    assert r.status == 202, r.body


@pytest.fixture
def crowded(tmp_path):
    """A server taking at most 4 connections and 2 requests a minute per key."""
    c = make_container(tmp_path / "data", **{**LIMITS, "GOV_ASSISTANT_API__MAX_CONNECTIONS": "4",
                                             "GOV_ASSISTANT_API__RATE_LIMIT_PER_MINUTE": "2"})
    srv = start_server(c)
    srv.keys = make_keys(c)
    yield srv
    srv.stop()


def test_a_connection_flood_gets_503(crowded):
    socks = [socket.create_connection(("127.0.0.1", crowded.port), timeout=5) for _ in range(4)]
    try:
        r = exchange(crowded.port, head("GET", "/healthz"))
        assert r.status == 503
    finally:
        for s in socks:
            s.close()
    time.sleep(0.2)
    assert httpx.get(crowded.base + "/healthz", timeout=10).status_code == 200


def test_a_rate_limited_key_is_refused_before_its_body(crowded):
    h = {"Authorization": f"Bearer {crowded.keys['reader']}"}
    for _ in range(2):
        httpx.get(crowded.base + "/api/v1/kbs", headers=h, timeout=10)
    crowded.counter.body_bytes = 0
    r = exchange(crowded.port, head("POST", "/api/v1/ask", {**h, "Content-Length": str(ONE_GB),
                                                            "Content-Type": "application/json"}),
                 endless(PIECE, 100 * MiB))
    assert r.status == 429 and int(r.headers["retry-after"]) >= 1 and crowded.counter.body_bytes == 0
    row = crowded.container.audit.tail(1)[0]
    assert (row["principal"], row["outcome"]) == (crowded.key_id("reader"), "rate_limited")


def test_serve_runs_uvicorn_with_these_guards(tmp_path, monkeypatch):
    """The live server above runs uvicorn_options; `gov-assistant serve` must pass the same ones."""
    from typer.testing import CliRunner

    from assistant.api.server import HeaderGuard
    from assistant.cli.main import app

    seen = {}
    monkeypatch.setenv("GOV_ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, **kw: seen.update(kw))
    assert CliRunner().invoke(app, ["-p", "unit", "serve", "--no-ui"], catch_exceptions=False).exit_code == 0
    assert issubclass(seen["http"], HeaderGuard) and seen["http"].max_header_bytes == 32 * 1024
    assert seen["http"].header_timeout_s == 10 and seen["limit_concurrency"] == 200
    config = seen["log_config"]
    assert all(h["filters"] == ["redact"] for h in config["handlers"].values())
    assert config["loggers"]["assistant"]["handlers"] == ["default"]


def test_saved_upload_names_drop_bidi_and_zero_width_characters():
    """Campaign (ingest): the stored name was cleaned, but the saved file and the job's file list kept
    "报告\u202etxt.exe.md" (shown reversed as 报告dm.exe.txt)."""
    from assistant.services.uploads import safe_filename
    assert safe_filename("报告\u202etxt.exe.md") == "报告txt.exe.md"
    assert safe_filename("zero\u200bwidth.txt") == "zerowidth.txt" and safe_filename("a\u2028b.md") == "ab.md"
