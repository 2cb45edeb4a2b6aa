"""Scanned pages into blocks: a PDF's pages without a text layer and image files, OCR'd one page per bounded worker
call (ingest/isolation.py), so each page has its own time limit (ingest.ocr_page_timeout_s), the worker's memory
starts afresh per page and the caller can show progress page by page. A PDF's text-layer pages keep their text
and their ruled tables (ingest/pdf_tables.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from assistant.settings import IngestSettings
from ingest.chunking import Block
from ingest.isolation import WorkerFailed, run_bounded
from ingest.ocr import OcrOptions, available, image_frames, ocr_image_frame, ocr_pdf_page
from ingest.parsers import pdf_text

OnPage = Callable[[int, int], None]       # (pages done, pages to OCR)


class ScanError(Exception):
    """Why a file's pages could not be read, without the file name (the loader's LoadError adds it)."""


@dataclass
class Read:
    blocks: list[Block]
    note: str = ""           # what the result line says: "OCR 3 pages", pages left unread


def _ocr_ready(limits: IngestSettings) -> str:
    """'' when OCR can run, else why not."""
    if not limits.ocr:
        return "OCR is off (ingest.ocr)"
    if not available():
        return "OCR is not installed (the `ocr` extra: rapidocr-onnxruntime, pypdfium2)"
    return ""


def read_pdf(path: Path, limits: IngestSettings, on_page: OnPage | None = None) -> Read:
    target = str(path.resolve())
    try:
        pdf = run_bounded(pdf_text, (target, limits.parse_timeout_s), limits.parse_timeout_s,
                          limits.parse_memory_mb)
    except WorkerFailed as exc:
        raise ScanError(str(exc)) from None
    if not pdf.scanned:
        return Read(pdf.blocks, _and("text layer", pdf.note) if pdf.note else "")
    why_not = _ocr_ready(limits)
    if why_not:
        if not pdf.blocks:
            raise ScanError(f"no text found (a scanned PDF needs OCR first): {why_not}")
        unread = f"{_pages(len(pdf.scanned))} without a text layer not read: {why_not}"
        return Read(pdf.blocks, _and(unread, pdf.note))
    _check_pages(len(pdf.scanned), limits, "without a text layer")
    scanned = set(pdf.scanned)
    kept = [b for b in pdf.blocks if b.page not in scanned]       # a scan's few stray characters: OCR reads it all
    ocr_blocks, dropped = _ocr_pages(ocr_pdf_page, target, pdf.scanned, limits, on_page)
    blocks = sorted(kept + ocr_blocks, key=lambda b: b.page or 0)   # stable: each page's order stays
    return Read(blocks, _and(_note(len(pdf.scanned), pdf.pages if kept else None, dropped, limits), pdf.note))


def read_image(path: Path, limits: IngestSettings, on_page: OnPage | None = None) -> Read:
    why_not = _ocr_ready(limits)
    if why_not:
        raise ScanError(f"an image is read by OCR: {why_not}")
    target = str(path.resolve())
    try:
        frames = run_bounded(image_frames, (target, limits.ocr_max_pixels, limits.ocr_max_pages),
                             limits.parse_timeout_s, limits.parse_memory_mb)
    except WorkerFailed as exc:
        raise ScanError(str(exc)) from None
    blocks, dropped = _ocr_pages(ocr_image_frame, target, list(range(1, frames + 1)), limits, on_page)
    return Read(blocks, _note(frames, None, dropped, limits))


def _check_pages(n: int, limits: IngestSettings, what: str) -> None:
    if n > limits.ocr_max_pages:
        raise ScanError(f"{n:,} pages {what} need OCR; at most {limits.ocr_max_pages:,} (ingest.ocr_max_pages)")


def _ocr_pages(read_page, target: str, pages: list[int], limits: IngestSettings,
               on_page: OnPage | None) -> tuple[list[Block], int]:
    options = OcrOptions.from_settings(limits)
    blocks: list[Block] = []
    dropped = 0
    for done, page in enumerate(pages):
        if on_page:
            on_page(done, len(pages))
        try:
            result = run_bounded(read_page, (target, page, options), limits.ocr_page_timeout_s,
                                 limits.parse_memory_mb, timeout_setting="ingest.ocr_page_timeout_s")
        except WorkerFailed as exc:
            raise ScanError(f"OCR of page {page}: {exc}") from None
        blocks += [Block(text, page=page) for text in result.paragraphs]
        dropped += result.dropped
    if on_page:
        on_page(len(pages), len(pages))
    return blocks, dropped


def _and(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _pages(n: int) -> str:
    return f"{n} page" + ("s" if n != 1 else "")


def _note(n: int, total: int | None, dropped: int, limits: IngestSettings) -> str:
    note = f"OCR {n} of {_pages(total)}" if total else f"OCR {_pages(n)}"
    if dropped:
        note += (f"; {dropped} low-confidence line{'s' if dropped != 1 else ''} dropped (seal, signature or noise: "
                 f"below ingest.ocr_min_confidence {limits.ocr_min_confidence:g})")
    return note
