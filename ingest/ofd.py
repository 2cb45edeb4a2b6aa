"""OFD (GB/T 33190, the national fixed-layout format 公文 are issued in) → blocks with their page, and DocInfo.

An OFD is a zip of XML: OFD.xml (DocBody: DocInfo and DocRoot), the document's Document.xml (its pages and
templates) and each page's Content.xml, where text is TextObject/TextCode runs placed by position, in no particular
order. Reading order is rebuilt here: runs into lines by baseline, lines by position; a line is cut at wide gaps
into cells, and consecutive lines with the same cells aligned become a Markdown table (one that goes on at the top
of the next page with the same columns is one table); the other lines join into paragraphs, a new one at an indent,
after a short line, a wide vertical gap or a change of font size (a title).

Hostile packages are bounded: ingest/content_checks.py refused an archive whose central directory declares too many
entries or too much inflated data before this runs, in the parse worker (ingest/isolation.py); here each member
read is capped again, and XML with a DOCTYPE (entity expansion, external entities) is refused before any entity.
"""
from __future__ import annotations

import posixpath
import re
import statistics
import zipfile
from dataclasses import dataclass, field
from xml.etree import ElementTree
from xml.parsers import expat

from ingest.chunking import Block
from ingest.parsers import ParseError
from ingest.tables import continued_rows, join_wrapped, markdown_table

MAX_MEMBER_BYTES = 64 * 2**20      # one XML part; a real page is a few hundred KB
MAX_READ_BYTES = 512 * 2**20       # all parts read for one document
MAX_PAGES = 5000


@dataclass
class OfdDocument:
    blocks: list[Block]
    info: dict[str, str] = field(default_factory=dict)     # DocInfo: Title, Author, CreationDate, CustomData names
    pages: int = 0


@dataclass
class _Run:
    x: float
    y: float                       # baseline, page coordinates in mm, y down
    size: float
    text: str
    end: float                     # x where the run's last glyph ends


@dataclass
class _Line:
    page: int
    y: float
    size: float
    runs: list[_Run]

    @property
    def x(self) -> float:
        return self.runs[0].x

    @property
    def end(self) -> float:
        return max(r.end for r in self.runs)

    def cells(self) -> list[tuple[float, str]]:
        """(x, text) pieces between gaps wider than a character and a bit (justified text spaces its glyphs less):
        a table's cells, or spaced-out words such as a signature and its date."""
        out: list[tuple[float, list[str]]] = []
        prev = None
        for r in self.runs:
            if prev is None or r.x - prev.end > 1.2 * self.size:
                out.append((r.x, [r.text]))
            else:
                out[-1][1].append(" " * (r.x - prev.end > 0.5 * self.size) + r.text)
            prev = r
        return [(x, "".join(parts).strip()) for x, parts in out]

    def text(self) -> str:
        return " ".join(t for _, t in self.cells())


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _kids(el, name: str):
    return [c for c in el if _local(c.tag) == name]


def _kid(el, name: str):
    return next(iter(_kids(el, name)), None)


def _floats(s: str | None) -> list[float]:
    try:
        return [float(v) for v in (s or "").split()]
    except ValueError:
        return []


def _deltas(s: str | None) -> list[float]:
    """DeltaX with its "g n d" runs (n gaps of d) expanded."""
    out, items, i = [], (s or "").split(), 0
    while i < len(items):
        if items[i] == "g" and i + 2 < len(items):
            try:
                out += [float(items[i + 2])] * min(int(items[i + 1]), 100000)
            except ValueError:
                pass
            i += 3
        else:
            try:
                out.append(float(items[i]))
            except ValueError:
                pass
            i += 1
    return out


class _Package:
    """The zip, every member read through a size budget."""

    def __init__(self, path: str):
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ParseError(f"cannot parse .ofd file: damaged zip archive ({exc})") from None
        self.names = {i.filename.lstrip("/"): i for i in self.zf.infolist()}
        self.read_bytes = 0

    def xml(self, name: str):
        info = self.names.get(name.lstrip("/"))
        if info is None:
            raise ParseError(f"cannot parse .ofd file: damaged OFD, {name} is missing")
        if info.file_size > MAX_MEMBER_BYTES or self.read_bytes + info.file_size > MAX_READ_BYTES:
            raise ParseError(f"cannot parse .ofd file: {name} declares {info.file_size / 2**20:,.0f} MiB; at most "
                             f"{MAX_MEMBER_BYTES // 2**20} MiB a part, {MAX_READ_BYTES // 2**20} MiB in all")
        try:
            with self.zf.open(info) as f:
                data = f.read(MAX_MEMBER_BYTES + 1)     # zipfile stops at the declared size (a CRC error if it lied)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            raise ParseError(f"cannot parse .ofd file: damaged OFD, {name} cannot be read ({exc})") from None
        self.read_bytes += len(data)
        return _parse_xml(data, name)


