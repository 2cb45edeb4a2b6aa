"""Ruled tables in text-layer PDFs (#16 part 3) become Markdown tables, as .docx/.xlsx/.ofd tables do: one
chunk when they fit, split at rows with the header repeated when long, their cells nowhere else in the page
text, offsets and pages right; a 办事指南's 申请材料 table is what "申请材料有哪些" retrieves and cites."""
from __future__ import annotations

import time

import pytest

from assistant.services.access import LOCAL_ADMIN
from conftest import make_container
from ingest.chunking import Block, Chunk
from ingest.tables import markdown_table
from test_positions import squeeze, table_span_rows
from test_tables import GUIDE_TITLE, MATERIALS

pytest.importorskip("reportlab")
pytest.importorskip("pdfplumber")

FONT = "STSong-Light"          # an Adobe CID font: reportlab needs no font file, the PDF names it
WINDOWS = [["序号", "受理窗口", "地址", "咨询电话"]] + [
    [str(i), f"第{i}受理窗口", f"示范市滨江区江南大道{100 + i}号政务服务中心", f"0571-8800{i:04d}"] for i in range(1, 41)]


def guide_pdf(path, repeat_header: bool = False):
    """A 办事指南: the 申请材料 table (fits a chunk) on page 1, a 40-row 受理窗口 table running onto page 2 (its
    header repeated there by the PDF or not), no space under it before the next heading."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    body = ParagraphStyle("body", fontName=FONT, fontSize=11, leading=16, wordWrap="CJK", spaceAfter=8)
    title = ParagraphStyle("title", parent=body, fontSize=16, leading=22, alignment=1, spaceAfter=14)

    def table(rows, widths, repeat=0):
        t = Table(rows, colWidths=widths, repeatRows=repeat)
        t.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), FONT, 10),
                               ("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))     # ruled: a bordered table
        return t
    para = [Paragraph(t, body) for t in ("一、事项名称", "本市户籍迁入登记（投靠、购房落户）。", "二、申请材料",
                                         "申请人应当提交下列材料：", "三、办理时限",
                                         "自受理之日起5个工作日内办结，材料齐全的当场受理。", "四、受理窗口",
                                         "各区政务服务中心均可受理，窗口如下：", "五、办理地点",
                                         "户籍所在地派出所户籍窗口，工作日上午九时至下午五时。")]
    story = [Paragraph(GUIDE_TITLE, title), *para[:4], table(MATERIALS, [40, 170, 80, 110]), Spacer(1, 10),
             *para[4:8], table(WINDOWS, [30, 80, 220, 90], repeat=int(repeat_header)), *para[8:]]
    SimpleDocTemplate(str(path), pagesize=A4).build(story)
    return path


def window_chunks(chunks):
    return [ch for ch in chunks if "| 序号 | 受理窗口 |" in ch["text"]]


def table_lines(text: str) -> list[str]:
    return text[text.index("| 序号"):].split("\n")        # a lead-in may have joined the first piece


@pytest.fixture(scope="module")
def guide_kb(tmp_path_factory):
    root = tmp_path_factory.mktemp("pdf-tables")
    c = make_container(root / "data")
    report = c.knowledge_bases.ingest_paths("guides", [guide_pdf(root / "guide.pdf")], principal=LOCAL_ADMIN)
    assert report.ok, report.to_dict()
    (r,) = report.results
    chunks = c.store.catalog.document_chunks("guides", r.doc_id)
    full = c.originals.passage("guides", r.doc_id, principal=LOCAL_ADMIN)["text"]
    return c, r, chunks, full


def test_materials_table_is_one_markdown_chunk_on_its_page(guide_kb):
    _, r, chunks, _ = guide_kb
    assert r.title == GUIDE_TITLE and r.how == ["text layer", "2 tables"], r.how
    (table,) = [ch for ch in chunks if "| 序号 | 申请材料 |" in ch["text"]]
    assert table["text"].endswith(markdown_table(MATERIALS))          # the lead-in may have joined it
    assert table["metadata"]["heading"] == f"《{GUIDE_TITLE}》二、申请材料" and table["metadata"]["pages"] == [1]


def test_long_table_is_split_with_its_header_repeated_across_the_page_break(guide_kb):
    _, _, chunks, full = guide_kb
    pieces = window_chunks(chunks)
    header, rows = markdown_table(WINDOWS).split("\n")[:2], markdown_table(WINDOWS).split("\n")[2:]
    assert len(pieces) > 3 and pieces[1]["text"].split("\n")[:2] == header
    assert all(table_lines(p["text"])[:2] == header for p in pieces)
    assert [ln for p in pieces for ln in table_lines(p["text"])[2:]] == rows      # every row once, in order
    assert pieces[0]["metadata"]["pages"] == [1] and pieces[-1]["metadata"]["pages"] == [2]
    assert all(p["metadata"]["heading"] == f"《{GUIDE_TITLE}》四、受理窗口" for p in pieces)
    held = [table_span_rows(full, Chunk(p["text"], [], 0, start=p["metadata"]["offsets"][0],
                                        end=p["metadata"]["offsets"][1])) for p in pieces]
    assert [r for piece in held for r in piece] == rows                           # offsets hold the rows


def test_page_text_outside_the_tables_does_not_repeat_their_cells(guide_kb):
    _, _, chunks, full = guide_kb
    text = [ch for ch in chunks if "| --- |" not in ch["text"] and "passage" not in ch["metadata"]]
    for cell in ("房屋所有权证或不动产权证书", "第12受理窗口", "0571-88000040", "受理窗口 | 地址"):
        assert not any(cell in ch["text"] for ch in text), cell
    assert full.count("房屋所有权证或不动产权证书") == 1 and full.count("第40受理窗口") == 1
    headings = {ch["metadata"].get("heading") for ch in text}
    assert f"《{GUIDE_TITLE}》五、办理地点" in headings          # the heading right under the long table
    for ch in chunks:
        if "offsets" in ch["metadata"] and ch not in window_chunks(chunks):
            s, e = ch["metadata"]["offsets"]
            assert squeeze(ch["text"]) == squeeze(full[s:e]), ch["text"]


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])   # the unit profile embeds by hashing: dense is a toy
def test_question_about_materials_retrieves_and_cites_the_pdf_table(guide_kb, mode):
    c, r, _, _ = guide_kb
    hits = c.search.search("申请材料有哪些", ["guides"], mode=mode, top_k=3, principal=LOCAL_ADMIN).hits
    assert hits and "| 序号 | 申请材料 |" in hits[0].text, [h.text[:30] for h in hits]
    assert hits[0].doc_id == r.doc_id and "房屋所有权证或不动产权证书" in hits[0].text
    c.llm.replies.append("需要提交居民户口簿、居民身份证和房屋所有权证或不动产权证书[1]。")
    answer = c.qa.ask("申请材料有哪些？", ["guides"], principal=LOCAL_ADMIN)
    cited = [x for x in answer.citations if x.cited]
    assert not answer.refused and cited and "| 序号 | 申请材料 |" in cited[0].text
    assert cited[0].page == 1 and cited[0].pages == [1]


def test_a_header_the_pdf_repeats_on_the_next_page_is_read_once(tmp_path):
    from ingest.loaders import load_file
    (doc,) = load_file(guide_pdf(tmp_path / "repeated.pdf", repeat_header=True))
    page2 = [b.text for b in doc.blocks if b.page == 2]
    assert page2[0].startswith("| ") and "受理窗口 | 地址" not in page2[0]      # rows only: the same table
    assert doc.text.count("| 序号 | 受理窗口 | 地址 | 咨询电话 |") == 1 and doc.how == ["text layer", "2 tables"]


def test_an_element_run_into_a_table_keeps_only_its_lines_outside_it(tmp_path):
    """A tight layout makes the partitioner group a table's last cells with the heading under it: the
    heading's lines stay, the cells go."""
    import pdfplumber

    from ingest.pdf_tables import PdfItem, with_tables
    path = str(guide_pdf(tmp_path / "guide.pdf"))
    with pdfplumber.open(path) as pdf:
        page = pdf.pages[1]
        (table,) = page.find_tables()
        below = [w for w in page.extract_words() if w["top"] > table.bbox[3]]
        w, h = page.width, page.height
    box = (table.bbox[0] / w, (table.bbox[3] - 15) / h, 0.9, below[-1]["bottom"] / h)
    run_together = Block("40 第40受理窗口 五、办理地点 户籍所在地派出所户籍窗口，工作日上午九时至下午五时。", page=2)
    blocks, note = with_tables(path, [PdfItem(run_together, box)], {2: 100}, time.monotonic() + 60)
    assert note == "" and [b.page for b in blocks] == [2, 2]
    assert "| --- |" in blocks[0].text and "| 40 | 第40受理窗口 |" in blocks[0].text
    assert blocks[1].text == "五、办理地点\n户籍所在地派出所户籍窗口，工作日上午九时至下午五时。"


