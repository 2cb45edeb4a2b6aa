"""OCR of scanned pages (issue #16): reading order and the confidence filter on hand-made boxes, then the real
engine (RapidOCR, the `ocr` extra) on small generated pages: a scanned PDF is searchable, a mixed PDF keeps its
text page and OCRs the other, a two-column page reads in column order, a red seal leaves no garbage line, and
oversized or over-long input is refused with the file named."""
from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

import pytest

from assistant.services.access import LOCAL_ADMIN
from assistant.settings import IngestSettings
from conftest import make_container
from ingest.loaders import LoadError, load_file
from ingest.ocr_layout import Box, column_gap, page_text

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


# --- reading order on boxes (no engine) -------------------------------------------------------------------------

def _row(y: float, x0: float, x1: float, text: str, score: float = 0.98) -> Box:
    return Box(x0, y, x1, y + 30, text, score)


def test_boxes_on_one_line_join_and_paragraphs_break_at_indent_and_short_lines():
    boxes = [_row(100, 160, 1000, "第一段第一行文字，"), _row(142, 100, 600, "第一段结束。"),
             _row(184, 160, 900, "第二段开头，"), _row(184, 910, 1000, "同一行"), _row(226, 100, 1000, "继续写完。")]
    assert page_text(boxes, 0.75).paragraphs == ["第一段第一行文字，第一段结束。", "第二段开头，同一行继续写完。"]


def test_two_columns_read_left_column_then_right_and_a_title_first():
    title = [_row(40, 300, 700, "示范市数据简报")]
    left = [_row(100 + 42 * i, 100, 480, f"左栏第{i}行") for i in range(5)]
    right = [_row(100 + 42 * i, 520, 900, f"右栏第{i}行") for i in range(5)]
    boxes = title + [b for pair in zip(left, right) for b in pair]       # the engine's row-by-row order
    text = page_text(boxes, 0.75)
    assert text.columns == 2
    joined = "".join(text.paragraphs)
    assert joined == "示范市数据简报" + "".join(f"左栏第{i}行" for i in range(5)) + \
        "".join(f"右栏第{i}行" for i in range(5))


def test_a_right_column_line_opening_with_punctuation_is_not_read_as_a_title():
    # the renderer (and 公文 typesetting) may start a line with "，": its box begins a character left of the gutter.
    # Read as a line across both columns it cut the left column in two (benchmarks/ocr_quality.py two-column page:
    # 1 - CER .932 → 1.000)
    left = [_row(100 + 42 * i, 100, 480, f"左栏第{i}行") for i in range(6)]
    right = [_row(100 + 42 * i, 520, 900, f"右栏第{i}行") for i in range(6)]
    right[3] = _row(100 + 42 * 3, 465, 900, "，右栏第3行")   # 35 px left of the gutter's middle (a character: 30)
    text = page_text([b for pair in zip(left, right) for b in pair], 0.75)
    assert text.columns == 2
    assert "".join(text.paragraphs) == "".join(f"左栏第{i}行" for i in range(6)) + \
        "".join(("，" if i == 3 else "") + f"右栏第{i}行" for i in range(6))


def test_label_value_rows_are_not_columns():
    boxes = [b for i in range(6) for b in (_row(100 + 42 * i, 100, 180, "姓名："), _row(100 + 42 * i, 600, 700, "张三"))]
    assert column_gap(boxes) is None


def test_low_confidence_boxes_are_dropped_and_counted():
    boxes = [_row(100, 100, 900, "正文内容清楚。"), _row(150, 600, 800, "巿敉据詈理", 0.41), _row(200, 100, 900, "落款。")]
    text = page_text(boxes, 0.75)
    assert text.dropped == 1 and "巿敉据詈理" not in "".join(text.paragraphs)


# --- the real engine on small generated pages -------------------------------------------------------------------

ocr_engine = pytest.mark.skipif(not FONT.exists(), reason="needs fonts-wqy-microhei to draw Chinese pages")


