"""Chunk positions (#16 part 4): offsets into the document's extracted text, pages from the blocks, kept originals.

The relation tested everywhere: a chunk's text is a normalised form of text[start:end] — with rule lines (---), all
whitespace, '#' and '*' removed both are equal (ingest/chunking.py's module doc)."""
from __future__ import annotations

import re
import sqlite3

import pytest

from assistant.components.store.catalog import Catalog
from assistant.services.access import LOCAL_ADMIN
from ingest.chunking import Block, Chunk, chunk_blocks, chunk_text
from ingest.loaders import SourceDocument
from test_chunking import REGULATION, SEED, WORK_POINTS


def squeeze(s: str) -> str:
    return re.sub(r"[\s#*]", "", re.sub(r"(?m)^\s*(?:-{3,}|\*{3,}|_{3,})\s*$", "", s))


def assert_positioned(text: str, chunks) -> None:
    assert chunks
    last = 0
    for c in chunks:
        assert c.start is not None and c.end is not None, c
        assert squeeze(c.text) == squeeze(text[c.start:c.end]), (c.text, text[c.start:c.end])
        assert c.start >= last      # in document order, never overlapping
        last = c.end


@pytest.mark.parametrize("max_chars", [40, 60, 120, 300])
def test_chunk_text_offsets_point_at_the_chunk(max_chars):
    for text in (REGULATION, WORK_POINTS, "第一章\u3000总则\r\n\r\n\u3000\u3000第一条\u3000为了  规范\t管理，制定本办法。\r\n"):
        assert_positioned(text, chunk_text(text, max_chars=max_chars, min_chars=10))


def test_a_chunk_that_is_one_line_is_exactly_its_span():
    text = "前言\n第一条 公共数据以共享为原则，不共享为例外。\n第二条 本办法自发布之日起施行。\n"
    for c in chunk_text(text):
        assert text[c.start:c.end] == c.text


def test_hard_cut_sentences_and_merged_tails_keep_their_spans():
    long = "第一条 " + "，".join(f"第{i}项内容应当依法公开" for i in range(40)) + "。\n第二条 短。\n"
    assert_positioned(long, chunk_text(long, max_chars=50, min_chars=20))


@pytest.mark.skipif(not SEED.exists(), reason="shared seed document not present")
def test_seed_markdown_document():
    text = SEED.read_text(encoding="utf-8")
    assert_positioned(text, chunk_text(text, max_chars=200))


def test_pages_come_from_the_blocks_and_blocks_without_pages_give_none():
    blocks = [Block("第一条 为了规范公共数据管理，制定本办法。", page=1),
              Block("第二条 本办法适用于本市行政区域内公共数据的管理活动，", page=1),
              Block("包括收集、归集、共享和开放。", page=2),
              Block("第三条 市数据主管部门负责统筹。", page=3)]
    text = "\n".join(b.text for b in blocks)
    starts = [text.index(b.text) for b in blocks]
    chunks = chunk_blocks(blocks, starts=starts)
    assert [c.pages for c in chunks] == [[1], [1, 2], [3]]
    assert_positioned(text, chunks)
    assert all(c.pages == [] for c in chunk_blocks([Block(b.text) for b in blocks]))
    assert all(c.start is None for c in chunk_blocks(blocks))      # no starts given: no offsets


def test_pipeline_stores_offsets_into_the_kept_text(container, tmp_path):
    f = tmp_path / "通知.md"
    f.write_text("# 示范市关于数据共享的通知\n\n各区人民政府：\n\n## 一、总体要求\n\n**坚持**  共享为原则。"
                 "不共享为例外。\n\n---\n\n## 二、主要任务\n\n1. **完善目录**。编制公共数据资源目录。\n", encoding="utf-8")
    kbs = container.knowledge_bases
    report = kbs.ingest_paths("pos", [f], principal=LOCAL_ADMIN)
    assert report.ok, report.to_dict()
    doc = kbs.documents("pos", principal=LOCAL_ADMIN)[0]
    assert doc["origin"]["name"] == "通知.md" and doc["origin"]["size"] == f.stat().st_size
    assert container.store.originals.path(doc["origin"]["file"]).read_bytes() == f.read_bytes()
    full = container.originals.passage("pos", doc["doc_id"], principal=LOCAL_ADMIN)
    assert full["chars"] == len(full["text"]) and full["span"] is None
    chunks = container.store.catalog.document_chunks("pos", doc["doc_id"])
    body = [c for c in chunks if "passage" not in c["metadata"]]
    assert all("offsets" in c["metadata"] for c in body) and len(body) >= 3
    assert all("offsets" not in c["metadata"] for c in chunks if "passage" in c["metadata"])   # made up: none
    for ch in body:
        s, e = ch["metadata"]["offsets"]
        assert squeeze(ch["text"]) == squeeze(full["text"][s:e])
        one = container.originals.passage("pos", doc["doc_id"], principal=LOCAL_ADMIN, chunk_id=ch["chunk_id"],
                                          context=5)
        assert one["span"] == [s, e] and one["offset"] == max(0, s - 5)
        assert squeeze(one["text"][s - one["offset"]:e - one["offset"]]) == squeeze(ch["text"])


