"""File → blocks with unstructured (offline). Imports are lazy: the parent process parses only text here;
every other format runs in a bounded worker (ingest/isolation.py) whose forkserver imported them once."""
from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.chunking import Block
from ingest.tables import html_rows, markdown_table

MARKDOWN_SUFFIXES = {".md", ".markdown"}


class ParseError(Exception):
    """The reason a file could not be parsed, without its name (LoadError adds it)."""


PASSWORD_PROTECTED = "password-protected, cannot be read without the password"


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


def _partition(path: str, suffix: str) -> list:
    try:
        from unstructured.partition.auto import partition
        return partition(filename=path, **({"strategy": "fast"} if suffix == ".pdf" else {}))
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - unstructured raises many types for corrupt files
        msg = _first_line(exc)
        if suffix == ".doc" and "soffice" in msg.lower():
            msg = "parsing .doc needs LibreOffice (apt-get install libreoffice-writer-nogui)"
        raise ParseError(f"cannot parse {suffix} file: {msg}") from None


def file_blocks(path: str) -> list[Block]:
    """Blocks of a .docx .pdf .html .xlsx .pptx .doc file (a PDF's text layer only, each block with its page;
    pdf_text adds its tables); runs in the worker process."""
    suffix = Path(path).suffix.lower()
    blocks = _blocks(_partition(path, suffix), pages=suffix == ".pdf")
    if not blocks and suffix == ".pdf":
        _check_pdf(Path(path))  # unstructured returns nothing for a corrupt PDF: say so, not "needs OCR"
    return blocks


# a page whose text layer has fewer visible characters than this is read as a scan (a scanner's invisible page
# number or a stray header is not the page's text)
MIN_TEXT_LAYER_CHARS = 10


@dataclass
class PdfText:
    blocks: list[Block]      # the text layer, each block with its page (a scanned page's few characters too)
    pages: int
    scanned: list[int]       # 1-based pages with no (or negligible) text layer: for OCR
    note: str = ""           # pages whose tables were not looked for, and why


def pdf_text(path: str, timeout_s: float) -> PdfText:
    """A PDF's text layer per page, its ruled tables as Markdown, and the pages that need OCR; runs in the
    worker process, tables searched for until TIME_SHARE of timeout_s (the worker's limit) has passed."""
    from ingest.pdf_tables import TIME_SHARE, PdfItem, with_tables
    deadline = time.monotonic() + TIME_SHARE * timeout_s
    pdf = _open_pdf(Path(path))                       # a locked or damaged file is refused before the parse
    elements = [e for e in _partition(path, ".pdf") if str(e.text).strip()]
    if not elements:
        _check_pdf(Path(path))
    items = [PdfItem(_block(e, pages=True), _box(e)) for e in elements]
    chars: dict[int, int] = {}
    for it in items:
        if it.block.page is not None:
            chars[it.block.page] = chars.get(it.block.page, 0) + len(re.sub(r"\s+", "", it.block.text))
    pages, with_images, with_paths = _page_objects(pdf, Path(path))
    scanned = [n for n in with_images if chars.get(n, 0) < MIN_TEXT_LAYER_CHARS]
    cost = {n: k + chars.get(n, 0) for n, k in with_paths.items() if n not in scanned}   # of finding tables
    blocks, note = with_tables(path, items, cost, deadline)
    return PdfText(blocks, pages, scanned, note)


def _open_pdf(path: Path):
    """The document opened by pdfium (its pages are loaded later, one by one); None without pypdfium2."""
    try:
        import pypdfium2 as pdfium
    except ImportError:
        return None
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium.raw.FPDF_ERR_PASSWORD:     # an owner password alone (no user one) opens
            raise ParseError(PASSWORD_PROTECTED) from None
        raise ParseError(f"cannot parse .pdf file (damaged or not a PDF): {_first_line(exc)}") from None


def _page_objects(pdf, path: Path) -> tuple[int, list[int], dict[int, int]]:
    """The page count, the 1-based pages holding an image (a page without one has nothing to OCR: a blank or
    damaged page costs no render) and those with drawn paths (where ruled tables can be) with their object
    count (what finding tables there may cost). pdf: _open_pdf's; without pdfium every page may have both."""
    if pdf is None:
        n = _check_pdf(path) or 0
        return n, list(range(1, n + 1)), dict.fromkeys(range(1, n + 1), 0)
    from pypdfium2 import raw

    def having(page, kind: int) -> bool:
        return next(page.get_objects(filter=[kind], max_depth=3), None) is not None
    try:
        images, paths = [], {}
        for k, page in enumerate(pdf, start=1):
            if having(page, raw.FPDF_PAGEOBJ_IMAGE):
                images.append(k)
            if having(page, raw.FPDF_PAGEOBJ_PATH):
                paths[k] = raw.FPDFPage_CountObjects(page.raw)
        return len(pdf), images, paths
    except Exception as exc:  # noqa: BLE001 - pdfium raises PdfiumError and others for damaged files
        raise ParseError(f"cannot parse .pdf file (damaged or not a PDF): {_first_line(exc)}") from None


def _blocks(elements, pages: bool = False) -> list[Block]:
    return [_block(e, pages) for e in elements if str(e.text).strip()]


def _block(element, pages: bool) -> Block:
    """An unstructured element as a block; Title is only a hint (it labels most Chinese paragraphs as titles);
    a Table becomes a Markdown table (its cells would otherwise run together as one line of words)."""
    return Block(_table_text(element) or str(element.text), getattr(element, "category", "") == "Title",
                 getattr(getattr(element, "metadata", None), "page_number", None) if pages else None)


def _box(element) -> tuple[float, float, float, float] | None:
    """An element's box as fractions of its page (x0, top, x1, bottom from the top left); None: not known."""
    c = getattr(getattr(element, "metadata", None), "coordinates", None)
    if not c or not c.points or not c.system or not c.system.width or not c.system.height:
        return None
    xs, ys = [p[0] for p in c.points], [p[1] for p in c.points]
    w, h = c.system.width, c.system.height
    return min(xs) / w, min(ys) / h, max(xs) / w, max(ys) / h


def _table_text(element) -> str:
    html = getattr(element, "category", "") == "Table" and getattr(element.metadata, "text_as_html", None)
    return markdown_table(html_rows(html)) if html else ""


def _check_pdf(path: Path) -> int | None:
    """pypdf's page count (None: pypdf is missing); ParseError for a damaged or password-protected file."""
    try:
        from pypdf import PdfReader
    except ImportError:
        return None
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError(PASSWORD_PROTECTED)
        return len(reader.pages)
    except ParseError:
        raise
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
