"""Ruled tables in a PDF's text layer as Markdown blocks (pdfplumber over pdfminer.six), in the parse worker.

unstructured's fast strategy reads a table's cells as loose lines ("序号 申请材料", "1", "材料1：…"). On a
page with ruled tables (found from the lines drawn on it, pdfplumber's "lines" strategy: bordered tables, as
办事指南 print their 申请材料; and tables ruled with horizontal lines only, a 三线表 or a rule under every row,
their columns read from where the words line up) the text elements inside a table are dropped, one that
straddles a table's edge keeps only its characters outside it, and each table goes in as one Markdown block
where it stands in reading order. A table that goes on over the next page is read as one table (a header the
PDF repeated there is dropped: the chunker puts the header on every piece). A merged cell's text is repeated
into every row and column it covers (as .docx/.html colspans and rowspans are, ingest/tables.py), so each
Markdown row reads alone: a 类别 spanning two 申请材料 rows is on both. A merged cell a page break cuts (Word and
LibreOffice print its text in the part on the first page and an empty box on the next) carries its text into
that box's rows.

Bounded: only pages with drawn paths are parsed again (the caller counts their objects with pdfium); a page
with more than MAX_PAGE_OBJECTS objects and characters is not searched (maps, charts: table finding grows with
the edges, pdfplumber keeps a dict per character), nor any page once TIME_SHARE of ingest.parse_timeout_s has
passed; their cells stay text and the note says so.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ingest.chunking import Block
from ingest.tables import continued_rows, join_wrapped, markdown_table

MAX_PAGE_OBJECTS = 20_000         # pdfium's page objects (text runs, paths, images) + text-layer characters
TOLERANCE = 2.0                   # points: a text box drawn up to the ruling still lies inside its table
SHORT_TEXT = 20                   # characters: a page number or a running header, not text between two tables
SETTINGS = {"vertical_strategy": "lines", "horizontal_strategy": "lines"}
RULE_SETTINGS = {"vertical_strategy": "text", "horizontal_strategy": "text"}    # inside horizontal rules
RULE_MIN_SHARE = 0.3              # of the page's width: a rule of a table, not an underline or a signature line
TIME_SHARE = 0.5                  # of ingest.parse_timeout_s: the rest is the partitioner's and the checks'

Box = tuple[float, float, float, float]     # x0, top, x1, bottom


@dataclass
class PdfItem:
    """A text element with its box as fractions of its page's width and height from the top left (None: not
    known), so it is placed on pdfplumber's page whatever coordinate space the partitioner used."""
    block: Block
    box: Box | None


@dataclass
class _Table:
    page: int
    box: Box
    rows: list[list[str]]
    edges: list[float]            # x of its column rules: a table continued on the next page has the same
    cells: list[list[Box | None]]   # the box of the cell covering each slot of rows (None: no cell)


def with_tables(path: str, items: list[PdfItem], pages: dict[int, int],
                deadline: float) -> tuple[list[Block], str]:
    """The items' blocks in order, the ruled tables of pages (1-based page: its objects and characters; those
    with drawn paths) in place of their cells; and a note ('' when every page was searched). deadline:
    time.monotonic() after which no page is."""
    blocks = [it.block for it in items]
    crowded = [n for n, objects in pages.items() if objects > MAX_PAGE_OBJECTS]
    late: list[int] = []
    placed: dict[int, list[Block | _Table]] = {}
    if len(crowded) < len(pages):
        import pdfplumber
        with pdfplumber.open(path) as pdf:
            for n in (n for n in pages if n not in crowded):
                if time.monotonic() > deadline:
                    late.append(n)
                    continue
                page = pdf.pages[n - 1]
                if tables := _page_tables(page):
                    placed[n] = _place(page, tables, [it for it in items if it.block.page == n])
                page.close()            # pdfplumber keeps every parsed object of a page until then
    return _pages_joined(_assemble(blocks, placed)), _note(crowded, late)


