"""Back to the original (#16 parts 4-5): citations[].offsets / page(s) in ask and search, the original file and the
extracted text of a document, under the knowledge base's read ACL, audited; a PDF page rendered with the passage."""
from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from assistant.components import pdf_view
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import PROJECT_ROOT
from ingest.chunking import Block
from ingest.loaders import SourceDocument
from ingest.parsers import tiny_pdf

QUESTION = "开办餐饮店申请食品经营许可需要哪些材料？"
SAMPLE = PROJECT_ROOT / "samples" / "docs" / "示范市餐饮服务经营许可办事指南.md"


def squeeze(s: str) -> str:
    return re.sub(r"[\s#*]", "", re.sub(r"(?m)^\s*(?:-{3,}|\*{3,}|_{3,})\s*$", "", s))


def sample_doc_id(api) -> str:
    docs = api.container.knowledge_bases.documents("samples", principal=LOCAL_ADMIN)
    return next(d["doc_id"] for d in docs if d["origin"] and d["origin"].get("name") == SAMPLE.name)


def text_of(api, doc_id: str, who: str = "reader", **params) -> dict:
    r = api.client.get(f"/api/v1/kbs/samples/documents/{quote(doc_id)}/text", params=params, headers=api.h(who))
    assert r.status_code == 200, r.text
    return r.json()


def test_ask_citations_carry_offsets_into_the_document_text(api):
    r = api.client.post("/api/v1/ask", json={"question": QUESTION, "kb": "samples"}, headers=api.h("reader"))
    body = r.json()
    assert body["citations"]
    texts: dict[str, str] = {}
    for c in body["citations"]:
        assert {"offsets", "pages", "page"} <= set(c)
        assert c["pages"] == [] and c["page"] is None            # markdown has no pages
        if c["metadata"].get("passage"):                         # the made-up 文件信息 passage has no position
            assert c["offsets"] is None
            continue
        start, end = c["offsets"]
        text = texts.setdefault(c["doc_id"], text_of(api, c["doc_id"])["text"])
        assert squeeze(text[start:end]) == squeeze(c["text"])


def test_search_hits_carry_offsets_and_the_text_endpoint_gives_the_span(api):
    r = api.client.post("/api/v1/search", json={"query": "食品经营许可 申请材料", "kb": "samples", "mode": "bm25"},
                        headers=api.h("reader"))
    hit = next(h for h in r.json()["hits"] if h["offsets"])
    one = text_of(api, hit["doc_id"], chunk_id=hit["chunk_id"], context=10)
    assert one["span"] == hit["offsets"] and one["offset"] == max(0, hit["offsets"][0] - 10)
    s, e = (x - one["offset"] for x in one["span"])
    assert squeeze(one["text"][s:e]) == squeeze(hit["text"])
    assert len(one["text"]) <= e - s + 20 and one["chars"] > len(one["text"])


def test_source_returns_the_original_file(api):
    doc_id = sample_doc_id(api)
    r = api.client.get(f"/api/v1/kbs/samples/documents/{quote(doc_id)}/source", headers=api.h("reader"))
    assert r.status_code == 200
    assert r.content == SAMPLE.read_bytes()
    assert r.headers["content-type"] == "text/markdown; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff" and "sandbox" in r.headers["content-security-policy"]
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;") and quote(SAMPLE.name) in disposition
    row = api.container.audit.tail(1)[-1]
    assert row["path"].endswith("/source") and row["outcome"] == "ok" and row["kb"] == "samples"
    assert row["sources"] == [doc_id] and row["principal"] == api.container.api_keys.authenticate(
        api.keys["reader"]).id


@pytest.mark.parametrize("who,kb", [("reader", "secret"), ("outsider", "samples"), ("editor", "secret")])
@pytest.mark.parametrize("what", ["source", "text"])
def test_a_principal_who_may_not_read_the_kb_gets_403_audited(api, who, kb, what):
    doc_id = "xinghe" if kb == "secret" else sample_doc_id(api)
    r = api.client.get(f"/api/v1/kbs/{kb}/documents/{quote(doc_id)}/{what}", headers=api.h(who))
    assert r.status_code == 403
    assert "三千万元" not in r.text and "xinghe.md" not in r.text
    row = api.container.audit.tail(1)[-1]
    assert row["outcome"] == "denied" and row["status"] == 403 and row["path"].endswith(f"/{what}")


def test_unknown_documents_and_missing_originals_are_404_naming_what_is_missing(api):
    r = api.client.get("/api/v1/kbs/samples/documents/no-such-doc/source", headers=api.h("reader"))
    assert r.status_code == 404 and "no-such-doc" in r.json()["detail"]
    r = api.client.get("/api/v1/kbs/nokb/documents/x/source", headers=api.h("admin"))
    assert r.status_code == 404 and "nokb" in r.json()["detail"]
    # the secret document was ingested from text, not from a file: its text is kept, no original file
    r = api.client.get("/api/v1/kbs/secret/documents/xinghe/source", headers=api.h("admin"))
    assert r.status_code == 404 and "original file" in r.json()["detail"]
    assert "三千万元" in text_of_kb(api, "secret", "xinghe")["text"]


