"""OFD: reading order, paragraphs, the 申请材料 grid as a table, pages and DocInfo from generated 公文 packages; bad
packages (damaged, a zip bomb, another zip renamed .ofd, entity tricks) fail naming the file, the store intact."""
from __future__ import annotations

import zipfile

import pytest

from assistant.services.access import LOCAL_ADMIN
from assistant.settings import IngestSettings
from conftest import make_container
from ingest.loaders import LoadError, load_file
from ingest.ofd import read_ofd
from ingest.parsers import ParseError
from ingest.tables import markdown_table
from ofd_writer import BODY_PARAS, LATE_PARAS, MATERIALS, NOTICE_TITLE, notice

KB = "ofd"


@pytest.fixture(scope="module")
def notice_ofd(tmp_path_factory):
    path = tmp_path_factory.mktemp("ofd") / "notice.ofd"
    notice(path)
    return path


def test_reading_order_paragraphs_table_and_pages(notice_ofd):
    doc = read_ofd(str(notice_ofd))
    texts = [b.text for b in doc.blocks]
    assert doc.pages == 2
    assert texts[:3] == ["示范市人民政府办公厅文件", "示政办发〔2025〕12号", NOTICE_TITLE]   # red head from the template
    assert [b.is_title for b in doc.blocks[:3]] == [True, False, True]
    assert BODY_PARAS[0] in texts and BODY_PARAS[1] in texts                # wrapped lines joined, indent splits
    assert markdown_table(MATERIALS) in texts                               # the grid, cell for cell
    late = next(b for b in doc.blocks if b.text == LATE_PARAS[0])           # one paragraph over the page break
    assert late.page == 1 and next(b for b in doc.blocks if b.text == LATE_PARAS[1]).page == 2
    assert texts[-2:] == ["示范市人民政府办公厅", "2025年3月1日"]
    assert not any("—" in t for t in texts)                                  # page numbers are not text


def test_docinfo(notice_ofd):
    info = read_ofd(str(notice_ofd)).info
    assert info["Title"] == NOTICE_TITLE and info["Author"] == "示范市人民政府办公厅"
    assert info["CreationDate"] == "2025-03-01" and info["文号"] == "示政办发〔2025〕12号"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("ofd-kb")
    notice(root / "notice.ofd")
    c = make_container(root / "data")
    report = c.knowledge_bases.ingest_paths(KB, [root / "notice.ofd"], principal=LOCAL_ADMIN)
    return c, report, root


def test_ingested_with_docinfo_metadata_and_a_result_note(loaded):
    c, report, _ = loaded
    r = report.results[0]
    assert r.status == "added" and r.how == ["OFD, 2 pages", "1 table"]
    meta = c.knowledge_bases.document(KB, r.doc_id, principal=LOCAL_ADMIN)["metadata"]
    assert meta["title"] == NOTICE_TITLE and meta["doc_number"] == "示政办发〔2025〕12号"
    assert meta["agency"] == "示范市人民政府办公厅" and meta["date"] == "2025-03-01" and meta["doc_type"] == "通知"
    hits = c.search.search("企业开办 申请材料", [KB], mode="bm25", top_k=3, principal=LOCAL_ADMIN).hits
    assert hits[0].text.startswith("| 序号 | 材料名称 |") and hits[0].metadata["heading"].endswith("一、申请材料")


def test_without_docinfo_the_text_gives_the_metadata(tmp_path):
    notice(tmp_path / "bare.ofd", with_info=False)
    doc = next(load_file(tmp_path / "bare.ofd"))
    assert doc.title == "" and doc.metadata == {} and doc.hints == {}
    from assistant.pipeline import normalise_metadata
    meta = normalise_metadata(doc)
    assert meta["doc_number"] == "示政办发〔2025〕12号" and meta["date"] == "2025-03-01"