@pytest.fixture(scope="module")
def engine():
    pytest.importorskip("rapidocr_onnxruntime")
    pytest.importorskip("pypdfium2")


def page(lines: list[tuple[int, int, str]], size=(760, 260)):
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.truetype(str(FONT), 26)
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    for x, y, text in lines:
        d.text((x, y), text, font=font, fill="black")
    return img


NOTICE = [(40, 30, "示范市人民政府关于推进公共数据开放的通知"), (40, 90, "各区人民政府，市政府各委、办、局："),
          (92, 150, "为加快公共数据开放共享，现将有关事项通知如下。")]


def pdf_of(img) -> bytes:
    """An image-only PDF page, sized so the 200 dpi render gives the image back pixel for pixel."""
    buf = io.BytesIO()
    img.save(buf, "PDF", resolution=200)
    return buf.getvalue()


@ocr_engine
def test_scanned_pdf_is_ocrd_and_searchable(engine, tmp_path):
    (tmp_path / "scan.pdf").write_bytes(pdf_of(page(NOTICE)))
    c = make_container(tmp_path / "data")
    report = c.knowledge_bases.ingest_paths("ocr", [tmp_path / "scan.pdf"], principal=LOCAL_ADMIN)
    (result,) = report.results
    assert result.status == "added", result.message
    assert result.how[0].startswith("OCR 1 page")
    hits = c.search.search("公共数据开放", ["ocr"], mode="bm25", top_k=3, principal=LOCAL_ADMIN).hits
    assert hits and hits[0].doc_id == result.doc_id
    text = "\n".join(ch["text"] for ch in c.knowledge_bases.document("ocr", result.doc_id, with_chunks=True,
                                                                     principal=LOCAL_ADMIN)["chunks"])
    assert "各区人民政府，市政府各委、办、局：" in text and "现将有关事项通知如下" in text


def mixed_pdf(path):
    """Page 1 with a text layer, page 2 a scan of NOTICE."""
    from pypdf import PdfReader, PdfWriter

    from ingest.parsers import tiny_pdf
    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(tiny_pdf(["Text layer page about open data."]))).pages[0])
    writer.add_page(PdfReader(io.BytesIO(pdf_of(page(NOTICE)))).pages[0])
    with open(path, "wb") as f:
        writer.write(f)
    return path


@ocr_engine
def test_mixed_pdf_keeps_its_text_page_and_ocrs_the_scanned_one(engine, tmp_path):
    (doc,) = load_file(mixed_pdf(tmp_path / "mixed.pdf"))
    assert doc.how == ["OCR 1 of 2 pages"]
    assert [b.page for b in doc.blocks][0] == 1 and doc.blocks[0].text == "Text layer page about open data."
    ocr = [b.text for b in doc.blocks if b.page == 2]
    assert ocr[0] == "示范市人民政府关于推进公共数据开放的通知"
    assert all(b.page in (1, 2) for b in doc.blocks)


@ocr_engine
def test_two_column_image_reads_in_column_order(engine, tmp_path):
    left = ["左栏：数据开放目录", "按季度更新一次，", "由市数据局发布。"]
    right = ["右栏：共享申请材料", "包括申请表和说明，", "五个工作日内答复。"]
    lines = [(30, 30 + 50 * i, t) for i, t in enumerate(left)] + [(420, 30 + 50 * i, t) for i, t in enumerate(right)]
    page(lines, size=(780, 200)).save(tmp_path / "columns.png")
    (doc,) = load_file(tmp_path / "columns.png")
    text = "".join(b.text for b in doc.blocks)
    assert text.index("按季度更新") < text.index("由市数据局") < text.index("右栏") < text.index("五个工作日")
    assert doc.how == ["OCR 1 page"] and all(b.page == 1 for b in doc.blocks)