def text_of_kb(api, kb: str, doc_id: str) -> dict:
    return api.client.get(f"/api/v1/kbs/{kb}/documents/{doc_id}/text", headers=api.h("admin")).json()


@pytest.mark.parametrize("path", ["../../catalog.sqlite3", "..%2F..%2Fcatalog.sqlite3", "%2e%2e/api_keys.sqlite3",
                                  "..", "originals", "/etc/passwd"])
def test_no_path_reaches_a_file_outside_the_catalog(api, path):
    r = api.client.get(f"/api/v1/kbs/samples/documents/{path}/source", headers=api.h("admin"))
    assert r.status_code in (404, 405, 422)
    assert b"SQLite format" not in r.content and b"root:" not in r.content


def test_text_endpoint_rejects_a_span_outside_the_text_and_a_foreign_chunk(api):
    doc_id = sample_doc_id(api)
    r = api.client.get(f"/api/v1/kbs/samples/documents/{quote(doc_id)}/text", params={"start": 5, "end": 10**7},
                       headers=api.h("reader"))
    assert r.status_code == 422 and "outside" in r.json()["detail"]
    other = next(d["doc_id"] for d in api.container.knowledge_bases.documents("samples", principal=LOCAL_ADMIN)
                 if d["doc_id"] != doc_id)
    chunk = api.container.store.catalog.document_chunks("samples", other)[0]["chunk_id"]
    r = api.client.get(f"/api/v1/kbs/samples/documents/{quote(doc_id)}/text", params={"chunk_id": chunk},
                       headers=api.h("reader"))
    assert r.status_code == 404 and "not found in document" in r.json()["detail"]


def test_pages_of_paged_blocks_reach_citations_and_hits(api):
    blocks = [Block("示范市数据条例", is_title=True), Block("第一条 星辰数据港为了促进数据依法有序流动而设立。", page=3),
              Block("第二条 星辰数据港的运营单位负责日常管理，", page=3), Block("接受市数据局的监督。", page=4)]
    doc = SourceDocument("paged", "示范市数据条例", "条例.pdf", "\n".join(b.text for b in blocks), blocks=blocks)
    assert api.container.knowledge_bases.ingest_documents("paged", [doc], principal=LOCAL_ADMIN).ok
    r = api.client.post("/api/v1/search", json={"query": "星辰数据港 运营单位 监督", "kb": "paged", "mode": "bm25"},
                        headers=api.h("admin"))
    hits = {tuple(h["pages"]): h for h in r.json()["hits"] if h["pages"]}
    assert set(hits) == {(3,), (3, 4)} and hits[(3, 4)]["page"] == 3
    r = api.client.post("/api/v1/ask", json={"question": "星辰数据港的运营单位接受谁的监督？", "kb": "paged"},
                        headers=api.h("admin"))
    assert any(c["pages"] and c["page"] == c["pages"][0] for c in r.json()["citations"] + r.json()["related"])


@pytest.mark.skipif(not pdf_view.available(), reason="pypdfium2 is not installed")
def test_a_pdf_original_is_served_inline_and_its_page_rendered_with_the_passage(api, tmp_path):
    f = tmp_path / "Notice on open data.pdf"
    f.write_bytes(tiny_pdf(["Open data notice", "Every agency publishes its open data catalogue by June.",
                            "The data bureau checks the catalogues every quarter."]))
    report = api.container.knowledge_bases.ingest_paths("pdfs", [f], principal=LOCAL_ADMIN,
                                                        source_names={str(f): f.name})
    assert report.ok, report.to_dict()
    doc = api.container.knowledge_bases.documents("pdfs", principal=LOCAL_ADMIN)[0]
    r = api.client.get(f"/api/v1/kbs/pdfs/documents/{doc['doc_id']}/source", headers=api.h("admin"))
    assert r.status_code == 200 and r.content == f.read_bytes()
    assert r.headers["content-type"] == "application/pdf" and r.headers["content-disposition"].startswith("inline;")
    chunk = next(c for c in api.container.store.catalog.document_chunks("pdfs", doc["doc_id"])
                 if "catalogue" in c["text"])
    image = api.container.originals.page_image("pdfs", doc["doc_id"], principal=LOCAL_ADMIN,
                                               chunk_id=chunk["chunk_id"])
    assert image.png.startswith(b"\x89PNG") and image.page == 1 and image.pages == 1 and image.found
    with pytest.raises(PermissionError):
        api.container.originals.page_image("pdfs", doc["doc_id"], principal=api.container.api_keys.authenticate(
            api.keys["reader"]), chunk_id=chunk["chunk_id"])