def _zip(path, files: dict[str, bytes | str], method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_bad_packages_fail_naming_the_file_and_leave_the_store(loaded, tmp_path):
    c, _, _ = loaded
    before = c.knowledge_bases.info(KB, principal=LOCAL_ADMIN)
    notice(tmp_path / "good.ofd")
    data = (tmp_path / "good.ofd").read_bytes()
    (tmp_path / "truncated.ofd").write_bytes(data[: len(data) // 2])
    (tmp_path / "notzip.ofd").write_bytes("示范市通知".encode() * 100)
    _zip(tmp_path / "renamed.ofd", {"word/document.xml": "<w:document/>", "[Content_Types].xml": "<Types/>"})
    with zipfile.ZipFile(tmp_path / "good.ofd") as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    _zip(tmp_path / "badxml.ofd", {**parts, "Doc_0/Pages/Page_0/Content.xml": b"<ofd:Page><ofd:Content>"})
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
              '<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"><ofd:DocBody><ofd:DocRoot>&lol2;</ofd:DocRoot>'
              '</ofd:DocBody></ofd:OFD>')
    _zip(tmp_path / "entities.ofd", {**parts, "OFD.xml": laughs})
    _zip(tmp_path / "bomb.ofd", {**parts, "Doc_0/Pages/Page_0/Content.xml": b" " * (20 * 2**20)})
    names = ["truncated.ofd", "notzip.ofd", "renamed.ofd", "badxml.ofd", "entities.ofd", "bomb.ofd"]
    report = c.knowledge_bases.ingest_paths(KB, [tmp_path / n for n in names], principal=LOCAL_ADMIN)
    msg = {r.source.rsplit("/", 1)[-1]: r.message for r in report.results}
    assert report.counts == {"failed": len(names)}, msg
    assert "damaged zip archive" in msg["truncated.ofd"]
    assert "not a zip archive" in msg["notzip.ofd"]
    assert "no OFD.xml" in msg["renamed.ofd"] and "not an OFD package" in msg["renamed.ofd"]
    assert "Content.xml is not well-formed XML" in msg["badxml.ofd"]
    assert "DOCTYPE" in msg["entities.ofd"]
    assert "zip bomb" in msg["bomb.ofd"]
    assert all("Traceback" not in m for m in msg.values())
    assert c.knowledge_bases.info(KB, principal=LOCAL_ADMIN) == before


def test_reader_bounds_each_part_itself(tmp_path, monkeypatch):
    """Past the archive check (a caller that skips it), a part over the reader's own cap is refused unread."""
    import ingest.ofd as ofd
    notice(tmp_path / "n.ofd")
    monkeypatch.setattr(ofd, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(ParseError, match="declares"):
        read_ofd(str(tmp_path / "n.ofd"))


def test_load_error_names_the_file(tmp_path):
    _zip(tmp_path / "x.ofd", {"mimetype": "application/zip"})
    with pytest.raises(LoadError) as exc:
        list(load_file(tmp_path / "x.ofd", limits=IngestSettings()))
    assert str(tmp_path / "x.ofd") in str(exc.value) and "no OFD.xml" in str(exc.value)


WINDOWS = [["序号", "受理窗口", "咨询电话"]] + [[str(i), f"第{i}受理窗口", f"0571-8800{i:04d}"] for i in range(1, 31)]


@pytest.mark.parametrize("repeat_header", [False, True])
def test_a_grid_running_over_the_page_break_is_one_table(tmp_path, repeat_header):
    """The rows on the next page go on under the first page's header (one the producer repeated is read once), so
    the chunker reads one table and puts its header on every piece."""
    from ofd_writer import BODY, BOTTOM, PITCH, OfdWriter
    w = OfdWriter()
    w.paragraph("四、受理窗口")
    while w.y < BOTTOM - 12 * BODY * PITCH:
        w.paragraph("各区政务服务中心均可受理，窗口如下。")
    first = int((BOTTOM - w.y) // (BODY * PITCH))
    w.grid(WINDOWS[:first], [0, 20, 90])
    if repeat_header:
        w.new_page()
        w.grid(WINDOWS[:1] + WINDOWS[first:], [0, 20, 90])
    else:
        w.grid(WINDOWS[first:], [0, 20, 90])
    w.paragraph("五、办理地点")
    w.save(tmp_path / "windows.ofd")
    doc = read_ofd(str(tmp_path / "windows.ofd"))
    tables = [b for b in doc.blocks if b.text.startswith("| ")]
    assert len(tables) == 1 and tables[0].text == markdown_table(WINDOWS), [t.text[:60] for t in tables]
    assert tables[0].page == 1 and doc.pages == 2 and doc.blocks[-1].text == "五、办理地点"