class _Doctype(Exception):
    pass


def _refuse_doctype(*_):
    raise _Doctype


def _parse_xml(data: bytes, name: str):
    """expat into an ElementTree; OFD parts never declare a DOCTYPE, so refusing one refuses every entity trick
    (billion laughs, external entities) before it starts."""
    builder = ElementTree.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = parser.EntityDeclHandler = _refuse_doctype
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
        return builder.close()
    except _Doctype:
        raise ParseError(f"cannot parse .ofd file: {name} declares a DOCTYPE (entities), which OFD never "
                         "does: refused") from None
    except (expat.ExpatError, AssertionError, IndexError) as exc:    # TreeBuilder: unbalanced or empty input
        raise ParseError(f"cannot parse .ofd file: damaged OFD, {name} is not well-formed XML "
                         f"({exc or 'empty'})") from None


def _resolve(base: str, loc: str) -> str:
    loc = loc.strip().replace("\\", "/")
    return posixpath.normpath(loc.lstrip("/") if loc.startswith("/") else posixpath.join(base, loc)).lstrip("/")


def _info(doc_body) -> dict[str, str]:
    info: dict[str, str] = {}
    doc_info = _kid(doc_body, "DocInfo")
    if doc_info is None:
        return info
    for name in ("Title", "Author", "Subject", "Abstract", "CreationDate", "ModDate", "Creator"):
        el = _kid(doc_info, name)
        if el is not None and (el.text or "").strip():
            info[name] = el.text.strip()[:500]
    customs = _kid(doc_info, "CustomDatas")
    for el in _kids(customs, "CustomData") if customs is not None else []:
        if el.get("Name") and (el.text or "").strip():
            info[el.get("Name").strip()[:100]] = el.text.strip()[:500]
    return info


def _runs(container, out: list[_Run]) -> None:
    """Every TextObject's runs under container (layers, PageBlocks nested), in page coordinates."""
    for el in container:
        tag = _local(el.tag)
        if tag in ("Layer", "PageBlock", "Content"):
            _runs(el, out)
        elif tag == "TextObject":
            box = _floats(el.get("Boundary")) or [0.0, 0.0]
            ctm = _floats(el.get("CTM"))
            a, b, c, d, e, f = ctm if len(ctm) == 6 else (1, 0, 0, 1, 0, 0)
            size = (_floats(el.get("Size")) or [3.5])[0] * (abs(d) or 1)
            x = y = 0.0
            for code in _kids(el, "TextCode"):
                text = code.text or ""
                x = _floats(code.get("X"))[0] if code.get("X") else x
                y = _floats(code.get("Y"))[0] if code.get("Y") else y
                deltas = _deltas(code.get("DeltaX"))
                width = sum(deltas[:max(len(text) - 1, 0)])
                px, py = a * x + c * y + e + box[0], b * x + d * y + f + box[1]
                if text.strip():
                    out.append(_Run(px, py, size, text, px + width * (abs(a) or 1) + size))
                x += width + size


def _lines(runs: list[_Run], page: int) -> list[_Line]:
    lines: list[_Line] = []
    for r in sorted(runs, key=lambda r: (r.y, r.x)):
        # same baseline within a third of the glyph size (mixed sizes on a line sit on one baseline)
        if lines and abs(r.y - lines[-1].y) <= 0.35 * max(r.size, lines[-1].size):
            lines[-1].runs.append(r)
            lines[-1].size = max(lines[-1].size, r.size)
        else:
            lines.append(_Line(page, r.y, r.size, [r]))
    for ln in lines:
        ln.runs.sort(key=lambda r: r.x)
    return lines


_PAGE_NUMBER = re.compile(r"^[-—–－\s]*[0-9０-９]{1,4}[-—–－\s]*$|^第\s*\d+\s*页(?:\s*共\s*\d+\s*页)?$")
_SENTENCE_END = "。！？；：.!?;:"
_CLOSERS = "”’）)》」』"


def _tables(lines: list[_Line]) -> list[list[_Line] | _Line]:
    """Lines, with each run of two or more lines whose cells line up (same count, starts within two characters)
    grouped as a table."""
    out: list[list[_Line] | _Line] = []
    i = 0
    while i < len(lines):
        cells = lines[i].cells()
        j = i + 1
        if len(cells) >= 2:
            starts = [x for x, _ in cells]
            while j < len(lines) and lines[j].page == lines[i].page:
                other = [x for x, _ in lines[j].cells()]
                if len(other) != len(starts) or any(abs(p - q) > 2 * lines[i].size for p, q in zip(starts, other)):
                    break
                j += 1
        if j - i >= 2:
            out.append(lines[i:j])
            i = j
        else:
            out.append(lines[i])
            i += 1
    return out