def _page_tables(page) -> list[_Table]:
    """The page's ruled tables of two or more columns and rows, and its tables drawn with horizontal rules only."""
    out = []
    for t in page.find_tables(SETTINGS):
        slots, cells = _spans_filled(t)
        rows = [[join_wrapped((cell or "").splitlines()) for cell in row] for row in slots]
        lines = markdown_table(rows).splitlines()
        if len(lines) >= 3 and lines[1].count("---") >= 2:     # a framed paragraph or a rule is not a table
            edges = sorted({round(x, 1) for c in t.cells for x in (c[0], c[2])})
            out.append(_Table(page.page_number, t.bbox, rows, edges, cells))
    out += _rule_tables(page, [t.box for t in out])
    return sorted(out, key=lambda t: t.box[1])


def _rules(page, taken: list[Box]) -> list[list[Box]]:
    """The page's long horizontal rules outside the ruled tables, grouped by their left and right ends (the rules
    of one table), each group top to bottom; a rule drawn as a thin box counts once."""
    groups: list[list[Box]] = []
    for e in sorted(page.horizontal_edges, key=lambda e: e["top"]):
        box = (e["x0"], e["top"], e["x1"], e["bottom"])
        if box[2] - box[0] < RULE_MIN_SHARE * page.width or any(_overlap(box, t, -TOLERANCE) for t in taken):
            continue
        group = next((g for g in groups if abs(g[0][0] - box[0]) <= TOLERANCE and abs(g[0][2] - box[2]) <= TOLERANCE),
                     None)
        if group is None:
            groups.append([box])
        elif box[1] - group[-1][1] > TOLERANCE:
            group.append(box)
    return groups


def _rule_tables(page, taken: list[Box]) -> list[_Table]:
    """Tables drawn with horizontal rules only: a 三线表 (a rule over the header, one under it, one under the last
    row; its rows are the text's lines) or a rule under every row too (each band between two rules a row). Its
    columns are where the words line up (pdfplumber's "text" strategy inside the rules). A table is a run of two
    or more bands that read as rows (_tabular_band), so two 三线表 of one width with text between are two tables,
    and a 公文's 版记 (抄送 in one band, 印发 in the next) is none."""
    out = []
    groups = _rules(page, taken)
    verticals = [(e["x0"], e["top"], e["x1"], e["bottom"]) for e in page.vertical_edges]
    for rules in groups:
        others = [r for g in groups if g is not rules for r in g]
        tabular = [_tabular_band(page, (a[0], a[1], a[2], b[3]), others + verticals) for a, b in zip(rules, rules[1:])]
        i = 0
        while i < len(tabular):
            j = i
            while j < len(tabular) and tabular[j]:
                j += 1
            if j - i >= 2 and (t := _rule_table(page, rules[i:j + 1])):
                out.append(t)
            i = j + 1
    return out


def _tabular_band(page, box: Box, foreign: list[Box]) -> bool:
    """Whether the band between two rules reads as table rows: no other rule or vertical line in it, and half or
    more of its text lines have a gap of a character's height or more between two words (cells)."""
    if any(f[0] < box[2] and f[2] > box[0] and f[1] < box[3] - TOLERANCE and f[3] > box[1] + TOLERANCE
           for f in foreign):          # a rule (no height) or a vertical line inside the band
        return False
    lines: list[list[dict]] = []
    for w in sorted(page.crop(box, strict=False).extract_words(), key=lambda w: (round(w["top"]), w["x0"])):
        if lines and abs(lines[-1][0]["top"] - w["top"]) <= TOLERANCE:
            lines[-1].append(w)
        else:
            lines.append([w])
    cut = [any(b["x0"] - a["x1"] >= a["bottom"] - a["top"] for a, b in zip(ln, ln[1:]))
           for ln in (sorted(ln, key=lambda w: w["x0"]) for ln in lines)]
    return bool(cut) and 2 * sum(cut) >= len(cut)