def test_crowded_pages_and_the_time_share_are_said_not_searched(tmp_path):
    from ingest.pdf_tables import MAX_PAGE_OBJECTS, PdfItem, with_tables
    items = [PdfItem(Block("申请人应当提交下列材料：", page=1), None)]
    path = str(guide_pdf(tmp_path / "guide.pdf"))
    blocks, note = with_tables(path, items, {1: MAX_PAGE_OBJECTS + 1, 2: 50}, time.monotonic() - 1)
    assert blocks == [items[0].block]
    assert note == (f"tables not looked for on page 1 (over {MAX_PAGE_OBJECTS:,} objects and characters), "
                    "page 2 (50% of ingest.parse_timeout_s had passed): their cells read as text")


# a 申请材料 table with merged cells: 类别 over two rows twice, 要求 over two rows, a 2×2 block (份数 and 要求 of
# two rows), a 备注 across four columns; "" where reportlab draws the spanning cell's neighbours
MERGED = [["序号", "类别", "申请材料", "份数", "要求"],
          ["1", "身份证明", "居民户口簿", "原件1份", "验原件后退回"],
          ["2", "", "居民身份证", "原件1份", ""],
          ["3", "房产证明", "房屋所有权证或不动产权证书", "复印件各1份，核对原件", ""],
          ["4", "", "购房合同", "", ""],
          ["备注", "材料均须提供原件，复印件加盖公章", "", "", ""]]
