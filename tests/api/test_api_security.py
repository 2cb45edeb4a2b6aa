"""Security: per-knowledge-base ACL through every route, authentication and roles, keys hashed at rest, the audit
log without secrets and append-only, rate limiting, upload names, CORS, the demo admin key from the environment."""
from __future__ import annotations

import hashlib
import sqlite3

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.services.rate_limit import RateLimited, RateLimiter
from assistant.services.uploads import UploadRejected, safe_filename
from tests.api.conftest import SECRET_MARKERS, SECRET_QUESTION, make_container

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _clean(r) -> None:
    """No byte of knowledge base `secret` in a response."""
    for marker in SECRET_MARKERS:
        assert marker not in r.text, (r.request.url, r.text[:300])


# ---------------------------------------------------------------- per-KB ACL, every route

def test_control_admin_does_retrieve_the_secret(api):
    """Without this, the ACL test below could pass because the question simply finds nothing."""
    hits = api.client.post("/api/v1/search", json={"query": SECRET_QUESTION, "kb": "secret"},
                           headers=api.h("admin")).json()["hits"]
    assert hits and hits[0]["doc_id"] == "xinghe"
    answer = api.client.post("/api/v1/ask", json={"question": SECRET_QUESTION, "kb": "secret"},
                             headers=api.h("admin")).json()
    assert not answer["refused"] and any(m in answer["answer"] for m in SECRET_MARKERS)
    chat = api.client.post("/v1/chat/completions", headers=api.h("admin"),
                           json={"model": "secret", "messages": [{"role": "user", "content": SECRET_QUESTION}]}).json()
    assert chat["sources"][0]["doc_id"] == "xinghe"


def test_reader_of_a_gets_nothing_of_b_through_any_route(api):
    c, h = api.client, api.h("reader")
    q = SECRET_QUESTION
    user = [{"role": "user", "content": q}]
    denied = [
        c.post("/api/v1/ask", json={"question": q, "kb": "secret"}, headers=h),
        c.post("/api/v1/ask", json={"question": q, "kbs": ["samples", "secret"]}, headers=h),
        c.post("/api/v1/search", json={"query": q, "kb": "secret"}, headers=h),
        c.post("/api/v1/search", json={"query": q, "kbs": ["samples", "secret"]}, headers=h),
        c.post("/v1/chat/completions", json={"model": "secret", "messages": user}, headers=h),
        c.post("/v1/chat/completions", json={"model": "secret", "messages": user, "stream": True}, headers=h),
        c.get("/api/v1/kbs/secret", headers=h),
        c.get("/api/v1/kbs/secret/documents", headers=h),
        c.get("/api/v1/kbs/secret/documents/xinghe?chunks=true", headers=h),
        c.post("/api/v1/kbs/secret/documents/xinghe/reindex", headers=h),
        c.post("/api/v1/kbs/secret/reindex", headers=h),
        c.get("/api/v1/kbs/secret/check", headers=h),
        c.post("/api/v1/kbs/secret/repair", headers=h),
        c.delete("/api/v1/kbs/secret/documents/xinghe", headers=h),
        c.delete("/api/v1/kbs/secret", headers=h),
        c.post("/api/v1/service/guide", json={"request": q, "kb": "secret"}, headers=h),
        c.post("/api/v1/draft", json={"doc_type": "通知", "topic": q, "kb": "secret"}, headers=h),
        c.post("/api/v1/draft", json={"doc_type": "通知", "topic": q, "kbs": ["samples", "secret"]}, headers=h),
    ]
    for r in denied:
        assert r.status_code in (403, 404), (r.request.url, r.status_code, r.text)
        _clean(r)
    allowed = [   # the same questions over the reader's own knowledge base: answers, but nothing from `secret`
        c.post("/api/v1/ask", json={"question": q, "kb": "samples"}, headers=h),
        c.post("/api/v1/ask", json={"question": q, "kb": "samples", "filters": {"doc_ids": ["xinghe"]}}, headers=h),
        c.post("/api/v1/search", json={"query": q, "kb": "samples", "top_k": 50, "mode": "bm25"}, headers=h),
        c.post("/api/v1/search", json={"query": q, "kb": "samples", "top_k": 50, "mode": "dense"}, headers=h),
        c.post("/v1/chat/completions", json={"model": "samples", "messages": user}, headers=h),
        c.post("/v1/chat/completions", json={"model": "samples", "messages": user, "stream": True}, headers=h),
        c.post("/v1/chat/completions", json={"model": "llm", "messages": user}, headers=h),
        c.get("/v1/models", headers=h),
        c.get("/api/v1/kbs", headers=h),
        c.get("/api/v1/kbs/samples/documents", headers=h),
        c.post("/api/v1/service/guide", json={"request": "星河计划经费申请", "kb": "samples"}, headers=h),
        c.post("/api/v1/draft", json={"doc_type": "通知", "topic": "星河计划经费拨付", "kb": "samples"}, headers=h),
        c.get("/api/v1/jobs", headers=h),
    ]
    for r in allowed:
        assert r.status_code == 200, (r.request.url, r.status_code, r.text)
        _clean(r)
    # naming B's document while reading A: refused or empty, never B's text
    r = c.post("/api/v1/draft", json={"doc_type": "通知", "topic": "星河计划经费拨付", "kb": "samples",
                                      "doc_ids": ["xinghe"]}, headers=h)
    assert r.status_code in (200, 422)
    _clean(r)
    assert api.client.get("/v1/models/secret", headers=h).status_code == 404