def _rule_table(page, rules: list[Box]) -> _Table | None:
    """The table between rules (top to bottom): its header the band under the first rule, every band one row
    when there are more than three rules, else each text line a row (a wrapped cell's next line, an empty first
    cell with half the cells or fewer filled, joins the row above)."""
    box = (rules[0][0], rules[0][1], rules[0][2], rules[-1][3])
    found = page.crop(box, strict=False).find_tables(RULE_SETTINGS)
    if not found:
        return None
    t = max(found, key=lambda t: len(t.rows))
    tops = [r[1] for r in rules]
    rows: list[list[str]] = []
    bands: list[int] = []
    for cells, line in zip(t.extract(), t.rows):
        cells = [c or "" for c in cells]
        if not any(cells):
            continue
        band = sum(1 for y in tops if y <= line.bbox[1] + TOLERANCE)
        if rows and (band == bands[-1] and (band == 1 or len(rules) > 3)
                     or band == bands[-1] and not cells[0] and 2 * sum(map(bool, cells)) <= len(cells)):
            rows[-1] = [join_wrapped([a, b]) if b else a for a, b in zip(rows[-1], cells)]
        else:
            rows.append(cells)
            bands.append(band)
    if len(rows) < 3 or bands[0] != 1 or not all(sum(map(bool, r)) >= 2 for r in rows[:2]):
        return None
    edges = sorted({round(x, 1) for c in t.cells for x in (c[0], c[2])})
    return _Table(page.page_number, box, rows, edges, [[None] * len(r) for r in rows])


def _spans_filled(table) -> tuple[list[list[str | None]], list[list[Box | None]]]:
    """table.extract() with each slot a merged cell covers (pdfplumber gives None there: the cell belongs to
    the row and column it starts in) holding that cell's text, None where no cell covers the slot; and the box
    of the cell covering each slot."""
    rows = table.extract()
    texts = {box: text for row, cells in zip(rows, table.rows) for text, box in zip(row, cells.cells) if box}
    boxes: list[list[Box | None]] = [list(r.cells) for r in table.rows]
    # a slot's centre: between its column's left rule and the next one, its row's top and the next row's
    xs = [c.bbox[0] for c in table.columns] + [table.bbox[2]]
    ys = [r.bbox[1] for r in table.rows] + [table.bbox[3]]
    for i, row in enumerate(rows):
        for j, text in enumerate(row):
            if text is None and j + 1 < len(xs) and i + 1 < len(ys):
                x, y = (xs[j] + xs[j + 1]) / 2, (ys[i] + ys[i + 1]) / 2
                box = next((b for b in texts if b[0] < x < b[2] and b[1] < y < b[3]), None)
                row[j], boxes[i][j] = (texts[box], box) if box else (None, None)
    return rows, boxes


def _on_page(page, box: Box) -> Box:
    x0, top, x1, bottom = page.bbox
    w, h = x1 - x0, bottom - top
    return x0 + box[0] * w, top + box[1] * h, x0 + box[2] * w, top + box[3] * h


def _inside(box: Box, outer: Box, tol: float = TOLERANCE) -> bool:
    return box[0] >= outer[0] - tol and box[1] >= outer[1] - tol and box[2] <= outer[2] + tol \
        and box[3] <= outer[3] + tol


def _overlap(a: Box, b: Box, tol: float = TOLERANCE) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > tol and min(a[3], b[3]) - max(a[1], b[1]) > tol


def _outside_text(page, box: Box, tables: list[_Table]) -> str | None:
    """box's lines without the characters whose centre lies in a table; None when none does. Lines stay lines
    (unstructured joins them with spaces): a heading under the table keeps a line of its own."""
    def keep(obj) -> bool:
        if obj.get("object_type") != "char":
            return True
        x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return not any(_inside((x, y, x, y), t.box, 0) for t in tables)
    crop = page.crop(box, strict=False)
    kept = crop.filter(keep)
    if len(kept.chars) == len(crop.chars):
        return None
    return "\n".join(ln.strip() for ln in (kept.extract_text() or "").splitlines() if ln.strip())


def _place(page, tables: list[_Table], items: list[PdfItem]) -> list[Block | _Table]:
    """A page's blocks without the text inside its tables, each table (sorted by top) before the first element
    that starts below its top."""
    out: list[Block | _Table] = []
    pending = list(tables)
    for it in items:
        box = _on_page(page, it.box) if it.box else None
        while box and pending and box[1] >= pending[0].box[1] - TOLERANCE:
            out.append(pending.pop(0))
        if box and any(_inside(box, t.box) for t in tables):
            continue                                            # a cell (or cells) of a table
        text = _outside_text(page, box, tables) if box and any(_overlap(box, t.box) for t in tables) else None
        if text is None:
            out.append(it.block)
        elif text:                                              # straddled a table's edge: the text outside
            out.append(Block(text, it.block.is_title, it.block.page))
    return out + pending