def stamp(img, cx: int, cy: int, r: int, text: str = "示范市数据管理局"):
    """A red seal: ring, star and text along the arc, multiplied over the page."""
    from PIL import Image, ImageChops, ImageDraw, ImageFont
    seal = Image.new("RGB", img.size, "white")
    d = ImageDraw.Draw(seal)
    red = (220, 30, 30)
    d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=red, width=6)
    d.polygon([(cx + r * 0.28 * math.cos(math.pi / 2 + k * 4 * math.pi / 5),
                cy - r * 0.28 * math.sin(math.pi / 2 + k * 4 * math.pi / 5)) for k in range(5)], fill=red)
    font = ImageFont.truetype(str(FONT), int(r * 0.3))
    for k, ch in enumerate(text):
        a = math.radians(210 - k * 240 / (len(text) - 1))
        glyph = Image.new("L", (font.size * 2, font.size * 2), 0)
        ImageDraw.Draw(glyph).text((font.size // 2, font.size // 2), ch, font=font, fill=255)
        glyph = glyph.rotate(math.degrees(a) - 90)
        seal.paste(Image.new("RGB", glyph.size, red),
                   (int(cx + r * 0.72 * math.cos(a) - font.size), int(cy - r * 0.72 * math.sin(a) - font.size)), glyph)
    return ImageChops.multiply(img, seal)


@ocr_engine
def test_red_seal_does_not_produce_garbage_lines(engine, tmp_path):
    img = page(NOTICE + [(420, 220, "示范市人民政府办公厅"), (440, 270, "2025年3月1日")], size=(760, 360))
    stamp(img, 560, 240, 100).save(tmp_path / "sealed.png")
    (doc,) = load_file(tmp_path / "sealed.png")
    lines = [b.text for b in doc.blocks]
    assert lines[0] == "示范市人民政府关于推进公共数据开放的通知"
    assert not [ln for ln in lines if "管" in ln], lines      # the seal's own text (示范市数据管理局) is not read
    assert "2025年3月1日" in "".join(lines)


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height and whose pixels are never there."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_too_large_image_is_refused_before_decoding_naming_the_file(tmp_path):
    path = tmp_path / "poster.png"
    path.write_bytes(huge_png_header(60_000, 60_000))            # 3.6 G pixels declared in 70 bytes
    with pytest.raises(LoadError) as exc:
        list(load_file(path))
    assert exc.value.source == str(path)
    assert "too large to OCR" in exc.value.message and "ingest.ocr_max_pixels" in exc.value.message
    c = make_container(tmp_path / "data")
    (result,) = c.knowledge_bases.ingest_paths("ocr", [path], principal=LOCAL_ADMIN).results
    assert result.status == "failed" and result.source == str(path) and "too large" in result.message


def test_not_an_image_is_refused(tmp_path):
    path = tmp_path / "fake.jpg"
    path.write_text("这不是图片", encoding="utf-8")
    with pytest.raises(LoadError, match="cannot read the image"):
        list(load_file(path))


@ocr_engine
def test_too_many_scanned_pages_and_ocr_off_are_refused_clearly(engine, tmp_path):
    from PIL import Image
    img = page(NOTICE)
    path = tmp_path / "long.pdf"
    img.save(path, "PDF", resolution=200, save_all=True, append_images=[img.copy(), img.copy()])
    with pytest.raises(LoadError) as exc:
        list(load_file(path, limits=IngestSettings(ocr_max_pages=2)))
    assert exc.value.source == str(path) and "3 pages without a text layer need OCR; at most 2" in exc.value.message
    with pytest.raises(LoadError, match=r"no text found \(a scanned PDF needs OCR first\): OCR is off"):
        list(load_file(path, limits=IngestSettings(ocr=False)))
    assert Image  # PIL is what drew the pages


@ocr_engine
def test_a_page_past_its_time_limit_names_the_page_and_the_setting(engine, tmp_path):
    page(NOTICE).save(tmp_path / "slow.png")
    with pytest.raises(LoadError) as exc:
        list(load_file(tmp_path / "slow.png", limits=IngestSettings(ocr_page_timeout_s=0.01)))
    assert "OCR of page 1" in exc.value.message and "ingest.ocr_page_timeout_s" in exc.value.message