def test_key_without_kbs_reads_nothing(api):
    h = api.h("outsider")
    assert [m["id"] for m in api.client.get("/v1/models", headers=h).json()["data"]] == ["llm"]
    assert api.client.get("/api/v1/kbs", headers=h).json() == []
    assert api.client.post("/api/v1/ask", json={"question": "新生儿入户", "kb": "samples"}, headers=h).status_code == 403


# ---------------------------------------------------------------- authentication and roles

def test_authentication(api):
    c = api.client
    r = c.get("/api/v1/kbs")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert c.get("/api/v1/kbs", headers={"Authorization": "Bearer gak_not_a_key"}).status_code == 401
    assert c.get("/api/v1/kbs", headers={"Authorization": f"Basic {api.keys['admin']}"}).status_code == 401
    assert c.get("/api/v1/kbs", headers={"X-API-Key": api.keys["reader"]}).status_code == 200
    secret, rec = api.container.api_keys.create("temp", "reader", ["samples"])
    assert c.get("/api/v1/kbs", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    api.container.api_keys.revoke(rec["id"])
    assert c.get("/api/v1/kbs", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_roles(api):
    c = api.client
    assert c.post("/api/v1/kbs", json={"name": "samples2"}, headers=api.h("reader")).status_code == 403
    assert c.delete("/api/v1/kbs/samples", headers=api.h("editor")).status_code == 403
    assert c.get("/api/v1/feedback/export", headers=api.h("editor")).status_code == 403
    assert c.delete("/api/v1/kbs/secret/documents/xinghe", headers=api.h("editor")).status_code == 403


def test_keys_are_hashed_at_rest(api):
    raw = (api.container.settings.data_dir / "api_keys.sqlite3").read_bytes()
    for secret in api.keys.values():
        assert secret.encode() not in raw
    rows = sqlite3.connect(api.container.settings.data_dir / "api_keys.sqlite3").execute(
        "SELECT key_hash FROM api_keys").fetchall()
    assert hashlib.sha256(api.keys["admin"].encode()).hexdigest() in {r[0] for r in rows}


# ---------------------------------------------------------------- audit

def test_audit_holds_no_secrets_and_is_append_only(api):
    api.client.get("/api/v1/kbs", headers={"Authorization": "Bearer gak_wrong_secret_for_audit_test"})
    api.client.post("/api/v1/ask?api_key=gak_query_string_secret", json={"question": "新生儿入户", "kb": "samples"},
                    headers=api.h("reader"))
    data_dir = api.container.settings.data_dir
    raw = b"".join(p.read_bytes() for p in data_dir.glob("audit.sqlite3*"))
    for secret in [*api.keys.values(), "gak_wrong_secret_for_audit_test", "gak_query_string_secret"]:
        assert secret.encode() not in raw
    assert b"Bearer" not in raw
    db = sqlite3.connect(data_dir / "audit.sqlite3", isolation_level=None)   # any other SQLite client
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit SET principal='x'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit")
    finally:
        db.close()


def test_denied_requests_are_audited(api):
    api.client.post("/api/v1/ask", json={"question": SECRET_QUESTION, "kb": "secret"}, headers=api.h("reader"))
    last = api.container.audit.tail(1)[0]
    reader_id = api.container.api_keys.authenticate(api.keys["reader"]).id   # audit names the key id
    assert last["principal"] == reader_id and last["outcome"] == "denied" and last["status"] == 403
    assert last["kb"] == "secret" and last["sources"] == []


# ---------------------------------------------------------------- rate limit, CORS, bootstrap key

def test_rate_limit_per_key(tmp_path):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_API__RATE_LIMIT_PER_MINUTE="3")
    a, _ = c.api_keys.create("a", "reader", ["*"])
    b, _ = c.api_keys.create("b", "reader", ["*"])
    client = TestClient(create_app(c, with_ui=False))
    codes = [client.get("/api/v1/kbs", headers={"X-API-Key": a}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = client.get("/api/v1/kbs", headers={"X-API-Key": a})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "rate limit" in r.json()["detail"]
    assert client.get("/api/v1/kbs", headers={"X-API-Key": b}).status_code == 200
    assert client.get("/healthz").status_code == 200   # probes are not limited


def test_token_bucket_refills():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])   # one token per second, bursts of 60
    for _ in range(60):
        limiter.check("k")
    with pytest.raises(RateLimited) as exc:
        limiter.check("k")
    assert 0 < exc.value.retry_after_s <= 1
    now[0] += 1.0
    limiter.check("k")
    RateLimiter(0).check("k")   # 0 = off


def test_cors_only_for_configured_origins(tmp_path):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_API__CORS_ORIGINS='["https://oa.example.gov.cn"]')
    client = TestClient(create_app(c, with_ui=False))
    pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    r = client.options("/api/v1/ask", headers={"Origin": "https://oa.example.gov.cn", **pre})
    assert r.headers["access-control-allow-origin"] == "https://oa.example.gov.cn"
    r = client.options("/api/v1/ask", headers={"Origin": "https://evil.example.com", **pre})
    assert "access-control-allow-origin" not in r.headers