def _assemble(blocks: list[Block], placed: dict[int, list[Block | _Table]]) -> list[Block | _Table]:
    """blocks (in page order) with each page in placed replaced by its placed blocks; a stable sort keeps each
    page's own order."""
    kept = [b for b in blocks if b.page not in placed] + [x for n in placed for x in placed[n]]
    return sorted(kept, key=lambda x: x.page or 0)


def _pages_joined(items: list[Block | _Table]) -> list[Block]:
    """Blocks; a table that goes on from the previous page's last table (same columns, nothing but a page
    number or a running header between) loses the header the PDF repeated. Right after that table it is its
    rows only, which the chunker reads as the same table (its header on every piece); after a page number it
    is a table of its own with that table's header."""
    out: list[Block] = []
    prev: _Table | None = None
    between: list[Block] = []
    for it in items:
        if not isinstance(it, _Table):
            out.append(it)
            between.append(it)
            continue
        text = markdown_table(it.rows)
        if prev and it.page == prev.page + 1 and _same_columns(it, prev) \
                and all(len(b.text.strip()) <= SHORT_TEXT for b in between):
            repeated = it.rows[0] == prev.rows[0]
            header, rows = prev.rows[0], it.rows[int(repeated):]
            _carry_cut_cells(prev, it, int(repeated))
            if not between:                                 # right after it: its rows only
                text = continued_rows(header, it.rows)
            else:                                           # after a page number: a table with its header
                text = markdown_table([header] + rows) if rows else ""
            it.rows, it.cells = [header] + rows, [prev.cells[0]] + it.cells[int(repeated):]
        if text:
            out.append(Block(text, page=it.page))
        prev, between = it, []
    return out


def _carry_cut_cells(prev: _Table, cont: _Table, first: int) -> None:
    """Fill cont's rows (from row first) where a merged cell the page break cut goes on: an empty cell at its top
    under a column whose cell in prev's last row has text, when either part covers more than one row (the
    cell ran on over the page). Two one-row cells are two cells: an empty one stays empty."""
    if len(cont.rows) <= first or len(prev.rows) < 2:
        return
    last, top = prev.rows[-1], cont.rows[first]
    for j, (above, here) in enumerate(zip(last, top)):
        box_above, box = prev.cells[-1][j], cont.cells[first][j]
        if not above or here or not box_above or not box:
            continue
        row_top, row_bottom = _row_span(cont, first)
        merged_above = box_above[1] < _row_span(prev, len(prev.rows) - 1)[0] - TOLERANCE
        merged_here = box[3] > row_bottom + TOLERANCE
        if (merged_above or merged_here) and box[1] <= row_top + TOLERANCE:
            for i in range(first, len(cont.rows)):
                if cont.cells[i][j] == box:
                    cont.rows[i][j] = above


def _row_span(t: _Table, i: int) -> tuple[float, float]:
    """The top and bottom of row i: those of its one-row cells (a merged cell reaches beyond)."""
    boxes = [b for b in t.cells[i] if b]
    return max(b[1] for b in boxes), min(b[3] for b in boxes)


def _same_columns(a: _Table, b: _Table) -> bool:
    return len(a.edges) == len(b.edges) and all(abs(x - y) <= TOLERANCE for x, y in zip(a.edges, b.edges))


def _note(crowded: list[int], late: list[int]) -> str:
    parts = ([f"{_pages(crowded)} (over {MAX_PAGE_OBJECTS:,} objects and characters)"] if crowded else []) + \
        ([f"{_pages(late)} ({TIME_SHARE:.0%} of ingest.parse_timeout_s had passed)"] if late else [])
    return f"tables not looked for on {', '.join(parts)}: their cells read as text" if parts else ""


def _pages(pages: list[int]) -> str:
    shown = ", ".join(map(str, pages[:5])) + (", …" if len(pages) > 5 else "")
    return f"page{'s' * (len(pages) != 1)} {shown}"
