"""Loaders end to end through the pipeline: encodings (UTF-8 with BOM, GBK, GB18030), .md, .html, .docx, .jsonl
records; every bad input is a failure naming the file (file:line for JSONL), the batch goes on, and what is
already stored stays as it was."""
from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from assistant.services.access import LOCAL_ADMIN
from conftest import make_container
from ingest.loaders import LoadError, decode_text, discover, load_file

KB = "loaders"

GBK_TEXT = "示范市养老服务补贴办法\n第一条 年满八十周岁的老年人可以申请高龄津贴。\n第二条 高龄津贴按月发放。"
# 䶮 (U+4DAE) and 𠀀 (U+20000) exist in GB18030 but not in GBK
GB18030_TEXT = "示范市生僻字登记规定\n第一条 姓名含有生僻字䶮或𠀀的，户籍窗口应当手工录入并核对。"
BOM_TEXT = "公积金提取指南\n职工购房可以提取住房公积金，提取时应当提交购房合同。"
MD_TEXT = "# 示范市停车管理办法\n\n## 一、收费标准\n\n路内停车每小时收费五元，夜间免费。\n\n## 二、监督管理\n\n违规收费可以拨打热线投诉。\n"
HTML_TEXT = ("<html><head><title>垃圾分类</title></head><body><h1>示范市垃圾分类通知</h1>"
             "<p>居民应当将厨余垃圾投放到绿色垃圾桶。</p><p>大件垃圾需要预约清运。</p></body></html>")
JSONL_LINES = [
    json.dumps({"id": "rec-marriage", "title": "婚姻登记须知", "text": "结婚登记需要双方当事人共同到婚姻登记机关办理。",
                "metadata": {"agency": "示范市民政局", "status": "现行有效"}}, ensure_ascii=False),
    '{"id": "rec-broken", "text": "缺少右括号"',
    json.dumps({"id": "rec-notext", "title": "没有正文"}, ensure_ascii=False),
    "",
    json.dumps({"id": "rec-passport", "title": "护照办理指南", "text": "申请普通护照应当提交近期免冠照片和居民身份证。"},
               ensure_ascii=False),
]


def write_good_files(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "gbk.txt").write_bytes(GBK_TEXT.encode("gbk"))
    (root / "gb18030.txt").write_bytes(GB18030_TEXT.encode("gb18030"))
    (root / "bom.txt").write_bytes(b"\xef\xbb\xbf" + BOM_TEXT.encode("utf-8"))
    (root / "parking.md").write_text(MD_TEXT, encoding="utf-8")
    (root / "garbage.html").write_text(HTML_TEXT, encoding="utf-8")
    import docx
    d = docx.Document()
    d.add_heading("电动自行车登记指南", 1)
    d.add_paragraph("电动自行车应当在购买之日起三十日内办理登记。")
    d.add_paragraph("办理登记不收取费用。")
    d.save(root / "ebike.docx")
    (root / "records.jsonl").write_text("\n".join(JSONL_LINES) + "\n", encoding="utf-8")
    return root


