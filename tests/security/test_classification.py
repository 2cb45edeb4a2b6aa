"""数据分类分级 (issue #17 item 4): a document above a principal's clearance is never retrieved, answered from,
listed, shown or opened — on every route, the same fail-closed path as the per-KB ACL (tests/api/test_api_security.py
tests that one the same way). A level change is in force at the next request and audited."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.filters import Filters, NoClearance
from assistant.services.access import LOCAL_ADMIN, Principal, scope
from tests.api.conftest import SECRET_MARKERS, SECRET_QUESTION, make_container, secret_document

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Env:
    def __init__(self, c, client, keys):
        self.c, self.client, self.keys = c, client, keys

    def h(self, who: str) -> dict:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from assistant.demo import sample_documents
    c = make_container(tmp_path_factory.mktemp("cls") / "data", GOV_ASSISTANT_API__RATE_LIMIT_PER_MINUTE="0")
    secret = secret_document()
    secret.metadata["sensitivity"] = "敏感"             # stated by the document: the same KB as the samples
    assert c.knowledge_bases.ingest_documents("samples", [*sample_documents(), secret], principal=LOCAL_ADMIN).ok
    store = c.api_keys
    keys = {"admin": store.create("admin", "admin", ["*"])[0],
            "reader": store.create("reader", "reader", ["samples"])[0],                 # default clearance 内部
            "public": store.create("public", "reader", ["samples"], clearance="公开")[0],
            "cleared": store.create("cleared", "reader", ["samples"], clearance="敏感")[0]}
    with TestClient(create_app(c, with_ui=False)) as client:
        yield Env(c, client, keys)


def _clean(r) -> None:
    for marker in SECRET_MARKERS:
        assert marker not in r.text, (r.request.url, r.text[:300])


def _every_route(env, who: str) -> list:
    c, h, q = env.client, env.h(who), SECRET_QUESTION
    user = [{"role": "user", "content": q}]
    return [
        c.post("/api/v1/ask", json={"question": q, "kb": "samples"}, headers=h),
        c.post("/api/v1/ask", json={"question": q, "kb": "samples", "filters": {"doc_ids": ["xinghe"]}}, headers=h),
        # a level named in the request is ignored: the principal's clearance decides
        c.post("/api/v1/ask", json={"question": q, "kb": "samples", "filters": {"levels": ["敏感"]}}, headers=h),
        c.post("/api/v1/search", json={"query": q, "kb": "samples", "top_k": 50, "mode": "bm25"}, headers=h),
        c.post("/api/v1/search", json={"query": q, "kb": "samples", "top_k": 50, "mode": "dense"}, headers=h),
        c.post("/api/v1/search", json={"query": q, "kb": "samples", "top_k": 50}, headers=h),
        c.post("/v1/chat/completions", json={"model": "samples", "messages": user}, headers=h),
        c.post("/v1/chat/completions", json={"model": "samples", "messages": user, "stream": True}, headers=h),
        c.get("/api/v1/kbs/samples/documents", headers=h),
        c.get("/api/v1/kbs/samples/documents?limit=1000", headers=h),
        c.get("/api/v1/kbs/samples/documents/xinghe?chunks=true", headers=h),
        c.get("/api/v1/kbs/samples/documents/xinghe/source", headers=h),
        c.get("/api/v1/kbs/samples/documents/xinghe/text", headers=h),
        c.post("/api/v1/service/guide", json={"request": "星河计划经费申请", "kb": "samples"}, headers=h),
        c.post("/api/v1/draft", json={"doc_type": "通知", "topic": "星河计划经费拨付", "kb": "samples"}, headers=h),
        c.post("/api/v1/draft", json={"doc_type": "通知", "topic": "星河计划经费拨付", "kb": "samples",
                                      "doc_ids": ["xinghe"]}, headers=h),
    ]


def test_control_a_cleared_reader_does_retrieve_the_sensitive_document(env):
    """Without this the test below could pass because the question finds nothing."""
    r = env.client.post("/api/v1/search", json={"query": SECRET_QUESTION, "kb": "samples"}, headers=env.h("cleared"))
    hits = r.json()["hits"]
    assert hits[0]["doc_id"] == "xinghe" and hits[0]["metadata"]["sensitivity"] == "敏感"
    answer = env.client.post("/api/v1/ask", json={"question": SECRET_QUESTION, "kb": "samples"},
                             headers=env.h("cleared")).json()
    assert not answer["refused"] and answer["citations"][0]["sensitivity"] == "敏感"
    assert env.client.get("/api/v1/kbs/samples/documents/xinghe/text", headers=env.h("cleared")).status_code == 200


@pytest.mark.parametrize("who", ["reader", "public"])
def test_nothing_above_the_clearance_comes_back_on_any_route(env, who):
    for r in _every_route(env, who):
        assert r.status_code in (200, 400, 404, 422), (r.request.url, r.status_code, r.text[:300])
        _clean(r)
    docs = env.client.get("/api/v1/kbs/samples/documents", headers=env.h(who)).json()
    assert "xinghe" not in {d["doc_id"] for d in docs}
    # the missing document answers like one that never existed (no existence oracle)
    gone = env.client.get("/api/v1/kbs/samples/documents/xinghe", headers=env.h(who))
    never = env.client.get("/api/v1/kbs/samples/documents/no-such-doc", headers=env.h(who))
    assert gone.status_code == never.status_code == 404
    assert gone.json()["detail"].replace("xinghe", "X") == never.json()["detail"].replace("no-such-doc", "X")


def test_a_public_clearance_sees_only_public_documents(env):
    """公开 < 内部: the samples are 内部 by default, so a 公开 key reads none of them."""
    docs = env.client.get("/api/v1/kbs/samples/documents", headers=env.h("public")).json()
    assert docs == []
    r = env.client.post("/api/v1/search", json={"query": "新生儿入户", "kb": "samples"}, headers=env.h("public"))
    assert r.status_code == 200 and r.json()["hits"] == []


def test_a_level_change_is_in_force_at_the_next_request_and_audited(env):
    c, reader, admin = env.client, env.h("reader"), env.h("admin")
    body = {"query": SECRET_QUESTION, "kb": "samples"}
    assert all(h["doc_id"] != "xinghe" for h in c.post("/api/v1/search", json=body, headers=reader).json()["hits"])
    # only an admin may change a level
    assert c.put("/api/v1/kbs/samples/documents/xinghe/sensitivity", json={"level": "内部"},
                 headers=reader).status_code == 403
    bad = c.put("/api/v1/kbs/samples/documents/xinghe/sensitivity", json={"level": "绝密"}, headers=admin)
    assert bad.status_code == 422 and "公开, 内部, 敏感" in bad.text
    r = c.put("/api/v1/kbs/samples/documents/xinghe/sensitivity", json={"level": "内部"}, headers=admin)
    assert r.status_code == 200 and r.json()["metadata"]["sensitivity"] == "内部"
    try:
        assert c.post("/api/v1/search", json=body, headers=reader).json()["hits"][0]["doc_id"] == "xinghe"
        row = [e for e in env.c.audit.tail(20) if e["operation"] == "access.sensitivity"][-1]
        admin_id = env.c.api_keys.authenticate(env.keys["admin"]).id
        assert row["principal"] == admin_id and row["detail"] == {"doc_id": "xinghe", "from": "敏感", "to": "内部"}
    finally:
        c.put("/api/v1/kbs/samples/documents/xinghe/sensitivity", json={"level": "敏感"}, headers=admin)
    assert all(h["doc_id"] != "xinghe" for h in c.post("/api/v1/search", json=body, headers=reader).json()["hits"])


def test_the_searcher_refuses_filters_that_name_no_levels(env):
    """A path that skipped access.scope gets an error, never everything."""
    with pytest.raises(NoClearance):
        env.c.searcher.search(SECRET_QUESTION, ["samples"])
    with pytest.raises(NoClearance):
        env.c.searcher.search(SECRET_QUESTION, ["samples"], Filters(status=["*"]))
    nobody = Principal("nobody", "reader", ("samples",), id="nobody")     # built without levels: sees nothing
    kbs, flt = scope(nobody, ["samples"])
    assert env.c.searcher.search("新生儿入户", kbs, flt).hits == []
    assert Filters.from_dict({"levels": ["敏感"]}).levels is None          # never taken from a request


def test_scope_never_widens_what_the_filters_allow():
    narrow = Filters().visible_to(("公开",))
    assert narrow.visible_to(("*",)).levels == ("公开",)
    assert narrow.visible_to(("公开", "内部")).levels == ("公开",)
    assert Filters().visible_to(("公开", "内部")).level_ok({"sensitivity": "内部"})
    assert not Filters().visible_to(("公开", "内部")).level_ok({"sensitivity": "敏感"})
    assert not Filters().visible_to(("公开", "内部")).level_ok({})


def test_ingest_levels_from_metadata_folder_rules_and_the_default(tmp_path):
    from assistant.settings import load_settings  # noqa: F401 - the env var below is the settings path under test
    c = make_container(tmp_path / "data", GOV_ASSISTANT_CLASSIFICATION__FOLDER_RULES='[{"pattern": "*/机密/*", '
                                                                                      '"level": "敏感"}]')
    folder = tmp_path / "docs"
    (folder / "机密").mkdir(parents=True)
    (folder / "机密" / "a.txt").write_text("示范市机密文件：关于星河计划的内部安排。" * 3, encoding="utf-8")
    (folder / "b.txt").write_text("示范市公开文件：关于便民服务的通知，自发布之日起施行。" * 3, encoding="utf-8")
    (folder / "c.txt").write_text("示范市公开文件：关于政务公开的通知，自发布之日起施行。" * 3, encoding="utf-8")
    report = c.knowledge_bases.ingest_paths("k", [folder / "机密", folder / "b.txt"], principal=LOCAL_ADMIN)
    assert report.ok
    stated = c.knowledge_bases.ingest_paths("k", [folder / "c.txt"], principal=LOCAL_ADMIN,
                                            extra_metadata={"sensitivity": "公开"})
    assert stated.ok
    levels = {d["source"]: d["metadata"]["sensitivity"] for d in c.knowledge_bases.documents("k", principal=LOCAL_ADMIN)}
    assert levels == {"机密/a.txt": "敏感", "b.txt": "内部", "c.txt": "公开"}
    bad = c.knowledge_bases.ingest_paths("k", [folder / "b.txt"], principal=LOCAL_ADMIN,
                                         extra_metadata={"sensitivity": "绝密"})
    assert bad.results[0].status == "failed" and "sensitivity" in bad.results[0].message
    # every chunk carries its document's level (what retrieval checks)
    for d in c.knowledge_bases.documents("k", principal=LOCAL_ADMIN):
        chunks = c.knowledge_bases.document("k", d["doc_id"], True, principal=LOCAL_ADMIN)["chunks"]
        assert {ch["metadata"]["sensitivity"] for ch in chunks} == {d["metadata"]["sensitivity"]}


def test_documents_stored_before_levels_get_the_default(tmp_path):
    import sqlite3
    c = make_container(tmp_path / "data")
    (tmp_path / "a.txt").write_text("示范市关于便民服务的通知，自发布之日起施行。" * 3, encoding="utf-8")
    assert c.knowledge_bases.ingest_paths("k", [tmp_path / "a.txt"], principal=LOCAL_ADMIN).ok
    db = sqlite3.connect(tmp_path / "data" / "catalog.sqlite3")
    for table in ("documents", "chunks"):
        db.execute(f"UPDATE {table} SET metadata=json_remove(metadata, '$.sensitivity')")
    db.execute("DROP TABLE alembic_version")        # a catalog of that release had no Alembic revision
    db.commit()
    db.close()
    fresh = make_container(tmp_path / "data")
    docs = fresh.knowledge_bases.documents("k", principal=Principal("r", "reader", ("k",), levels=("公开", "内部")))
    assert [d["metadata"]["sensitivity"] for d in docs] == ["内部"]
