"""Tables become Markdown (header, rule, rows); the chunker keeps one whole when it fits and splits a long one at
rows with its header on every piece; a 办事指南's 申请材料 table in a .docx is retrieved and cited as that table."""
from __future__ import annotations

import pytest

from assistant.services.access import LOCAL_ADMIN
from conftest import make_container
from ingest.chunking import Block, chunk_blocks
from ingest.tables import html_rows, markdown_table, split_table, table_count

HEADER = "| 序号 | 材料名称 | 份数 | 备注 |"
RULE = "| --- | --- | --- | --- |"


def test_html_rows_repeat_colspans_and_markdown_escapes_pipes():
    html = ("<table><tr><th>事项</th><th colspan='2'>办理</th></tr>"
            "<tr><td>户籍<br/>迁入</td><td>5个工作日</td><td>a|b</td></tr><tr><td></td><td></td><td></td></tr></table>")
    rows = html_rows(html)
    assert rows[0] == ["事项", "办理", "办理"] and rows[1] == ["户籍 迁入", "5个工作日", "a|b"]
    assert markdown_table(rows) == "| 事项 | 办理 | 办理 |\n| --- | --- | --- |\n| 户籍 迁入 | 5个工作日 | a\\|b |"
    assert markdown_table([["", ""]]) == ""
    assert markdown_table([["材料", ""], ["身份证"]]) == "| 材料 |\n| --- |\n| 身份证 |"     # empty column dropped


def test_html_rows_repeat_rowspans_so_later_cells_keep_their_column():
    html = ("<table><tr><th>序号</th><th>类别</th><th>申请材料</th><th>要求</th></tr>"
            "<tr><td>1</td><td rowspan='2'>身份证明</td><td>居民户口簿</td><td rowspan='3'>验原件</td></tr>"
            "<tr><td>2</td><td>居民身份证</td></tr><tr><td>3</td><td>房产证明</td><td>购房合同</td></tr>"
            "<tr><td rowspan='2' colspan='2'>备注</td><td>复印件加盖公章</td><td>-</td></tr><tr></tr></table>")
    assert html_rows(html) == [["序号", "类别", "申请材料", "要求"], ["1", "身份证明", "居民户口簿", "验原件"],
                               ["2", "身份证明", "居民身份证", "验原件"], ["3", "房产证明", "购房合同", "验原件"],
                               ["备注", "备注", "复印件加盖公章", "-"], ["备注", "备注"]]


def test_docx_merged_cells_are_repeated_into_the_cells_they_cover(tmp_path):
    """python-docx merges as Word does; unstructured's HTML carries the rowspan, which must not shift 居民身份证
    under 类别."""
    import docx

    from ingest.loaders import load_file
    rows = [["序号", "类别", "申请材料", "要求"], ["1", "身份证明", "居民户口簿", "验原件"],
            ["2", "", "居民身份证", "验原件"], ["备注", "材料均须提供原件", "", ""]]
    d = docx.Document()
    d.add_paragraph("二、申请材料")
    table = d.add_table(rows=len(rows), cols=4)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            table.cell(i, j).text = value
    table.cell(1, 1).merge(table.cell(2, 1))
    table.cell(3, 1).merge(table.cell(3, 3))
    d.save(tmp_path / "merged.docx")
    (doc,) = load_file(tmp_path / "merged.docx")
    assert markdown_table([rows[0], rows[1], ["2", "身份证明", "居民身份证", "验原件"],
                           ["备注"] + ["材料均须提供原件"] * 3]) in doc.text


def _rows(n):
    return [f"| {i} | 材料{i}：申请人居民身份证复印件 | 原件1份 | 验原件 |" for i in range(1, n + 1)]


def test_small_table_stays_whole_in_its_section():
    table = "\n".join([HEADER, RULE, *_rows(3)])
    chunks = chunk_blocks([Block("一、申请材料"), Block("申请人应当提交下列材料："), Block(table),
                           Block("二、办理时限"), Block("自受理之日起5个工作日内办结。")], max_chars=300, min_chars=40)
    texts = {tuple(c.heading_path): c.text for c in chunks}
    material = texts[("一、申请材料",)]
    assert material == "申请人应当提交下列材料：\n" + table          # the lead-in joins it, the table is whole
    assert texts[("二、办理时限",)] == "自受理之日起5个工作日内办结。"
    assert table_count([material]) == 1