def write_bad_files(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "empty.txt").write_bytes(b"")
    (root / "corrupt.docx").write_bytes(os.urandom(4096))
    (root / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(2048))
    (root / "notes.xyz").write_text("unsupported", encoding="utf-8")
    return [root / "empty.txt", root / "corrupt.docx", root / "corrupt.pdf", root / "notes.xyz", root / "missing.txt"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("loaders")
    docs = write_good_files(root / "docs")
    c = make_container(root / "data")
    report = c.knowledge_bases.ingest_paths(KB, [docs], principal=LOCAL_ADMIN)
    return c, report, docs


def by_name(report):
    return {r.source.replace("\\", "/").rsplit("/", 1)[-1]: r for r in report.results}


def search_ids(c, query, mode="bm25"):
    return [h.doc_id for h in c.search.search(query, [KB], mode=mode, top_k=3, principal=LOCAL_ADMIN).hits]


def test_every_good_format_is_added(loaded):
    c, report, _ = loaded
    results = by_name(report)
    for name in ("gbk.txt", "gb18030.txt", "bom.txt", "parking.md", "garbage.html", "ebike.docx"):
        assert results[name].status == "added", (name, results[name].message)
        assert results[name].chunks >= 1
    assert results["records.jsonl:1"].status == "added" and results["records.jsonl:5"].status == "added"
    assert report.counts == {"added": 8, "failed": 2}


@pytest.mark.parametrize("name, query, snippet", [
    ("gbk.txt", "高龄津贴", "年满八十周岁的老年人可以申请高龄津贴"),
    ("gb18030.txt", "生僻字 手工录入", "姓名含有生僻字䶮或𠀀的"),
    ("bom.txt", "住房公积金 购房合同", "职工购房可以提取住房公积金"),
    ("parking.md", "路内停车 收费", "路内停车每小时收费五元"),
    ("garbage.html", "厨余垃圾", "居民应当将厨余垃圾投放到绿色垃圾桶"),
    ("ebike.docx", "电动自行车 登记", "电动自行车应当在购买之日起三十日内办理登记"),
])
def test_chinese_text_is_decoded_and_searchable(loaded, name, query, snippet):
    c, report, _ = loaded
    doc_id = by_name(report)[name].doc_id
    for mode in ("bm25", "dense"):
        hits = c.search.search(query, [KB], mode=mode, top_k=3, principal=LOCAL_ADMIN).hits
        assert hits and hits[0].doc_id == doc_id, (mode, [h.doc_id for h in hits])
    text = "\n".join(ch["text"] for ch in c.knowledge_bases.document(KB, doc_id, with_chunks=True,
                                                                     principal=LOCAL_ADMIN)["chunks"])
    assert snippet in text


def test_titles_and_structure(loaded):
    c, report, _ = loaded
    results = by_name(report)
    assert results["gbk.txt"].title == "示范市养老服务补贴办法"
    assert results["bom.txt"].title == "公积金提取指南"                 # the BOM is not part of the title
    assert results["parking.md"].title == "示范市停车管理办法"
    assert results["garbage.html"].title == "示范市垃圾分类通知"
    assert results["ebike.docx"].title == "电动自行车登记指南"
    md_chunks = c.knowledge_bases.document(KB, results["parking.md"].doc_id, with_chunks=True,
                                           principal=LOCAL_ADMIN)["chunks"]
    headings = [ch["metadata"]["heading"] for ch in md_chunks]
    assert headings == ["《示范市停车管理办法》一、收费标准", "《示范市停车管理办法》二、监督管理"]
    gbk_chunks = c.knowledge_bases.document(KB, results["gbk.txt"].doc_id, with_chunks=True,
                                            principal=LOCAL_ADMIN)["chunks"]
    assert [ch["metadata"]["article"] for ch in gbk_chunks] == ["第一条", "第二条"]


def test_jsonl_ids_metadata_and_bad_lines(loaded):
    c, report, docs = loaded
    results = by_name(report)
    good = c.knowledge_bases.document(KB, "rec-marriage", principal=LOCAL_ADMIN)
    assert good["title"] == "婚姻登记须知" and good["metadata"]["agency"] == "示范市民政局"
    assert c.knowledge_bases.document(KB, "rec-passport", principal=LOCAL_ADMIN)["state"] == "complete"
    assert search_ids(c, "婚姻登记")[0] == "rec-marriage"
    broken, notext = results["records.jsonl:2"], results["records.jsonl:3"]
    assert broken.status == notext.status == "failed"
    assert broken.source == f"{docs / 'records.jsonl'}:2" and "invalid JSON" in broken.message
    assert notext.source == f"{docs / 'records.jsonl'}:3" and "'text'" in notext.message
    ids = {d["doc_id"] for d in c.knowledge_bases.documents(KB, principal=LOCAL_ADMIN)}
    assert "rec-broken" not in ids and "rec-notext" not in ids


def _snapshot(c):
    info = c.knowledge_bases.info(KB, principal=LOCAL_ADMIN)
    queries = ["高龄津贴", "住房公积金", "厨余垃圾", "婚姻登记", "电动自行车"]
    return ({k: info[k] for k in ("documents", "chunks", "vectors", "version")},
            {q: [(h.chunk_id, round(h.score, 9)) for h in c.search.search(q, [KB], principal=LOCAL_ADMIN).hits]
             for q in queries})


def test_bad_inputs_fail_clearly_and_leave_the_store_intact(loaded, tmp_path):
    c, _, _ = loaded
    before = _snapshot(c)
    bad = write_bad_files(tmp_path / "bad")
    report = c.knowledge_bases.ingest_paths(KB, bad, principal=LOCAL_ADMIN)
    assert not report.ok and report.counts == {"failed": 5}
    messages = {r.source.rsplit("/", 1)[-1]: r.message for r in report.results}
    assert messages["empty.txt"] == "the file is empty"
    assert "cannot parse .docx" in messages["corrupt.docx"]
    assert "cannot parse .pdf" in messages["corrupt.pdf"]
    assert "unsupported file type .xyz" in messages["notes.xyz"]
    assert messages["missing.txt"] == "no such file or directory"
    assert {r.source for r in report.results} == {str(p) for p in bad}
    assert _snapshot(c) == before


def test_batch_goes_on_after_failures(tmp_path):
    c = make_container(tmp_path / "data")
    bad = write_bad_files(tmp_path / "bad")
    good = tmp_path / "zz_good.txt"
    good.write_bytes(GBK_TEXT.encode("gbk"))
    report = c.knowledge_bases.ingest_paths(KB, [*bad[:2], good, *bad[2:]], principal=LOCAL_ADMIN)
    assert [r.status for r in report.results].count("failed") == 5
    assert [r.status for r in report.results if r.source == good.name] == ["added"]     # readers see the name
    assert c.knowledge_bases.info(KB, principal=LOCAL_ADMIN)["documents"] == 1


def test_folder_discovery_reports_unsupported_files(tmp_path):
    (tmp_path / "a.txt").write_text("x", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("y", encoding="utf-8")
    (tmp_path / "sub" / "c.exe").write_bytes(b"z")
    (tmp_path / ".hidden.txt").write_text("h", encoding="utf-8")
    files, problems = discover([tmp_path, tmp_path / "nope.txt"])
    assert [f.name for f in files] == ["a.txt", "b.md"]
    assert sorted(p.source.rsplit("/", 1)[-1] for p in problems) == ["c.exe", "nope.txt"]


def test_decode_text():
    assert decode_text(GBK_TEXT.encode("gbk"), "x") == GBK_TEXT
    assert decode_text(GB18030_TEXT.encode("gb18030"), "x") == GB18030_TEXT
    assert decode_text(b"\xef\xbb\xbf" + BOM_TEXT.encode("utf-8"), "x") == BOM_TEXT
    with pytest.raises(LoadError) as exc:
        list(load_file(__import__("pathlib").Path("/nonexistent/file.txt")))
    assert "/nonexistent/file.txt" in str(exc.value)


def test_cli_ingest_reports_failures_with_exit_1_and_keeps_the_store(tmp_path):
    from assistant.cli.main import app
    runner = CliRunner()
    env = {"GOV_ASSISTANT_DATA_DIR": str(tmp_path / "data"), "GOV_ASSISTANT_PROFILE": "unit"}
    docs = write_good_files(tmp_path / "docs")
    (docs / "records.jsonl").unlink()                      # its bad lines would fail the first run
    first = runner.invoke(app, ["ingest", str(docs), "--kb", KB], env=env)
    assert first.exit_code == 0, first.output
    assert "added" in first.stdout and "failed" not in first.stdout

    def state():
        info = json.loads(runner.invoke(app, ["kb", "info", KB], env=env).stdout)
        hits = json.loads(runner.invoke(app, ["search", "高龄津贴", "--kb", KB, "--json"], env=env).stdout)
        return ({k: info[k] for k in ("documents", "chunks", "vectors")}, [(h["chunk_id"], h["score"]) for h in hits])

    before = state()
    assert before[0]["documents"] == 6 and before[1]
    bad = write_bad_files(tmp_path / "bad")
    result = runner.invoke(app, ["ingest", *map(str, bad), "--kb", KB], env=env)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for path in bad:
        assert path.name in result.stdout
    assert result.stdout.count("failed") >= 5
    assert state() == before
    as_json = runner.invoke(app, ["ingest", str(bad[0]), "--kb", KB, "--json"], env=env)
    assert as_json.exit_code == 1
    payload = json.loads(as_json.stdout)
    assert payload["ok"] is False and payload["results"][0]["message"] == "the file is empty"


WORK_POINTS_MD = """**某区数据局2025年工作要点**

2025年是“十四五”规划收官之年，区数据局将全面推进城市数字化转型。

---

### 一、夯实数据基础

1. **完善公共数据目录**。加快编制全区公共数据资源目录，推进目录动态更新。

2. **推进数据共享**。加强跨部门数据共享，提升共享时效。

### 二、深化数字治理

3. **建设城运平台**。完善区城运平台功能，强化事件闭环处置。

| 指标 | 目标 |
| --- | --- |
| 开放数据集 | 100个 |
"""


def test_markdown_keeps_ordered_numbers_and_bold_item_titles(tmp_path):
    # partition_md drops the "1." of an ordered list and the ** of a run-in item title; both must survive,
    # since 工作要点 items are cited by number and titled in bold
    path = tmp_path / "work_points.md"
    path.write_text(WORK_POINTS_MD, encoding="utf-8")
    doc = next(load_file(path))
    from ingest.chunking import chunk_blocks
    chunks = chunk_blocks(doc.blocks)
    by_path = {tuple(ch.heading_path): ch.text for ch in chunks}
    assert by_path[("一、夯实数据基础", "完善公共数据目录")].startswith("1. 完善公共数据目录。加快编制")
    assert by_path[("一、夯实数据基础", "推进数据共享")].startswith("2. 推进数据共享。")
    assert by_path[("二、深化数字治理", "建设城运平台")].startswith("3. 建设城运平台。")
    assert "开放数据集" in doc.text and "100个" in doc.text          # the table is kept
    assert all("**" not in ch.text and "---" not in ch.text for ch in chunks)


# --- password-protected files (#16, bad input) ------------------------------------------------------------

def locked_pdf(path, user_password: str = "secret", owner_password: str | None = None):
    """A one-page text PDF encrypted (AES-256); user_password '' gives one that opens without a password."""
    import io

    from pypdf import PdfReader, PdfWriter

    from ingest.parsers import tiny_pdf
    writer = PdfWriter()
    lines = ["Housing fund withdrawal guide", "Bring the purchase contract and your identity card."]
    writer.add_page(PdfReader(io.BytesIO(tiny_pdf(lines))).pages[0])
    writer.encrypt(user_password, owner_password, algorithm="AES-256")
    with open(path, "wb") as f:
        writer.write(f)
    return path


def locked_office(plain, path):
    """plain (.docx/.xlsx) encrypted as Office does (MS-OFFCRYPTO agile): an OLE container, not a zip."""
    from msoffcrypto.format.ooxml import OOXMLFile
    with open(plain, "rb") as f, open(path, "wb") as out:
        OOXMLFile(f).encrypt("secret", out)
    return path


def test_password_protected_files_fail_naming_the_file_and_leave_the_store_intact(tmp_path):
    import openpyxl

    from ingest.parsers import PASSWORD_PROTECTED, tiny_pdf
    c = make_container(tmp_path / "data")
    kbs = c.knowledge_bases
    guide = tmp_path / "guide.pdf"
    guide.write_bytes(tiny_pdf(["Housing fund withdrawal guide, first version."]))
    assert kbs.ingest_paths(KB, [guide], principal=LOCAL_ADMIN).ok
    before = [(ch["chunk_id"], ch["text"]) for d in kbs.documents(KB, principal=LOCAL_ADMIN)
              for ch in c.store.catalog.document_chunks(KB, d["doc_id"])]
    locked_pdf(guide)                                  # the same file, now locked: its stored version stays
    write_good_files(tmp_path / "src")
    wb = openpyxl.Workbook()
    wb.active.append(["事项", "责任单位"])
    wb.save(tmp_path / "src" / "plan.xlsx")
    files = [guide, locked_office(tmp_path / "src" / "ebike.docx", tmp_path / "locked.docx"),
             locked_office(tmp_path / "src" / "plan.xlsx", tmp_path / "locked.xlsx"),
             tmp_path / "src" / "gbk.txt", locked_pdf(tmp_path / "owner_only.pdf", "", "owner")]
    report = kbs.ingest_paths(KB, files, principal=LOCAL_ADMIN)
    status = {r.source.rsplit("/", 1)[-1]: (r.status, r.message) for r in report.results}
    for name in ("guide.pdf", "locked.docx", "locked.xlsx"):
        assert status[name] == ("failed", PASSWORD_PROTECTED), status
    assert status["gbk.txt"][0] == status["owner_only.pdf"][0] == "added"
    after = [(ch["chunk_id"], ch["text"]) for d in kbs.documents(KB, principal=LOCAL_ADMIN)
             for ch in c.store.catalog.document_chunks(KB, d["doc_id"]) if ch["chunk_id"] in dict(before)]
    assert after == before and kbs.info(KB, principal=LOCAL_ADMIN)["documents"] == 3
    with pytest.raises(LoadError, match=rf"^{tmp_path}/locked\.docx: password-protected, cannot be read"):
        list(load_file(tmp_path / "locked.docx"))
