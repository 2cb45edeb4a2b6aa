"""A PDF page rendered to PNG on the server (pypdfium2), the cited passage highlighted where it can be found.

The passage is looked up in the page's own text layer with all whitespace removed on both sides (the parser's
line breaks and spaces are not the PDF's); when the whole passage is not on the page, its longest prefix or
suffix that is (a passage that runs over a page break). Nothing is fetched: the PDF is the kept original.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

MIN_MATCH = 6            # characters: a shorter piece of a passage is found by chance
MAX_SEARCH_PAGES = 500   # pages read to find a passage whose page is not known
_WS = re.compile(r"\s+")


class PdfViewUnavailable(RuntimeError):
    pass


@dataclass
class PageImage:
    png: bytes
    page: int            # 1-based
    pages: int
    found: bool          # the passage (or part of it) is highlighted
    width: int
    height: int


def available() -> bool:
    try:
        import pypdfium2  # noqa: F401
    except ImportError:
        return False
    return True


def _open(path: Path):
    try:
        import pypdfium2 as pdfium
    except ImportError:
        raise PdfViewUnavailable("rendering PDF pages needs pypdfium2 (installed with unstructured[pdf])") from None
    return pdfium.PdfDocument(str(path))


def _squeezed(text: str) -> tuple[str, list[int]]:
    """text without whitespace, and for each of its characters the index it had."""
    keep = [(i, ch) for i, ch in enumerate(text) if not ch.isspace()]
    return "".join(ch for _, ch in keep), [i for i, _ in keep]


def _locate(page_text: str, passage: str) -> tuple[int, int] | None:
    """[start, end) of the passage (or its longest prefix or suffix of at least MIN_MATCH characters) in
    page_text, as character indices of page_text."""
    hay, where = _squeezed(page_text)
    needle = _WS.sub("", passage)
    if len(needle) < 1 or not hay:
        return None
    at = hay.find(needle)
    if at >= 0:
        return where[at], where[at + len(needle) - 1] + 1
    best = None
    for piece_of in (lambda n: needle[:n], lambda n: needle[-n:]):
        lo, hi = MIN_MATCH, len(needle) - 1     # longest piece found, by bisection (a found piece's prefix is found)
        found = None
        while lo <= hi:
            mid = (lo + hi) // 2
            k = hay.find(piece_of(mid))
            if k >= 0:
                found, lo = (k, mid), mid + 1
            else:
                hi = mid - 1
        if found and (best is None or found[1] > best[1]):
            best = found
    if best is None:
        return None
    k, n = best
    return where[k], where[k + n - 1] + 1


def find_page(path: Path, passage: str) -> int | None:
    """The first page (1-based) that holds the passage, or most of its start."""
    pdf = _open(path)
    try:
        for i in range(min(len(pdf), MAX_SEARCH_PAGES)):
            text = pdf[i].get_textpage().get_text_range()
            if _locate(text, passage[:80]):
                return i + 1
    finally:
        pdf.close()
    return None


def render_page(path: Path, page: int, passage: str | None = None, scale: float = 1.5) -> PageImage:
    from PIL import Image, ImageDraw

    pdf = _open(path)
    try:
        n = len(pdf)
        if not 1 <= page <= n:
            raise ValueError(f"page {page} is not in the PDF (1-{n})")
        pg = pdf[page - 1]
        image = pg.render(scale=scale).to_pil().convert("RGBA")
        found = False
        if passage:
            textpage = pg.get_textpage()
            span = _locate(textpage.get_text_range(), passage)
            if span:
                overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
                draw = ImageDraw.Draw(overlay)
                height = pg.get_size()[1]
                for i in range(textpage.count_rects(span[0], span[1] - span[0])):
                    left, bottom, right, top = textpage.get_rect(i)
                    draw.rectangle([left * scale - 1, (height - top) * scale - 1, right * scale + 1,
                                    (height - bottom) * scale + 1], fill=(255, 214, 0, 110), outline=(217, 119, 6, 255))
                image = Image.alpha_composite(image, overlay)
                found = True
        out = io.BytesIO()
        image.convert("RGB").save(out, "PNG", optimize=True)
        return PageImage(out.getvalue(), page, n, found, image.width, image.height)
    finally:
        pdf.close()