def test_reindex_keeps_offsets_pages_and_the_original(container):
    kbs = container.knowledge_bases
    blocks = [Block("示范市数据条例", is_title=True), Block("第一条 为了促进数据依法有序流动，制定本条例。", page=1),
              Block("第二条 本条例适用于本市行政区域内数据处理活动。", page=2)]
    text = "\n".join(b.text for b in blocks)
    doc = SourceDocument("paged", "示范市数据条例", "条例.pdf", text, blocks=blocks)
    assert kbs.ingest_documents("pos", [doc], principal=LOCAL_ADMIN).ok

    def positions():
        return [(c["metadata"].get("offsets"), c["metadata"].get("pages"))
                for c in container.store.catalog.document_chunks("pos", "paged") if "offsets" in c["metadata"]]
    before = positions()
    assert [p for _, p in before] == [[1], [2]]
    assert container.store.catalog.get_document("pos", "paged")["origin"]["pages"] == [[8, 1], [32, 2]]
    assert kbs.reindex_document("pos", "paged", principal=LOCAL_ADMIN).ok
    assert positions() == before


def test_delete_removes_originals_no_other_document_uses(container, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("示范市关于开展数据共享工作的通知\n各区：请于6月底前完成数据目录编制工作。\n", encoding="utf-8")
    kbs = container.knowledge_bases
    for kb in ("one", "two"):                       # the same file in two knowledge bases: one copy
        assert kbs.ingest_paths(kb, [f], principal=LOCAL_ADMIN).ok
    origin = kbs.documents("one", principal=LOCAL_ADMIN)[0]["origin"]
    blob = container.store.originals.path(origin["file"])
    assert blob and kbs.documents("two", principal=LOCAL_ADMIN)[0]["origin"]["file"] == origin["file"]
    kbs.delete_document("one", kbs.documents("one", principal=LOCAL_ADMIN)[0]["doc_id"], principal=LOCAL_ADMIN)
    assert blob.exists()                            # still the other document's
    kbs.delete("two", principal=LOCAL_ADMIN)
    assert not blob.exists() and container.store.originals.path(origin["text"]) is None
    assert not list(container.store.originals.root.rglob(".staged-*"))


@pytest.mark.timeout(120)
def test_a_knowledge_base_named_originals_is_ingested(container, tmp_path):
    """The originals' own lock is .originals.lock: the write lock of a knowledge base named `originals` was
    the same file, so publishing its document's blobs waited for the writer's own flock for ever."""
    f = tmp_path / "a.txt"
    f.write_text("示范市通知\n请各单位于月底前报送材料。\n", encoding="utf-8")
    assert container.knowledge_bases.ingest_paths("originals", [f], principal=LOCAL_ADMIN).ok
    origin = container.knowledge_bases.documents("originals", principal=LOCAL_ADMIN)[0]["origin"]
    assert container.store.originals.path(origin["file"]).read_bytes() == f.read_bytes()


def test_a_changed_file_replaces_its_original(container, tmp_path):
    f = tmp_path / "a.txt"
    kbs = container.knowledge_bases
    f.write_text("示范市通知\n第一版的内容在这里，请各单位遵照执行。\n", encoding="utf-8")
    assert kbs.ingest_paths("kb", [f], principal=LOCAL_ADMIN).ok
    old = kbs.documents("kb", principal=LOCAL_ADMIN)[0]["origin"]
    f.write_text("示范市通知\n第二版的内容已经修改，请各单位遵照执行。\n", encoding="utf-8")
    assert kbs.ingest_paths("kb", [f], principal=LOCAL_ADMIN).counts == {"replaced": 1}
    new = kbs.documents("kb", principal=LOCAL_ADMIN)[0]["origin"]
    assert new["file"] != old["file"] and container.store.originals.path(new["file"]).read_bytes() == f.read_bytes()
    assert container.store.originals.path(old["file"]) is None and container.store.originals.path(old["text"]) is None


def test_old_catalogs_open_and_their_chunks_have_no_positions(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
      CREATE TABLE kbs (name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', embedding TEXT NOT NULL,
        created_at TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE documents (kb TEXT NOT NULL, doc_id TEXT NOT NULL, title TEXT, source TEXT,
        content_hash TEXT NOT NULL, state TEXT NOT NULL, n_chunks INTEGER NOT NULL DEFAULT 0,
        metadata TEXT NOT NULL DEFAULT '{}', ingested_at TEXT NOT NULL, path TEXT, PRIMARY KEY (kb, doc_id));
      INSERT INTO kbs VALUES ('old', '', 'hash', '2025-01-01', 0);
      INSERT INTO documents VALUES ('old', 'd1', 't', 'a.txt', 'h', 'complete', 0, '{}', '2025-01-01', NULL);
    """)
    db.commit()
    db.close()
    catalog = Catalog(path)
    assert catalog.get_document("old", "d1")["origin"] is None
    from assistant.retrieval import positions
    assert positions({"title": "t"}) == {"offsets": None, "pages": [], "page": None}


# --- tables (#16 parts 2 and 4 together): a table chunk's span holds its rows, a split table's pieces too --------

def table_span_rows(text: str, chunk) -> list[str]:
    """The table rows a table chunk's span holds, checked against its text: a whole table or a split table's first
    piece is the normalised form of its span, header on; a later piece's header and rule are a copy (not in its
    span), its rows are the normalised form of the span."""
    span = text[chunk.start:chunk.end]
    lines = chunk.text.split("\n")
    at = next(i for i, ln in enumerate(lines) if ln.startswith("|"))       # a lead-in may have joined the table
    if squeeze(chunk.text) == squeeze(span):
        return lines[at + 2:]
    assert squeeze("\n".join(lines[at + 2:])) == squeeze(span), (chunk.text, span)
    assert not span.startswith(lines[at])
    return lines[at + 2:]


def test_a_split_tables_pieces_span_their_rows_and_carry_their_pages():
    from test_tables import HEADER, RULE, _rows
    rows = _rows(30)
    blocks = [Block("一、申请材料", page=1), Block("申请人应当提交下列材料：", page=1),
              Block("\n".join([HEADER, RULE, *rows[:10]]), page=1), Block("\n".join(rows[10:]), page=2),
              Block("二、办理时限", page=2), Block("自受理之日起5个工作日内办结。", page=2)]
    text = "\n".join(b.text for b in blocks)
    chunks = chunk_blocks(blocks, max_chars=300, starts=[text.index(b.text) for b in blocks])
    tables = [c for c in chunks if HEADER in c.text]
    assert len(tables) > 3
    assert text[tables[0].start:].startswith("申请人应当提交下列材料：\n" + HEADER)    # the lead-in joined the first
    held = [table_span_rows(text, c) for c in tables]
    assert [r for piece in held for r in piece] == rows                            # every row once, in order
    for c, piece in zip(tables, held):
        span = text[c.start:c.end]
        assert span.rstrip().endswith(piece[-1]) and all(r in span for r in piece)
        assert c.pages == sorted({1 if rows.index(r) < 10 else 2 for r in piece}), (c.pages, piece)
    assert [1, 2] in [c.pages for c in tables]                                  # a piece across the page break
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:]))             # in order, never overlapping
    assert chunks[-1].pages == [2] and text[chunks[-1].start:chunks[-1].end] == "自受理之日起5个工作日内办结。"
    # a row too long for a chunk: each part's span is inside that row
    long_row = "| 1 | " + "申请人应当如实填写申请表并提交身份证明材料。" * 20 + " | 1份 | 无 |"
    table = "\n".join([HEADER, RULE, long_row])
    parts = chunk_blocks([Block(table, page=3)], max_chars=200, starts=[0])
    assert len(parts) > 1 and all(p.pages == [3] for p in parts)
    assert parts[0].start == 0 and parts[-1].end == len(table)
    for p in parts[1:]:
        assert table.index(long_row) <= p.start < p.end <= len(table)
        assert squeeze(p.text.split("\n", 2)[2]) == squeeze(table[p.start:p.end])


def test_a_docx_table_chunk_spans_its_rows_in_the_kept_text_and_reindex_keeps_it(container, tmp_path):
    from test_tables import MATERIALS, write_guide
    from ingest.tables import markdown_table
    kbs = container.knowledge_bases
    report = kbs.ingest_paths("guides", [write_guide(tmp_path / "guide.docx")], principal=LOCAL_ADMIN)
    assert report.ok, report.to_dict()
    doc_id = report.results[0].doc_id
    full = container.originals.passage("guides", doc_id, principal=LOCAL_ADMIN)["text"]

    def table_chunks():
        return [c for c in container.store.catalog.document_chunks("guides", doc_id) if "| 序号 |" in c["text"]]
    (table,) = table_chunks()
    assert table["text"] == markdown_table(MATERIALS) and "pages" not in table["metadata"]   # a .docx has no pages
    s, e = table["metadata"]["offsets"]
    assert full[s:e] == markdown_table(MATERIALS)
    assert all(cell in full[s:e] for row in MATERIALS for cell in row)
    before = [(c["text"], c["metadata"].get("offsets"), c["metadata"].get("pages"))
              for c in container.store.catalog.document_chunks("guides", doc_id)]
    # reindex reads the kept text, a line a block: the table's rows are read across blocks, whole again
    assert kbs.reindex_document("guides", doc_id, principal=LOCAL_ADMIN).ok
    assert [(c["text"], c["metadata"].get("offsets"), c["metadata"].get("pages"))
            for c in container.store.catalog.document_chunks("guides", doc_id)] == before
    assert [c["metadata"]["offsets"] for c in table_chunks()] == [[s, e]]


def test_a_paged_split_table_keeps_offsets_and_pages_through_reindex(container):
    from test_tables import HEADER, RULE, _rows
    rows = _rows(30)
    blocks = [Block("示范市户籍迁入登记办事指南", is_title=True), Block("一、申请材料", page=1),
              Block("\n".join([HEADER, RULE, *rows[:12]]), page=1), Block("\n".join(rows[12:]), page=2)]
    doc = SourceDocument("guide-pdf", "示范市户籍迁入登记办事指南", "指南.pdf", "\n".join(b.text for b in blocks),
                         blocks=blocks)
    kbs = container.knowledge_bases
    assert kbs.ingest_documents("pos", [doc], principal=LOCAL_ADMIN).ok

    def positions():
        return [(c["text"], c["metadata"].get("offsets"), c["metadata"].get("pages"))
                for c in container.store.catalog.document_chunks("pos", "guide-pdf") if "offsets" in c["metadata"]]
    before = positions()
    assert len(before) > 3 and {p for _, _, pg in before for p in pg} == {1, 2}
    held = [r for text, (s, e), _ in before for r in table_span_rows(doc.text, Chunk(text, [], 0, start=s, end=e))]
    assert held == rows
    assert kbs.reindex_document("pos", "guide-pdf", principal=LOCAL_ADMIN).ok
    assert positions() == before


# --- PDF pages (#16 parts 1 and 4 together): a PDF's chunks carry the pages their text came from ------------------

def test_a_mixed_pdfs_chunks_carry_their_pages(container, tmp_path):
    from test_ocr import FONT, mixed_pdf
    if not FONT.exists():
        pytest.skip("needs fonts-wqy-microhei to draw Chinese pages")
    pytest.importorskip("rapidocr_onnxruntime")
    pytest.importorskip("pypdfium2")
    path = mixed_pdf(tmp_path / "mixed.pdf")
    kbs = container.knowledge_bases
    report = kbs.ingest_paths("pdf", [path], principal=LOCAL_ADMIN)
    assert report.ok and report.results[0].how == ["OCR 1 of 2 pages"], report.to_dict()
    doc = kbs.documents("pdf", principal=LOCAL_ADMIN)[0]
    full = container.originals.passage("pdf", doc["doc_id"], principal=LOCAL_ADMIN)["text"]
    body = [c for c in container.store.catalog.document_chunks("pdf", doc["doc_id"]) if "passage" not in c["metadata"]]
    assert body and all(c["metadata"].get("pages") for c in body)
    for c in body:
        s, e = c["metadata"]["offsets"]
        assert squeeze(c["text"]) == squeeze(full[s:e])
    pages = {p: [c["text"] for c in body if p in c["metadata"]["pages"]] for p in (1, 2)}
    assert any("Text layer page" in t for t in pages[1]) and any("公共数据开放" in t for t in pages[2])
    assert [p for _, p in doc["origin"]["pages"]] == [1, 2]
