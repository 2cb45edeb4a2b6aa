"""原文定位 without a browser: the 查看原文 links, the text view's <mark>, the registered handler (session principal,
the read check, one audit row), the PDF page view."""
from __future__ import annotations

import json

import pytest

from assistant.answering import Citation
from assistant.components import pdf_view
from assistant.services.access import LOCAL_ADMIN, Principal
from ingest.parsers import tiny_pdf
from ui.pages.chat import render_sources
from ui.source_view import render_text, source_link

READER = Principal("reader", "reader", ("kb",), id="k_reader01", levels=("公开", "内部"))
OUTSIDER = Principal("outsider", "reader", ("other",), id="k_outsid01")


def test_source_links_only_for_passages_that_know_where_they_stand():
    meta = {"title": "通知", "offsets": [3, 9]}
    cited = Citation(1, "d1", "d1#0", "kb", "通知", "《通知》", "正文", meta, cited=True, offsets=[3, 9])
    made_up = Citation(2, "d1", "d1#1", "kb", "通知", "《通知》", "文件信息", {"title": "通知", "passage": "x"})
    html = render_sources([cited, made_up], "问题")
    assert html.count('data-source-view="chat-src"') == 1 and 'data-chunk="d1#0"' in html
    assert source_link("v", "kb", "a\"<b>", "c").count("&quot;") == 1     # attribute values escaped


def test_text_view_marks_the_span_escaped_and_says_what_is_left_out():
    p = {"text": "<b>前文</b>引用的段落。后文", "offset": 10, "chars": 100, "span": [19, 25]}
    html = render_text(p)
    assert '<mark id="src-mark">引用的段落。</mark>' in html and "&lt;b&gt;前文&lt;/b&gt;" in html
    assert "前文略" in html and "后文略" in html
    assert "前文略" not in render_text({**p, "offset": 0, "chars": len(p["text"]), "span": [9, 15]})


def handler(blocks):
    fns = [f.fn for f in blocks.fns.values() if getattr(f.fn, "ui_operation", "") == "ui.source_view.open_source"]
    assert len(fns) == 2                  # the chat's sources and the hit test
    return fns[0]


@pytest.fixture
def built(container, tmp_path):
    from ui.app import build_ui
    f = tmp_path / "通知.txt"
    f.write_text("示范市关于数据共享的通知\n各区人民政府：\n一、总体要求\n坚持共享为原则，不共享为例外，"
                 "2025年底前完成公共数据目录编制。\n二、保障措施\n各区应当明确责任分工。\n", encoding="utf-8")
    assert container.knowledge_bases.ingest_paths("kb", [f], principal=LOCAL_ADMIN).ok
    doc = container.knowledge_bases.documents("kb", principal=LOCAL_ADMIN)[0]
    chunk = next(c for c in container.store.catalog.document_chunks("kb", doc["doc_id"]) if "2025年底前" in c["text"])
    pick = json.dumps({"kb": "kb", "doc": doc["doc_id"], "chunk": chunk["chunk_id"], "at": 1})
    return build_ui(container, login=_AlwaysValid(container)), pick, chunk


class _AlwaysValid:
    password_enabled = False

    def __init__(self, container):
        from ui.auth import Login
        self._login = Login(container)

    def still_valid(self, principal):
        return True

    def __getattr__(self, name):
        return getattr(self._login, name)


def test_the_handler_opens_the_text_at_the_passage_and_is_audited(container, built):
    blocks, pick, chunk = built
    html = handler(blocks)(READER, pick)
    assert '<mark id="src-mark">' in html and "2025年底前完成公共数据目录编制" in html.split("<mark")[1]
    row = container.audit.tail(1)[-1]
    assert row["operation"] == "ui.source_view.open_source" and row["principal"] == READER.id
    assert row["outcome"] == "ok" and row["kb"] == "kb" and row["sources"] == [chunk["chunk_id"]]


def test_a_principal_who_may_not_read_the_kb_sees_nothing_and_the_refusal_is_audited(container, built):
    blocks, pick, _ = built
    out = handler(blocks)(OUTSIDER, pick)
    assert "2025年底前" not in str(out)
    row = container.audit.tail(1)[-1]
    assert row["operation"] == "ui.source_view.open_source" and row["outcome"] == "denied"
    assert row["principal"] == OUTSIDER.id


@pytest.mark.skipif(not pdf_view.available(), reason="pypdfium2 is not installed")
def test_a_pdf_passage_opens_as_its_page_with_the_passage_highlighted(container, tmp_path):
    from ui.source_view import show_source
    f = tmp_path / "notice.pdf"
    f.write_bytes(tiny_pdf(["Open data notice", "Every agency publishes its open data catalogue by June."]))
    assert container.knowledge_bases.ingest_paths("pdf", [f], principal=LOCAL_ADMIN).ok
    doc = container.knowledge_bases.documents("pdf", principal=LOCAL_ADMIN)[0]
    chunk = next(c for c in container.store.catalog.document_chunks("pdf", doc["doc_id"]) if "catalogue" in c["text"])
    html = show_source(container, LOCAL_ADMIN, json.dumps({"kb": "pdf", "doc": doc["doc_id"],
                                                           "chunk": chunk["chunk_id"]}))
    assert 'src="data:image/png;base64,' in html and 'data-found="true"' in html and "第 1 页 / 共 1 页" in html
