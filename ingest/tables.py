"""Tables as Markdown (a header row, a rule, the rows): the form parsers' tables take in a document's blocks, so the
chunker can keep a table whole, or split a long one at row boundaries with its header repeated on every piece
(a row of 申请材料 means nothing without the column names above it)."""
from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_rows", "markdown_table", "join_wrapped", "is_table_row", "is_rule", "split_table",
           "table_count"]

_RULE_RE = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+$")
_WS_RE = re.compile(r"\s+")
MAX_COLUMNS = 50            # wider "tables" are layout grids or damaged files: kept as rows, capped
MAX_ROWSPAN = 1000          # rows a rowspan carries its text down (it adds none: only <tr>s do)


class _TableHTML(HTMLParser):
    """Rows of cell texts from one <table> (unstructured's metadata.text_as_html); a colspan or rowspan
    repeats the cell into every slot it covers, so every row and column keeps its meaning (a rowspan left out
    would shift the next cells one column left: a .docx's merged 类别 cell); nested tables' text joins their
    cell."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._span = self._rowspan = 1
        self._below: dict[int, tuple[str, int]] = {}     # column → a rowspan's text, rows it still covers
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._depth += 1
        elif self._depth > 1:
            return
        elif tag == "tr":
            self._fill()                                   # the previous row's last columns
            self.rows.append([])
        elif tag in ("td", "th"):
            if not self.rows:
                self.rows.append([])
            self._fill()
            self._cell = []
            self._span, self._rowspan = (_span_attr(dict(attrs).get(k), cap) for k, cap in
                                         (("colspan", MAX_COLUMNS), ("rowspan", MAX_ROWSPAN)))
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag == "table":
            if self._depth == 1:
                self._fill()
            self._depth -= 1
        elif self._depth > 1:
            return
        elif tag in ("td", "th") and self._cell is not None:
            text = _WS_RE.sub(" ", "".join(self._cell)).strip()
            row = self.rows[-1]
            if self._rowspan > 1:
                covered = range(len(row), len(row) + self._span)
                self._below.update({j: (text, self._rowspan - 1) for j in covered})
            row.extend([text] * self._span)
            self._cell = None
        elif tag == "tr":
            self._fill()

    def _fill(self) -> None:
        """The current row's next slots that a rowspan from above covers."""
        row = self.rows[-1] if self.rows else None
        while row is not None and (j := len(row)) in self._below:
            text, left = self._below.pop(j)
            row.append(text)
            if left > 1:
                self._below[j] = (text, left - 1)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _span_attr(value: str | None, cap: int) -> int:
    return min(int(value), cap) if value and value.isdigit() and int(value) > 0 else 1


def html_rows(html: str) -> list[list[str]]:
    parser = _TableHTML()
    parser.feed(html)
    parser.close()
    return parser.rows


def _cell(text: str) -> str:
    return _WS_RE.sub(" ", str(text or "")).strip().replace("|", "\\|")


def markdown_table(rows: list[list[str]]) -> str:
    """rows → Markdown, the first row as the header; empty rows and columns dropped, short rows padded. '' when
    nothing is left."""
    rows = [[_cell(c) for c in row[:MAX_COLUMNS]] for row in rows]
    rows = [r for r in rows if any(r)]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    keep = [j for j in range(width) if any(r[j] for r in rows)]
    rows = [[r[j] for j in keep] for r in rows]
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.insert(1, "|" + " --- |" * len(keep))
    return "\n".join(lines)


def continued_rows(header: list[str], rows: list[list[str]]) -> str:
    """The Markdown rows of a table's part on the next page, read under its first part's header (a header the
    producer repeated there is dropped); '' when no row is left. Appended to the first part, the chunker reads
    one table and repeats the header on every piece."""
    rows = rows[1:] if rows and rows[0] == header else rows
    lines = markdown_table([header] + rows).split("\n") if rows else []
    return "\n".join(lines[2:])


def join_wrapped(lines) -> str:
    """Lines a layout wrapped (a PDF cell's, an OFD paragraph's) as one: Chinese runs on without a space, a
    space goes only between two Latin letters or digits."""
    out = ""
    for line in (ln.strip() for ln in lines):
        latin = out[-1:].isascii() and out[-1:].isalnum() and line[:1].isascii() and line[:1].isalnum()
        out += " " * latin + line
    return out


def is_table_row(line: str) -> bool:
    s = line.strip()
    return len(s) >= 2 and s.startswith("|") and s.endswith("|")


def is_rule(line: str) -> bool:
    return bool(_RULE_RE.match(line.replace(" ", "").strip()))


def table_count(texts) -> int:
    """Markdown tables among block texts (a rule line under a header row marks one)."""
    return sum(1 for t in texts for a, b in zip(t.splitlines(), t.splitlines()[1:]) if is_table_row(a) and is_rule(b))


def split_table(lines: list[str], max_chars: int) -> list[str]:
    """A Markdown table (header, rule, rows) as pieces of at most max_chars, each starting with the header and rule;
    a row that alone exceeds the budget is a piece of its own (a row is never cut). A header and rule repeated
    inside (a table re-read from its stored pieces) is dropped."""
    head, body, rows, i = lines[:2], lines[2:], [], 0
    while i < len(body):
        if body[i] == head[0] and i + 1 < len(body) and body[i + 1] == head[1]:
            i += 2
            continue
        rows.append(body[i])
        i += 1
    header = "\n".join(head)
    pieces: list[list[str]] = []
    for row in rows:
        if pieces and len(header) + sum(len(r) + 1 for r in pieces[-1]) + 1 + len(row) <= max_chars:
            pieces[-1].append(row)
        else:
            pieces.append([row])
    return ["\n".join([header, *p]) for p in pieces] or [header]