def _continues(table: list[_Line], part: list[_Line]) -> bool:
    """part, at the top of the page after table's last line, has table's columns (starts within two characters)."""
    a, b = [x for x, _ in table[0].cells()], [x for x, _ in part[0].cells()]
    return part[0].page == table[-1].page + 1 and len(a) == len(b) \
        and all(abs(p - q) <= 2 * table[0].size for p, q in zip(a, b))


def _blocks(lines: list[_Line]) -> list[Block]:
    sizes = [ln.size for ln in lines for _ in ln.text()] or [1.0]
    body = statistics.median(sizes)
    body_lines = [ln for ln in lines if abs(ln.size - body) < 0.1 * body] or lines
    left = statistics.median(ln.x for ln in body_lines)
    right = max(ln.end for ln in body_lines)
    blocks: list[Block] = []
    prev: _Line | None = None
    table: tuple[list[_Line], Block] | None = None      # the last table, while nothing but it has been placed since
    for item in _tables(lines):
        if isinstance(item, list):
            rows = [[t for _, t in ln.cells()] for ln in item]
            if table and _continues(table[0], item):
                # the table goes on over the page break: its rows under the first part's header
                if more := continued_rows([t for _, t in table[0][0].cells()], rows):
                    table[1].text += "\n" + more
                table = (table[0] + item, table[1])
            else:
                blocks.append(Block(markdown_table(rows), page=item[0].page))
                table = (item, blocks[-1])
            prev = None
            continue
        table = None
        ln, text = item, item.text()
        title = ln.size > 1.2 * body
        near = prev is not None and ln.page == prev.page and ln.y - prev.y <= 2.2 * max(ln.size, prev.size)
        if prev is not None and title and abs(ln.size - prev.size) < 0.1 * body and near:
            new = False                                             # a title wrapped over centred lines
        else:
            new = (prev is None or title != (prev.size > 1.2 * body) or abs(ln.size - prev.size) > 0.1 * body
                   or ln.x > left + 1.5 * ln.size                   # first-line indent, or a centred line
                   or prev.end < right - 2 * prev.size              # the line above ended short
                   or (ln.page == prev.page and not near)
                   or (ln.page != prev.page and blocks[-1].text.rstrip(_CLOSERS)[-1:] in _SENTENCE_END))
        if new:
            blocks.append(Block(text, is_title=title, page=ln.page))
        else:
            blocks[-1].text = join_wrapped([blocks[-1].text, text])
        prev = ln
    return blocks


def read_ofd(path: str) -> OfdDocument:
    """The first document of an OFD package; runs in the parse worker."""
    pkg = _Package(path)
    if "OFD.xml" not in pkg.names:
        raise ParseError("cannot parse .ofd file: it has no OFD.xml, so it is not an OFD package "
                         "(another zip renamed .ofd?)")
    root = pkg.xml("OFD.xml")
    body = _kid(root, "DocBody")
    doc_root = _kid(body, "DocRoot") if body is not None else None
    if doc_root is None or not (doc_root.text or "").strip():
        raise ParseError("cannot parse .ofd file: damaged OFD, OFD.xml names no DocRoot")
    doc_path = _resolve("", doc_root.text)
    document, base = pkg.xml(doc_path), posixpath.dirname(doc_path)
    templates = {}
    common = _kid(document, "CommonData")
    for t in _kids(common, "TemplatePage") if common is not None else []:
        if t.get("ID") and t.get("BaseLoc"):
            templates[t.get("ID")] = _resolve(base, t.get("BaseLoc"))
    pages_el = _kid(document, "Pages")
    pages = _kids(pages_el, "Page") if pages_el is not None else []
    if len(pages) > MAX_PAGES:
        raise ParseError(f"cannot parse .ofd file: {len(pages):,} pages; at most {MAX_PAGES:,}")
    lines: list[_Line] = []
    for n, page in enumerate(pages, start=1):
        if not page.get("BaseLoc"):
            continue
        content = pkg.xml(_resolve(base, page.get("BaseLoc")))
        runs: list[_Run] = []
        for t in _kids(content, "Template"):          # a template's text (a 红头, a footer) is on the page too
            if t.get("TemplateID") in templates:
                _runs(pkg.xml(templates[t.get("TemplateID")]), runs)
        _runs(content, runs)
        lines += [ln for ln in _lines(runs, n) if not _PAGE_NUMBER.match(ln.text())]
    return OfdDocument(_blocks(lines) if lines else [], _info(body), len(pages))
