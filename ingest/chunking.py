"""Chinese-structure-aware chunking for government documents.

Laws are cut at articles (第X条) under their 编/章/节 path; ordinary 公文 at their
numbered headings (一、 / （一） / 1. **标题**。). Oversized sections are split at
sentence ends, so no chunk ever stops mid-sentence unless a single sentence is
itself longer than max_chars.

Positions: given where each block starts in the document's extracted text (`starts`), every chunk gets
[start, end) there and the pages of the blocks it came from. A chunk's text is a normalised form of
text[start:end]: runs of spaces collapsed, lines stripped, markdown heading marks and ** removed, blank and
rule lines (---) dropped; with rule lines, all whitespace, '#' and '*' removed both are equal.

Tables (Markdown: header, rule, rows; ingest/tables.py) are sections of their own: kept whole when they fit, else
split at rows with the header and rule repeated on every piece. A table chunk's [start, end) runs from its first
row's start to its last row's end, its pages are its rows' pages: for a whole table and the first piece of a split
one that is the header on; a later piece's repeated header is a copy, not part of its span, so its text is the
header and rule followed by (the normalised form of) text[start:end].
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from ingest.tables import is_rule, is_table_row, split_table

__all__ = ["Block", "Chunk", "split_sentences", "chunk_blocks", "chunk_text", "block_starts", "format_heading_path"]


@dataclass
class Block:
    text: str
    is_title: bool = False  # parser's guess; unreliable for Chinese, so only trusted for short lines
    page: int | None = None  # 1-based page of a PDF or scanned image the text came from


@dataclass
class Chunk:
    text: str
    heading_path: list[str]
    position: int
    article: str | None = None
    start: int | None = None            # [start, end) in the document's extracted text (see the module doc)
    end: int | None = None
    pages: list[int] = field(default_factory=list)   # pages of its blocks, in order (none: no paged blocks)


_NUM = r"[一二三四五六七八九十百千零〇两\d０-９]+"
_CN = r"[一二三四五六七八九十百千零〇]+"
_ENDS = "。！？；!?;"
_CLOSERS = "”’）》」』\"')"
_SENT_RE = re.compile(rf"[^{_ENDS}\n]*(?:[{_ENDS}]+[{_CLOSERS}]*|\n|$)")
_CLAUSE_RE = re.compile(r"[^，、,：:]+[，、,：:]*|[，、,：:]+")
_SPACES = " \t\u3000\xa0"
_SPACE_RE = re.compile(f"[{_SPACES}]+")
_HR_RE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,})$")
_MD_RE = re.compile(r"^(#{1,6})\s+(.*)$")
_ARTICLE_RE = re.compile(rf"^(第{_NUM}条(?:之{_CN})?)(?:\s|$)")
_PART_RE = re.compile(rf"^第{_NUM}(编|章|节)(?:\s|$)")
_PART_LEVEL = {"编": 1, "章": 2, "节": 3}
_CN_ITEM_RE = re.compile(rf"^{_CN}、")
_PAREN_ITEM_RE = re.compile(rf"^[（(]{_CN}[）)]")
_BOLD_ITEM_RE = re.compile(r"^(?:\d+|[０-９]+)\s*[.．、]\s*\*\*(.+?)\*\*")


# where a flattened page (paragraphs joined by spaces, as scraped policy pages often are) had its paragraph breaks:
# whitespace or a sentence end, then an item number (一、 / （一） / 第X条 followed by a space)
_FLAT_ITEM = rf"(?={_CN}、|[（(]{_CN}[）)]|第{_NUM}条\s)"
_FLAT_BREAK_RE = re.compile(rf"\s+{_FLAT_ITEM}|(?<=[。；：:]){_FLAT_ITEM}|(?<=[。；：:][”’）]){_FLAT_ITEM}")


def restore_paragraphs(text: str, min_line_chars: int = 200) -> str:
    """Line breaks put back before the item numbers of long lines, so a flattened document keeps its 一、/（一）/
    第X条 structure (headings, sections) instead of being one paragraph; text with its own breaks is unchanged."""
    return "\n".join(_FLAT_BREAK_RE.sub("\n", line) if len(line) >= min_line_chars else line
                     for line in text.split("\n"))


def split_sentences(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [s.strip() for s in _SENT_RE.findall(text) if s.strip()]


def _has_end(s: str) -> bool:
    return any(c in s for c in _ENDS)


def _heading(line: str, is_title: bool, in_article: bool) -> tuple[int, str, bool, str] | None:
    """(level, label, keep_line_as_body, kind) for a heading line, None for body text.

    kind is "article", "numbered" or "soft"; a soft heading (known only from markdown or
    is_title) that opens the document is its title and stays out of heading paths.
    """
    md = _MD_RE.match(line)
    raw = md.group(2) if md else line  # keeps ** so bold item titles can be found
    text = raw.replace("**", "").strip()
    if not text:
        return None
    if m := _ARTICLE_RE.match(text):
        return 4, m.group(1), True, "article"
    if (m := _PART_RE.match(text)) and len(text) <= 40 and not _has_end(text):
        return _PART_LEVEL[m.group(1)], text, False, "numbered"
    if in_article:  # （一）/1. inside an article are 项 of that article, not headings
        return (len(md.group(1)), text, False, "numbered") if md else None
    if m := _BOLD_ITEM_RE.match(raw):
        return 4, m.group(1).strip(), True, "numbered"
    # The Chinese numbering wins over the markdown level, so a document gets the same
    # path whether it arrives as raw markdown ("### 一、") or parsed blocks ("一、").
    for rx, level in ((_CN_ITEM_RE, 2), (_PAREN_ITEM_RE, 3)):
        if rx.match(text):
            head = re.split(r"[。：:]", text, maxsplit=1)[0]
            if re.search(r"[；;！？!?]", head):  # an enumerated clause such as "（一）公共数据；"
                return None
            if len(text) <= 40 and head == text.rstrip("：:"):
                return level, head, False, "numbered"
            if len(text) <= 40 and head == text.rstrip("。"):  # a sentence, e.g. the last item "（二）企业数据。"
                return None
            return level, head[:40], True, "numbered"  # run-in heading: "一、总体要求。以……"
    if md:
        return len(md.group(1)), text, False, "soft"
    # parsers flag most short Chinese lines as titles: a lead-in clause ("…并符合下列条件：") is body text
    if is_title and len(text) <= 30 and not _has_end(text) and not re.search(r"[，,：:、]", text):
        return 2, text, False, "soft"
    return None


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Split one over-long sentence at ，、： and, as a last resort, hard-cut it."""
    if len(sentence) <= max_chars:
        return [sentence]
    parts: list[str] = []
    for clause in _CLAUSE_RE.findall(sentence):
        for cut in (clause[i:i + max_chars] for i in range(0, len(clause), max_chars)):
            if parts and len(parts[-1]) + len(cut) <= max_chars:
                parts[-1] += cut
            else:
                parts.append(cut)
    return parts


