"""Offline Chinese OCR of scanned pages: RapidOCR (rapidocr-onnxruntime 1.4.4, whose wheel ships the PP-OCRv4
det/rec and the direction-classifier ONNX models: nothing is downloaded) on pages rendered by pdfium (pypdfium2,
no poppler) or on image files. Optional: the `ocr` extra; without it a scanned page is reported, not read.

Everything here runs in the bounded parse worker (ingest/isolation.py), one page per worker call: each page has
its own time limit and the caller reports progress between pages. Reading order and the confidence filter are in
ingest/ocr_layout.py.
"""
from __future__ import annotations

import importlib.util
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")     # onnxruntime reads it at import only

from ingest.ocr_layout import boxes_from_points, page_text  # noqa: E402
from ingest.parsers import ParseError  # noqa: E402

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
IMAGE_FORMATS = {"PNG", "JPEG", "TIFF", "MPO"}          # MPO: a JPEG with extra frames, as some cameras write
# boxes whose recognition score is below this are dropped. On benchmarks/ocr_quality.py every threshold from 0.5
# to 0.9 gave the same accuracy (clean body text scores above 0.95) and 0 kept the one garbage box a red seal
# produced; 0.75 sits in the middle of that flat range
DEFAULT_MIN_CONFIDENCE = 0.75


@dataclass(frozen=True)
class OcrOptions:
    """What the worker needs from ingest settings (a plain value: it crosses the process boundary)."""
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    max_pixels: int = 40_000_000
    dpi: int = 200
    threads: int = 2

    @classmethod
    def from_settings(cls, limits) -> "OcrOptions":
        return cls(limits.ocr_min_confidence, limits.ocr_max_pixels, limits.ocr_dpi, limits.ocr_threads)


@dataclass
class OcrPage:
    page: int                # 1-based
    paragraphs: list[str]
    dropped: int             # boxes below min_confidence
    columns: int
    seconds: float


def available() -> bool:
    return importlib.util.find_spec("rapidocr_onnxruntime") is not None and \
        importlib.util.find_spec("pypdfium2") is not None


_engine = None


def _get_engine(threads: int):
    """One engine per worker process (loading the three models takes ~0.5 s). text_score 0: every box comes back
    with its score, so the filter here can count what it drops."""
    global _engine
    if _engine is None:
        from rapidocr_onnxruntime import RapidOCR
        # rec_batch_num 1: measured ~2x faster than batches of 6 on CPU (a batch pads every line to the widest)
        # det limit "max" 2000: a page is detected at its own size (at most 2000 px a side, as the engine reads
        # it anyway); the default "min" 736 upscaled every small image (a 780 x 200 crop to 2870 x 736)
        _engine = RapidOCR(text_score=0.0, print_verbose=False, intra_op_num_threads=max(threads, 1),
                           inter_op_num_threads=1, rec_batch_num=1, det_limit_type="max", det_limit_side_len=2000)
    return _engine


def ocr_image(image, options: OcrOptions, page: int = 1) -> OcrPage:
    """OCR of one PIL image."""
    t0 = time.perf_counter()
    # no direction classifier: 公文 scans are upright, and on benchmarks/ocr_quality.py it turned a clean line's
    # crop so that it came back empty (score 0); without it the page read whole and no slower
    result, _ = _get_engine(options.threads)(image.convert("RGB"), use_cls=False)
    text = page_text(boxes_from_points(result), options.min_confidence)
    return OcrPage(page, text.paragraphs, text.dropped, text.columns, time.perf_counter() - t0)


# --- PDF pages ------------------------------------------------------------------------------------------------

def _render_scale(width_pt: float, height_pt: float, options: OcrOptions) -> float:
    """options.dpi, lowered for a page so large that it would exceed options.max_pixels (the pixels are ours to
    choose: a poster-sized page is read at a lower resolution rather than refused)."""
    scale = options.dpi / 72
    area = max(width_pt * height_pt, 1.0)
    return min(scale, math.sqrt(options.max_pixels / area))


def ocr_pdf_page(path: str, page: int, options: OcrOptions) -> OcrPage:
    """Render page (1-based) of a PDF and OCR it; runs in the worker."""
    import pypdfium2 as pdfium
    try:
        pdf = pdfium.PdfDocument(path)
        p = pdf[page - 1]
        w, h = p.get_size()
        image = p.render(scale=_render_scale(w, h, options), grayscale=False).to_pil()
    except pdfium.PdfiumError as exc:
        raise ParseError(f"cannot render page {page} of the PDF: {exc}") from None
    return ocr_image(image, options, page)


# --- image files ----------------------------------------------------------------------------------------------

def _open_image(path: str, max_pixels: int):
    from PIL import Image, UnidentifiedImageError
    try:
        img = Image.open(path)
    except Image.DecompressionBombError:      # PIL's own cap (far above ours) hit while reading the header
        raise ParseError(f"the image is too large to OCR: over {Image.MAX_IMAGE_PIXELS * 2 / 1e6:,.0f} megapixels; "
                         f"at most {max_pixels / 1e6:,.0f} (ingest.ocr_max_pixels)") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ParseError(f"cannot read the image (damaged or not PNG/JPEG/TIFF): {exc}") from None
    if img.format not in IMAGE_FORMATS:
        raise ParseError(f"the image is {img.format}; PNG, JPEG and TIFF are read")
    return img


def check_image_size(width: int, height: int, max_pixels: int, frame: int | None = None) -> None:
    if width * height > max_pixels:
        where = f"page {frame} is" if frame else "it is"
        raise ParseError(f"the image is too large to OCR: {where} {width:,} x {height:,} = {width * height / 1e6:,.0f} "
                         f"megapixels; at most {max_pixels / 1e6:,.0f} (ingest.ocr_max_pixels)")


def image_header(path: str | Path, max_pixels: int) -> None:
    """Refuse an image whose header declares more than max_pixels, before a pixel is decoded (PIL's open reads the
    header only); cheap enough for the calling process (content checks)."""
    with _open_image(str(path), max_pixels) as img:
        check_image_size(*img.size, max_pixels)


def image_frames(path: str, max_pixels: int, max_pages: int) -> int:
    """The number of pages (frames) of an image, each checked against max_pixels from its header; runs in the
    worker (a TIFF can hold many pages, each with its own size)."""
    with _open_image(path, max_pixels) as img:
        n = getattr(img, "n_frames", 1)
        if n > max_pages:
            raise ParseError(f"the image has {n:,} pages; at most {max_pages:,} are read by OCR (ingest.ocr_max_pages)")
        for k in range(n):
            img.seek(k)
            check_image_size(*img.size, max_pixels, k + 1 if n > 1 else None)
    return n


def ocr_image_frame(path: str, frame: int, options: OcrOptions) -> OcrPage:
    """OCR of frame (1-based) of an image file; runs in the worker."""
    with _open_image(path, options.max_pixels) as img:
        img.seek(frame - 1)
        check_image_size(*img.size, options.max_pixels)
        try:
            img.load()
        except (OSError, ValueError) as exc:
            raise ParseError(f"cannot decode the image: {exc}") from None
        return ocr_image(img, options, frame)