MERGED_SPANS = [((1, 1), (1, 2)), ((4, 1), (4, 2)), ((1, 3), (1, 4)), ((3, 3), (4, 4)), ((1, 5), (4, 5))]
MERGED_READ = [["序号", "类别", "申请材料", "份数", "要求"],
               ["1", "身份证明", "居民户口簿", "原件1份", "验原件后退回"],
               ["2", "身份证明", "居民身份证", "原件1份", "验原件后退回"],
               ["3", "房产证明", "房屋所有权证或不动产权证书", "复印件各1份，核对原件", "复印件各1份，核对原件"],
               ["4", "房产证明", "购房合同", "复印件各1份，核对原件", "复印件各1份，核对原件"],
               ["备注"] + ["材料均须提供原件，复印件加盖公章"] * 4]


def merged_pdf(path):
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    body = ParagraphStyle("body", fontName=FONT, fontSize=11, leading=16, wordWrap="CJK", spaceAfter=8)
    t = Table(MERGED, colWidths=[40, 60, 150, 110, 80])
    t.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), FONT, 10),
                           ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                           ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),        # a spanning cell's text mid-span
                           *[("SPAN", a, b) for a, b in MERGED_SPANS]]))
    story = [Paragraph(p, body) for p in (GUIDE_TITLE, "二、申请材料", "申请人应当提交下列材料：")] + [t]
    story.append(Paragraph("三、办理时限", body))
    SimpleDocTemplate(str(path), pagesize=A4).build(story)
    return path


def test_a_merged_cell_is_repeated_into_every_row_and_column_it_covers(tmp_path):
    """pdfplumber leaves the slots a merged cell covers empty: each gets the cell's text, so a row read alone
    (a chunk split at rows) still says which 类别 its 申请材料 belongs to."""
    from ingest.loaders import load_file
    (doc,) = load_file(merged_pdf(tmp_path / "merged.pdf"))
    (table,) = [b.text for b in doc.blocks if b.text.startswith("| 序号")]
    assert table == markdown_table(MERGED_READ)
    assert doc.how == ["text layer", "1 table"] and doc.text.count("购房合同") == 1