def test_admin_key_from_environment(tmp_path, monkeypatch):
    c = make_container(tmp_path / "data")
    monkeypatch.setenv("GOV_ASSISTANT_ADMIN_KEY", "demo-admin-secret-0001")
    client = TestClient(create_app(c, with_ui=False))
    assert client.get("/api/v1/kbs", headers={"X-API-Key": "demo-admin-secret-0001"}).status_code == 200
    monkeypatch.setenv("GOV_ASSISTANT_ADMIN_KEY", "demo-admin-secret-0002")
    create_app(c, with_ui=False)   # a changed variable replaces the seeded key
    assert client.get("/api/v1/kbs", headers={"X-API-Key": "demo-admin-secret-0001"}).status_code == 401
    assert client.get("/api/v1/kbs", headers={"X-API-Key": "demo-admin-secret-0002"}).status_code == 200
    assert [k["name"] for k in c.api_keys.list()] == ["env-admin"]
    c.api_keys.revoke("env-admin")
    with pytest.raises(ValueError, match="revoked"):   # a revoked secret is never resurrected
        create_app(c, with_ui=False)
    monkeypatch.setenv("GOV_ASSISTANT_ADMIN_KEY", "short")
    with pytest.raises(ValueError, match="16 characters"):
        create_app(c, with_ui=False)


# ---------------------------------------------------------------- upload names

@pytest.mark.parametrize("raw, safe", [
    ("通知.txt", "通知.txt"), ("../../etc/passwd.txt", "passwd.txt"), ("C:\\Users\\x\\文件.DOCX", "文件.docx"),
    ("..\\..\\a.md", "a.md"), ("  .hidden.md", "hidden.md"), ("a\x00b.txt", "ab.txt"), ('x<>:"|?*.pdf', "x.pdf"),
    ("长" * 200 + ".txt", "长" * 58 + ".txt"),
])
def test_safe_filename(raw, safe):
    assert safe_filename(raw) == safe


@pytest.mark.parametrize("raw, status", [("", 400), ("..", 400), ("/", 400), ("a.exe", 415), ("noext", 415),
                                         ("a.txt.sh", 415)])
def test_unsafe_filenames_rejected(raw, status):
    with pytest.raises(UploadRejected) as exc:
        safe_filename(raw)
    assert exc.value.status == status