def test_long_table_is_split_at_rows_with_the_header_repeated():
    rows = _rows(30)
    chunks = chunk_blocks([Block("一、申请材料"), Block("\n".join([HEADER, RULE, *rows]))], max_chars=300)
    assert len(chunks) > 3
    for c in chunks:
        lines = c.text.split("\n")
        assert lines[:2] == [HEADER, RULE] and len(c.text) <= 300 and c.heading_path == ["一、申请材料"]
    assert [ln for c in chunks for ln in c.text.split("\n")[2:]] == rows          # every row once, in order
    # re-chunked from its stored pieces (reindex joins the chunk texts, one Block per line): the same pieces
    stored = "\n".join(c.text for c in chunks)
    again = chunk_blocks([Block("一、申请材料")] + [Block(ln) for ln in stored.split("\n")], max_chars=300)
    assert [c.text for c in again] == [c.text for c in chunks]


def test_a_row_longer_than_a_chunk_is_cut_under_the_header():
    long_row = "| 1 | " + "申请人应当如实填写申请表并提交身份证明材料。" * 20 + " | 1份 | 无 |"
    pieces = chunk_blocks([Block("\n".join([HEADER, RULE, long_row]))], max_chars=200)
    assert len(pieces) > 1 and all(p.text.startswith(HEADER + "\n" + RULE) and len(p.text) <= 200 for p in pieces)
    assert "".join(p.text.split("\n", 2)[2] for p in pieces).replace(" ", "") == long_row.replace(" ", "")


def test_lines_that_only_look_like_rows_stay_text():
    chunks = chunk_blocks([Block("| 注意 |"), Block("本办法自发布之日起施行。")])
    assert chunks[0].text == "| 注意 |\n本办法自发布之日起施行。"
    assert split_table([HEADER, RULE], 100) == [HEADER + "\n" + RULE]


GUIDE_TITLE = "示范市户籍迁入登记办事指南"
MATERIALS = [["序号", "申请材料", "份数", "要求"],
             ["1", "居民户口簿", "原件1份", "验原件"],
             ["2", "居民身份证", "原件1份", "验原件"],
             ["3", "房屋所有权证或不动产权证书", "复印件1份", "核对原件"],
             ["4", "婚姻状况证明", "复印件1份", "夫妻投靠时提供"]]


def write_guide(path):
    import docx
    d = docx.Document()
    d.add_heading(GUIDE_TITLE, 1)
    d.add_paragraph("一、事项名称")
    d.add_paragraph("本市户籍迁入登记（投靠、购房落户）。")
    d.add_paragraph("二、申请材料")
    table = d.add_table(rows=len(MATERIALS), cols=len(MATERIALS[0]))
    for i, row in enumerate(MATERIALS):
        for j, value in enumerate(row):
            table.cell(i, j).text = value
    d.add_paragraph("三、办理时限")
    d.add_paragraph("自受理之日起5个工作日内办结，材料齐全的当场受理。")
    d.add_paragraph("四、办理地点")
    d.add_paragraph("户籍所在地派出所户籍窗口，工作日上午九时至下午五时。")
    d.save(path)
    return path


@pytest.fixture(scope="module")
def guide_kb(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    c = make_container(root / "data")
    report = c.knowledge_bases.ingest_paths("guides", [write_guide(root / "guide.docx")], principal=LOCAL_ADMIN)
    assert report.ok, report.to_dict()
    return c, report


def test_docx_table_is_one_markdown_chunk_under_its_heading(guide_kb):
    c, report = guide_kb
    r = report.results[0]
    assert r.title == GUIDE_TITLE and "1 table" in r.how
    chunks = c.knowledge_bases.document("guides", r.doc_id, with_chunks=True, principal=LOCAL_ADMIN)["chunks"]
    table = [ch for ch in chunks if ch["text"].startswith("| 序号 |")]
    assert len(table) == 1 and table[0]["metadata"]["heading"] == f"《{GUIDE_TITLE}》二、申请材料"
    assert table[0]["text"] == markdown_table(MATERIALS)


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])   # the unit profile embeds by hashing: dense is a toy
def test_question_about_materials_retrieves_and_cites_the_table(guide_kb, mode):
    c, _ = guide_kb
    hits = c.search.search("申请材料有哪些", ["guides"], mode=mode, top_k=3, principal=LOCAL_ADMIN).hits
    assert hits and hits[0].text.startswith("| 序号 | 申请材料 |"), [h.text[:30] for h in hits]
    assert "房屋所有权证或不动产权证书" in hits[0].text


def test_answer_cites_the_table_chunk(guide_kb):
    c, _ = guide_kb
    c.llm.replies.append("需要提交居民户口簿、居民身份证和房屋所有权证或不动产权证书[1]。")
    answer = c.qa.ask("申请材料有哪些？", ["guides"], principal=LOCAL_ADMIN)
    assert not answer.refused, answer.answer
    cited = [x for x in answer.citations if x.cited]
    assert cited and cited[0].text.startswith("| 序号 | 申请材料 |"), [x.text[:30] for x in answer.citations]
