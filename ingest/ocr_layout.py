"""OCR boxes → paragraphs in reading order (pure geometry, no OCR engine: testable on hand-made boxes).

The engine returns one box per detected text run, roughly top to bottom. A page is read here as:
boxes below the confidence threshold dropped (seals, signatures and smudges come back as low-score garbage), boxes
on one baseline joined into a line, a two-column page read left column then right column (a title or rule across
both columns stays where it is), and lines joined into paragraphs, broken where a 公文 paragraph visibly ends
(a blank gap, a first-line indent, or a previous line that stops short of the column's right edge).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from statistics import median


@dataclass
class Box:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    score: float

    @property
    def h(self) -> float:
        return max(self.y1 - self.y0, 1.0)

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass
class PageText:
    paragraphs: list[str]
    dropped: int = 0         # boxes below the confidence threshold (seal, signature, noise)
    columns: int = 1


def boxes_from_points(result) -> list[Box]:
    """The engine's [[4 corner points], text, score] triples as axis-aligned boxes."""
    out = []
    for points, text, score in result or []:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        out.append(Box(min(xs), min(ys), max(xs), max(ys), str(text), float(score)))
    return out


_ALNUM_END = re.compile(r"[A-Za-z0-9]$")
_ALNUM_START = re.compile(r"^[A-Za-z0-9]")


def _glue(left: str, right: str, wide_gap: bool = False) -> str:
    """Chinese runs join directly; Latin words and numbers keep a space between them, and so does a wide gap."""
    if not left:
        return right
    space = wide_gap or (_ALNUM_END.search(left) and _ALNUM_START.search(right))
    return left + (" " if space else "") + right


def _lines(boxes: list[Box]) -> list[list[Box]]:
    """Boxes on one baseline (vertical overlap of at least half the smaller box), each line left to right."""
    lines: list[list[Box]] = []
    for b in sorted(boxes, key=lambda b: b.cy):
        if lines:
            last = lines[-1]
            top, bottom = min(x.y0 for x in last), max(x.y1 for x in last)
            if min(bottom, b.y1) - max(top, b.y0) >= 0.5 * min(bottom - top, b.h):
                last.append(b)
                continue
        lines.append([b])
    return [sorted(line, key=lambda b: b.x0) for line in lines]


def _line_text(line: list[Box]) -> str:
    text = ""
    for prev, b in zip([None, *line], line):
        wide = prev is not None and b.x0 - prev.x1 > 0.8 * min(prev.h, b.h)
        text = _glue(text, b.text.strip(), wide)
    return text


def _paragraphs(boxes: list[Box]) -> list[str]:
    lines = _lines(boxes)
    if not lines:
        return []
    left = min(b.x0 for ln in lines for b in ln)
    right = max(b.x1 for ln in lines for b in ln)
    heights = [median(b.h for b in ln) for ln in lines]
    ch = median(heights)                                     # about one character's size
    gaps = [min(b.y0 for b in nxt) - max(b.y1 for b in cur) for cur, nxt in zip(lines, lines[1:])]
    usual_gap = median(gaps) if gaps else 0.0
    paragraphs: list[str] = []
    for i, line in enumerate(lines):
        text = _line_text(line)
        if not text:
            continue
        if i == 0 or not paragraphs:
            paragraphs.append(text)
            continue
        prev = lines[i - 1]
        blank = gaps[i - 1] > max(1.6 * usual_gap, usual_gap + 0.6 * ch)
        indented = line[0].x0 - left > 1.2 * ch
        prev_short = max(b.x1 for b in prev) < right - 2.0 * ch
        if blank or indented or prev_short:
            paragraphs.append(text)
        else:
            paragraphs[-1] = _glue(paragraphs[-1], text)
    return paragraphs


def column_gap(boxes: list[Box]) -> float | None:
    """The x of the gutter of a two-column page, or None. A gutter is a vertical strip in the middle half of the
    text that (almost) no box crosses, with at least three lines on each side that fill their column and run down
    the page side by side: a form's label/value pairs or a centred title do not make a page two columns."""
    if len(boxes) < 6:
        return None
    left, right = min(b.x0 for b in boxes), max(b.x1 for b in boxes)
    width = right - left
    if width <= 0:
        return None
    bins = 200
    step = width / bins
    count = [0] * bins
    for b in boxes:
        for k in range(int((b.x0 - left) / step), min(int((b.x1 - left) / step) + 1, bins)):
            count[k] += 1
    allowed = max(1, len(boxes) // 10)              # titles and rules that span both columns
    best, run, best_end = 0, 0, 0
    for k in range(bins // 4, 3 * bins // 4):
        run = run + 1 if count[k] <= allowed else 0
        if run > best:
            best, best_end = run, k
    ch = median(b.h for b in boxes)
    if best * step < max(0.02 * width, 0.8 * ch):
        return None
    gap = left + (best_end - best / 2 + 0.5) * step
    lcol = [b for b in boxes if b.x1 <= gap]
    rcol = [b for b in boxes if b.x0 >= gap]
    if len(lcol) < 3 or len(rcol) < 3:
        return None
    if median(b.w for b in lcol) < 0.5 * (gap - left) or median(b.w for b in rcol) < 0.5 * (right - gap):
        return None
    top = max(min(b.y0 for b in lcol), min(b.y0 for b in rcol))
    bottom = min(max(b.y1 for b in lcol), max(b.y1 for b in rcol))
    shorter = min(max(b.y1 for b in c) - min(b.y0 for b in c) for c in (lcol, rcol))
    if bottom - top < 0.5 * shorter:
        return None
    return gap


def page_text(boxes: list[Box], min_confidence: float) -> PageText:
    """One page's paragraphs in reading order and how many boxes fell below min_confidence."""
    boxes = [b for b in boxes if b.text.strip()]
    kept = [b for b in boxes if b.score >= min_confidence]
    dropped = len(boxes) - len(kept)
    gap = column_gap(kept)
    if gap is None:
        return PageText(_paragraphs(kept), dropped)
    # bands between the boxes that reach well into both columns (a title, a rule; a line whose box overshoots into
    # the gutter does not — a right-column line that opens with "，" starts a full character left of the gutter):
    # in each band, the left column, then the right one
    ch = median(b.h for b in kept)
    spans = [min(gap - b.x0, b.x1 - gap) > 2 * ch for b in kept]
    spanners = sorted((b for b, s in zip(kept, spans) if s), key=lambda b: b.cy)
    rest = [b for b, s in zip(kept, spans) if not s]
    paragraphs: list[str] = []
    upper = float("-inf")
    for cut in [*spanners, None]:
        lower = cut.cy if cut else float("inf")
        band = [b for b in rest if upper <= b.cy < lower]
        paragraphs += _paragraphs([b for b in band if (b.x0 + b.x1) / 2 < gap])
        paragraphs += _paragraphs([b for b in band if (b.x0 + b.x1) / 2 >= gap])
        if cut:
            paragraphs.append(cut.text.strip())
            upper = lower
    return PageText(paragraphs, dropped, columns=2)