def _join(units: list[tuple]) -> str:
    # each unit is (separator, text, span); the separator is "\n" when it starts a paragraph (款)
    return units[0][1] + "".join(u[0] + u[1] for u in units[1:])


Span = tuple[int, int, int]     # (paragraph index, start, end) inside a section's paragraphs


def _split_section(paras: list[str], max_chars: int, min_chars: int) -> list[tuple[str, list[Span]]]:
    """The section's pieces, each with the spans of the paragraphs it was cut from."""
    text = "\n".join(paras)
    if len(text) <= max_chars:
        return [(text, [(i, 0, len(p)) for i, p in enumerate(paras)])]
    units = []
    for pi, para in enumerate(paras):
        cursor = 0
        for i, sentence in enumerate(split_sentences(para)):
            for j, part in enumerate(_split_long(sentence, max_chars)):
                at = para.find(part, cursor)     # sentences and their parts are substrings of para, in order
                at = cursor if at < 0 else at
                cursor = at + len(part)
                units.append(("\n" if i == j == 0 else "", part, (pi, at, cursor)))
    pieces: list[list[tuple]] = []
    for unit in units:  # greedy packing of whole sentences
        if pieces and len(_join(pieces[-1] + [unit])) <= max_chars:
            pieces[-1].append(unit)
        else:
            pieces.append([unit])
    # Greedy packing can leave a tiny tail; shift whole sentences back into it.
    while (len(pieces) > 1 and len(pieces[-2]) > 1 and len(_join(pieces[-1])) < min_chars
           and len(_join(pieces[-2][-1:] + pieces[-1])) <= max_chars):
        pieces[-1].insert(0, pieces[-2].pop())
    return [(_join(p), [u[2] for u in p]) for p in pieces]


