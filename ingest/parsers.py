"""File → blocks with unstructured (offline). Imports are lazy: the parent process parses only text here;
every other format runs in a bounded worker (ingest/isolation.py) whose forkserver imported them once."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from ingest.chunking import Block
from ingest.tables import html_rows, markdown_table

MARKDOWN_SUFFIXES = {".md", ".markdown"}


class ParseError(Exception):
    """The reason a file could not be parsed, without its name (LoadError adds it)."""


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


TEXT_WINDOW = 256 * 1024     # characters per partitioner call: its memory grows with its input (~45x)


def text_blocks(text: str, suffix: str) -> list[Block]:
    """Blocks of an already decoded text file (.txt, .md), partitioned a window of whole paragraphs at a time so
    a large file's parse stays within a few tens of MiB."""
    if suffix in MARKDOWN_SUFFIXES:
        return [b for window in _windows(text) for b in _markdown_blocks(window)]
    from unstructured.partition.text import partition_text
    return [b for window in _windows(text) for b in _blocks(partition_text(text=window))]


def _windows(text: str, size: int = TEXT_WINDOW) -> list[str]:
    """text cut into pieces of about size characters, at a blank line where there is one, else at a line end."""
    pieces, start = [], 0
    while len(text) - start > size:
        end = text.rfind("\n\n", start, start + size)
        if end <= start:
            end = text.rfind("\n", start, start + size)
        if end <= start:
            end = start + size
        pieces.append(text[start:end])
        start = end
    pieces.append(text[start:])
    return pieces


def file_blocks(path: str) -> list[Block]:
    """Blocks of a .docx .pdf .html .xlsx .pptx .doc file (a PDF's text layer only, each block with its page);
    runs in the worker process."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        from unstructured.partition.auto import partition
        elements = partition(filename=path, **({"strategy": "fast"} if suffix == ".pdf" else {}))
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - unstructured raises many types for corrupt files
        msg = _first_line(exc)
        if suffix == ".doc" and "soffice" in msg.lower():
            msg = "parsing .doc needs LibreOffice (apt-get install libreoffice-writer-nogui)"
        raise ParseError(f"cannot parse {suffix} file: {msg}") from None
    blocks = _blocks(elements, pages=suffix == ".pdf")
    if not blocks and suffix == ".pdf":
        _check_pdf(p)  # unstructured returns nothing for a corrupt PDF: say so rather than "needs OCR"
    return blocks


# a page whose text layer has fewer visible characters than this is read as a scan (a scanner's invisible page
# number or a stray header is not the page's text)
MIN_TEXT_LAYER_CHARS = 10


@dataclass
class PdfText:
    blocks: list[Block]      # the text layer, each block with its page (a scanned page's few characters too)
    pages: int
    scanned: list[int]       # 1-based pages with no (or negligible) text layer: for OCR


def pdf_text(path: str) -> PdfText:
    """A PDF's text layer per page and the pages that need OCR; runs in the worker process."""
    blocks = file_blocks(path)
    chars: dict[int, int] = {}
    for b in blocks:
        if b.page is not None:
            chars[b.page] = chars.get(b.page, 0) + len(re.sub(r"\s+", "", b.text))
    pages, with_images = _pages_with_images(Path(path))
    scanned = [n for n in with_images if chars.get(n, 0) < MIN_TEXT_LAYER_CHARS]
    return PdfText(blocks, pages, scanned)


def _pages_with_images(path: Path) -> tuple[int, list[int]]:
    """The page count and the 1-based pages holding an image: a page without one has nothing to OCR (a blank or
    damaged page costs no render)."""
    try:
        import pypdfium2 as pdfium
        from pypdfium2 import raw
    except ImportError:
        from pypdf import PdfReader
        n = len(PdfReader(str(path), strict=False).pages)
        return n, list(range(1, n + 1))
    try:
        pdf = pdfium.PdfDocument(str(path))
        return len(pdf), [k + 1 for k in range(len(pdf))
                          if next(pdf[k].get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE], max_depth=3), None)]
    except Exception as exc:  # noqa: BLE001 - pdfium raises PdfiumError and others for damaged files
        raise ParseError(f"cannot parse .pdf file (damaged or not a PDF): {_first_line(exc)}") from None


def _blocks(elements, pages: bool = False) -> list[Block]:
    """unstructured elements → blocks; Title is only a hint (it labels most Chinese paragraphs as titles); a Table
    becomes a Markdown table (its cells would otherwise run together as one line of words)."""
    return [Block(_table_text(e) or str(e.text), getattr(e, "category", "") == "Title",
                  getattr(getattr(e, "metadata", None), "page_number", None) if pages else None)
            for e in elements if str(e.text).strip()]


def _table_text(element) -> str:
    html = getattr(element, "category", "") == "Table" and getattr(element.metadata, "text_as_html", None)
    return markdown_table(html_rows(html)) if html else ""


def _check_pdf(path: Path) -> None:
    try:
        from pypdf import PdfReader
    except ImportError:
        return
    try:
        len(PdfReader(str(path), strict=False).pages)
    except Exception as exc:  # noqa: BLE001 - pypdf raises several types for damaged files
        raise ParseError(f"cannot parse .pdf file (damaged or not a PDF): {_first_line(exc)}") from None


def tiny_pdf(lines: list[str]) -> bytes:
    """A one-page PDF of ASCII lines (Helvetica) with a correct xref table: the worker's warm-up, tests' inputs."""
    text = "BT /F1 12 Tf 72 720 Td " + " ".join(f"({ln}) Tj 0 -16 Td" for ln in lines) + " ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode()),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (n, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$")   # | --- | --- |
_MD_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s*)|[*_`]+")


def _plain(line: str) -> str:
    return re.sub(r"\s+", "", _MD_MARKUP.sub("", line))


def _markdown_blocks(text: str) -> list[Block]:
    """partition_md finds the elements and their kind, but its text drops what Chinese 公文 numbering needs
    (the "1." of an ordered list, the bold run-in item title): each element is mapped back to its source lines,
    which become the block (the chunker reads markdown headings, numbering and bold itself)."""
    from unstructured.partition.md import partition_md

    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not _TABLE_RULE.match(ln)]
    plain = [_plain(ln) for ln in lines]
    starts: list[tuple[int, bool]] = []          # (first source line, is a Title)
    cursor = 0
    for e in partition_md(text=text):
        key = _plain(str(e.text))[:12]
        if not key:
            continue
        j = next((i for i in range(cursor, len(lines)) if key in plain[i]), None)
        if j is None:
            continue                             # text the source does not hold verbatim (rendered HTML)
        if starts and starts[-1][0] == j:
            continue                             # several elements from one source line
        starts.append((j, getattr(e, "category", "") == "Title"))
        cursor = j + 1
    if not starts:
        return []
    if starts[0][0] > 0:
        starts.insert(0, (0, False))
    bounds = [j for j, _ in starts] + [len(lines)]
    return [Block("\n".join(lines[a:b]), title and b - a == 1)
            for (a, title), b in zip(starts, bounds[1:])]