# a 申请材料 table a page break cuts inside two merged cells, as Word and LibreOffice print one: 类别 房产证明 runs
# from row 4 over the break (its text on page 1, an empty box at the top of page 2); 备注 of row 6 is a one-row
# cell, and the one-row 备注 under it at the top of page 2 is empty and stays empty
CUT_COLUMNS = ["序号", "类别", "申请材料", "备注"]
CUT_PAGES = [  # rows per page, (column, first row, last row) of each merged cell on that page
    ([["1", "身份证明", "居民户口簿", ""], ["2", "", "居民身份证", ""], ["3", "", "户口迁移证", ""],
      ["4", "房产证明", "不动产权证书", ""], ["5", "", "购房合同", ""], ["6", "", "购房发票", "需原件"]],
     [(1, 0, 2), (1, 3, 5)]),
    ([["7", "", "契税完税凭证", ""], ["8", "", "房屋测绘报告", ""], ["9", "其他材料", "申请表", ""],
      ["10", "", "委托书", "代办时提交"]],
     [(1, 0, 1), (1, 2, 3)]),
]
CUT_READ = [CUT_COLUMNS] + [[n, kind, name, note] for n, kind, name, note in (
    ("1", "身份证明", "居民户口簿", ""), ("2", "身份证明", "居民身份证", ""), ("3", "身份证明", "户口迁移证", ""),
    ("4", "房产证明", "不动产权证书", ""), ("5", "房产证明", "购房合同", ""), ("6", "房产证明", "购房发票", "需原件"),
    ("7", "房产证明", "契税完税凭证", ""), ("8", "房产证明", "房屋测绘报告", ""), ("9", "其他材料", "申请表", ""),
    ("10", "其他材料", "委托书", "代办时提交"))]