@dataclass
class _Para:
    """A body line: its text, where its characters are in the document (segments (index in text, offset): a
    run of characters from there on is contiguous in the document), and its block's page."""
    text: str
    segments: list[tuple[int, int]] | None
    page: int | None

    def offset(self, i: int) -> int | None:
        if self.segments is None:
            return None
        k = bisect.bisect_right(self.segments, (i, float("inf"))) - 1
        ti, off = self.segments[k]
        return off + i - ti


def _trace(raw: str, text: str, base: int | None) -> list[tuple[int, int]] | None:
    """Where text (raw normalised: spaces collapsed, stripped, markup removed) lies in the document, raw starting
    at base: its characters are raw's in order, a collapsed space standing for a run of spaces."""
    if base is None:
        return None
    at = raw.find(text)
    if at >= 0:                       # most lines: only stripped
        return [(0, base + at)]
    segments: list[tuple[int, int]] = []
    p, last = 0, -2
    for i, ch in enumerate(text):
        if ch == " ":
            while p < len(raw) and raw[p] not in _SPACES:
                p += 1
        else:
            while p < len(raw) and raw[p] != ch:
                p += 1
        if p >= len(raw):
            return None
        if p != last + 1:
            segments.append((i, base + p))
        last = p
        p += 1
        if ch == " ":
            while p < len(raw) and raw[p] in _SPACES:
                p += 1
    return segments


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line) for each of text.splitlines(), the offset inside text."""
    out, at = [], 0
    for piece in text.splitlines(keepends=True):
        line = piece.splitlines()[0] if piece.splitlines() else ""
        out.append((at, line))
        at += len(piece)
    return out


def _table_pieces(lines: list[str], max_chars: int) -> list[tuple[str, list[Span]]]:
    """A Markdown table's pieces, its header on each, with the spans of the rows each holds (as _split_section's:
    (row index, start, end)); a row too long for one piece is cut at sentence ends, each part under the header.

    The header and rule are in the first piece's spans only: on a later piece they are a copy, so its span in the
    document runs from its first row to its last. A header and rule repeated inside (a table re-read from its
    stored pieces) is dropped, as split_table does."""
    budget = max(max_chars - len(lines[0]) - len(lines[1]) - 2, max_chars // 3)
    rows: list[tuple[str, list[Span]]] = []
    i = 2
    while i < len(lines):
        if lines[i] == lines[0] and i + 1 < len(lines) and lines[i + 1] == lines[1]:
            i += 2
            continue
        if len(lines[i]) > budget:
            rows += [(part, [(i, a, b) for _, a, b in spans]) for part, spans in _split_section([lines[i]], budget, 0)]
        else:
            rows.append((lines[i], [(i, 0, len(lines[i]))]))
        i += 1
    header = [(0, 0, len(lines[0])), (1, 0, len(lines[1]))]
    out, k = [], 0
    for n, piece in enumerate(split_table(lines[:2] + [r for r, _ in rows], max_chars)):
        held = piece.count("\n") - 1                    # rows never hold a line break
        out.append((piece, (header if n == 0 else []) + [sp for _, spans in rows[k:k + held] for sp in spans]
                    or header))
        k += held
    return out


def chunk_blocks(blocks: list[Block], *, max_chars: int = 300, min_chars: int = 40,
                 starts: list[int | None] | None = None) -> list[Chunk]:
    """starts[i]: where block i's text begins in the document's extracted text (None: not known), so chunks get
    their start/end there; without starts chunks get none. Pages come from the blocks either way."""
    path: list[tuple[int, str, bool]] = []  # (level, label, is_article)
    body: list[_Para] = []
    table: list[_Para] = []                 # Markdown table rows being read (a table may span blocks)
    sections: list[tuple[tuple[str, ...], str | None, list[_Para], bool]] = []   # (..., is_table)
    started = False

    def flush() -> None:
        if body:
            article = next((label for _, label, is_art in reversed(path) if is_art), None)
            sections.append((tuple(label for _, label, _ in path), article, body.copy(), False))
            body.clear()

    def end_table() -> None:
        if len(table) >= 3 and is_rule(table[1].text):   # a table is a section of its own, under the current heading
            flush()
            article = next((label for _, label, is_art in reversed(path) if is_art), None)
            sections.append((tuple(label for _, label, _ in path), article, table.copy(), True))
        else:
            body.extend(table)                      # lines that only look like rows
        table.clear()

    for bi, block in enumerate(blocks):
        base = starts[bi] if starts is not None and bi < len(starts) else None
        raw_lines = [(at, raw, _SPACE_RE.sub(" ", raw).strip()) for at, raw in _lines(block.text)]
        raw_lines = [r for r in raw_lines if r[2] and not _HR_RE.match(r[2])]  # blank lines and markdown rules
        for at, raw, line in raw_lines:
            if is_table_row(line):
                table.append(_Para(line, _trace(raw, line, None if base is None else base + at), block.page))
                started = True
                continue
            if table:
                end_table()
            in_article = any(is_art for _, _, is_art in path)
            head = _heading(line, block.is_title and len(raw_lines) == 1, in_article)
            text = _MD_RE.sub(r"\2", line).replace("**", "").strip()
            para = _Para(text, None, block.page)
            if text and base is not None:
                para.segments = _trace(raw, text, base + at)
            if head is None:
                if text:
                    body.append(para)
                    started = True
                continue
            level, label, keep_body, kind = head
            if not started and kind == "soft":  # document title: callers pass it via format_heading_path
                started = True
                continue
            started = True
            flush()
            path = [p for p in path if p[0] < level] + [(level, label, kind == "article")]
            if keep_body:
                body.append(para)
    if table:
        end_table()
    flush()

    Piece = tuple[tuple[str, ...], str | None, str, int | None, int | None, list[int]]
    pieces: list[Piece] = []
    for p, art, paras, is_table in sections:
        split = _table_pieces if is_table else lambda lines, n: _split_section(lines, n, min_chars)
        for text, spans in split([x.text for x in paras], max_chars):
            (first, a, _), (last, _, b) = spans[0], spans[-1]
            start, end = paras[first].offset(a), paras[last].offset(b - 1)
            pages = list(dict.fromkeys(paras[i].page for i, _, _ in spans if paras[i].page is not None))
            pieces.append((p, art, text, start, None if end is None or start is None else end + 1, pages))
    merged: list[Piece] = []
    for piece in pieces:
        p, art, text = piece[:3]
        # tiny pieces join the next one only under the same path, hence never across articles
        if merged and merged[-1][:2] == (p, art) and len(merged[-1][2]) < min_chars \
                and len(merged[-1][2]) + 1 + len(text) <= max_chars:
            prev = merged[-1]
            merged[-1] = (p, art, prev[2] + "\n" + text, prev[3], piece[4] if prev[3] is not None else None,
                          list(dict.fromkeys(prev[5] + piece[5])))
        else:
            merged.append(piece)
    return [Chunk(text=t, heading_path=list(p), position=i, article=a, start=s, end=e, pages=pg)
            for i, (p, a, t, s, e, pg) in enumerate(merged)]


def block_starts(text: str, blocks: list[Block]) -> list[int | None]:
    """Where each block's text begins in the document's text (blocks in order; None where it is not found there)."""
    out: list[int | None] = []
    cursor = 0
    for b in blocks:
        at = text.find(b.text, cursor) if b.text else -1
        out.append(at if at >= 0 else None)
        if at >= 0:
            cursor = at + len(b.text)
    return out


def chunk_text(text: str, **kw) -> list[Chunk]:
    """Chunks of plain text, their start/end in text."""
    lines = [(at, line) for at, line in _lines(text) if line.strip()]
    return chunk_blocks([Block(line) for _, line in lines], starts=[at for at, _ in lines], **kw)


def format_heading_path(title: str | None, path: list[str]) -> str:
    trail = " > ".join(p for p in path if p)
    if not title:
        return trail
    return (title if title.startswith("《") else f"《{title}》") + trail