def cut_cell_pdf(path, repeat_header: bool):
    """Drawn rule by rule (reportlab's Table never splits a spanning cell): a merged cell has no rules inside,
    its text at its top; the table is closed at the foot of page 1 and opened again at the head of page 2."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    xs, row_h = [60, 100, 180, 380, 500], 24
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for n, (rows, spans) in enumerate(CUT_PAGES):
        if n:
            pdf.showPage()
        pdf.setFont(FONT, 11)
        if n == 0:
            pdf.drawString(60, 790, "二、申请材料")
        rows = ([CUT_COLUMNS] if n == 0 or repeat_header else []) + rows
        head = len(rows) - len(CUT_PAGES[n][0])
        spans = [(col, a + head, b + head) for col, a, b in spans]
        top = 760
        bottom = top - row_h * len(rows)
        for x in xs:
            pdf.line(x, top, x, bottom)
        pdf.line(xs[0], top, xs[-1], top)
        pdf.line(xs[0], bottom, xs[-1], bottom)
        for r in range(len(rows) - 1):            # the rule under row r, left out inside a merged cell
            y = top - row_h * (r + 1)
            for col in range(len(xs) - 1):
                if not any(c == col and a <= r < b for c, a, b in spans):
                    pdf.line(xs[col], y, xs[col + 1], y)
        for r, row in enumerate(rows):
            for col, text in enumerate(row):
                if text:
                    pdf.drawString(xs[col] + 4, top - row_h * r - 16, text)
        pdf.drawString(290, 40, f"- {n + 1} -")
    pdf.save()
    return path


@pytest.mark.parametrize("repeat_header", [False, True])
def test_a_merged_cell_cut_by_the_page_break_carries_its_text_onto_the_next_page(tmp_path, repeat_header):
    from ingest.loaders import load_file
    (doc,) = load_file(cut_cell_pdf(tmp_path / "cut.pdf", repeat_header))
    tables = [b for b in doc.blocks if b.text.startswith("| ")]
    assert [b.page for b in tables] == [1, 2] and doc.how == ["text layer", "2 tables"], doc.how
    read = markdown_table(CUT_READ).split("\n")
    assert tables[0].text.split("\n") == read[:2 + 6]
    page2 = tables[1].text.split("\n")
    assert page2[-4:] == read[-4:]                 # 房产证明 on rows 7 and 8; row 7's 备注 still empty
    assert doc.text.count("房屋测绘报告") == 1


# tables ruled with horizontal lines only: a 三线表 (one of its cells wraps onto a second line) and a table with a
# rule under every row, both the same width as the 公文's 版记 under them, which is no table
RULED_MATERIALS = [["序号", "申请材料", "份数", "备注"], ["1", "居民户口簿", "原件1份", "验原件后退回"],
                   ["2", "居民身份证", "复印件1份", ""],
                   ["3", "房屋所有权证或不动产权证书（已办理不动产登记的提供不动产权证书）", "复印件1份", "核对原件"],
                   ["4", "购房合同", "原件1份", ""]]
RULED_WINDOWS = [["序号", "受理窗口", "咨询电话"]] + [
    [str(i), f"第{i}受理窗口", f"0571-8800{i:04d}"] for i in range(1, 5)]


def rules_only_pdf(path):
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    body = ParagraphStyle("body", fontName=FONT, fontSize=11, leading=16, wordWrap="CJK", spaceAfter=8)
    cell = ParagraphStyle("cell", fontName=FONT, fontSize=10, leading=13, wordWrap="CJK")
    three = [row[:1] + [Paragraph(row[1], cell) if len(row[1]) > 15 else row[1]] + row[2:] for row in RULED_MATERIALS]
    three_line = Table(three, colWidths=[40, 170, 80, 110])
    three_line.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), FONT, 10), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                    ("LINEABOVE", (0, 0), (-1, 0), 1.2, colors.black),
                                    ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
                                    ("LINEBELOW", (0, -1), (-1, -1), 1.2, colors.black)]))
    every_row = Table(RULED_WINDOWS, colWidths=[40, 250, 110])
    every_row.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), FONT, 10),
                                   ("LINEABOVE", (0, 0), (-1, 0), 0.5, colors.black),
                                   ("LINEBELOW", (0, 0), (-1, -1), 0.5, colors.black)]))
    imprint = Table([["抄送：市政府办公厅，各区数据局。", ""], ["上海市数据局办公室", "2025年3月10日印发"]],
                    colWidths=[250, 150])
    imprint.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), FONT, 11), ("SPAN", (0, 0), (1, 0)),
                                 ("ALIGN", (1, 1), (1, 1), "RIGHT"),
                                 ("LINEABOVE", (0, 0), (-1, 0), 1.2, colors.black),
                                 ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
                                 ("LINEBELOW", (0, -1), (-1, -1), 1.2, colors.black)]))
    story = [Paragraph(t, body) for t in ("二、申请材料", "申请人应当提交下列材料：")] + [
        three_line, Paragraph("三、受理窗口", body), every_row, Paragraph("四、办理时限", body),
        Paragraph("自受理之日起5个工作日内办结。", body), Spacer(1, 30), imprint]
    SimpleDocTemplate(str(path), pagesize=A4).build(story)
    return path


def test_tables_ruled_with_horizontal_lines_only_are_tables_and_a_gongwen_imprint_is_not(tmp_path):
    from ingest.loaders import load_file
    (doc,) = load_file(rules_only_pdf(tmp_path / "rules.pdf"))
    tables = [b.text for b in doc.blocks if b.text.startswith("| ")]
    assert tables == [markdown_table(RULED_MATERIALS), markdown_table(RULED_WINDOWS)]   # the wrapped cell whole
    assert doc.how == ["text layer", "2 tables"]
    text = [b.text for b in doc.blocks if not b.text.startswith("| ")]
    assert "三、受理窗口" in text and "自受理之日起5个工作日内办结。" in text
    assert "抄送：市政府办公厅，各区数据局。" in text and "2025年3月10日印发" in doc.text
    assert doc.text.count("居民户口簿") == 1 and doc.text.count("第3受理窗口") == 1
