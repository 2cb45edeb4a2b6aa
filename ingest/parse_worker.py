"""Imported once by the parse forkserver (ingest/isolation.py), never by the calling process: the parsers, warmed
up, so each forked worker starts with them loaded."""
import logging
import os
import sys

if os.environ.get("GOV_ASSISTANT_PARSE_WORKER_MAIN"):   # see ingest/isolation.py: workers skip the parent's main
    sys.modules["__main__"].__file__ = os.environ["GOV_ASSISTANT_PARSE_WORKER_MAIN"]
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# parsers log each oddity of a damaged file ("EOF marker not found"); the file's result line says what matters
logging.disable(logging.WARNING)

import ingest.parsers  # noqa: E402
import pypdf  # noqa: E402,F401  (damaged-PDF check)
import pdfplumber  # noqa: E402,F401  (PDF tables)
import ingest.ocr  # noqa: E402

if ingest.ocr.available():
    # OCR's stack (onnxruntime, OpenCV, shapely, pdfium) imported once; each worker builds its own engine, as
    # onnxruntime's thread pools do not survive a fork
    import pypdfium2  # noqa: E402,F401
    import rapidocr_onnxruntime  # noqa: E402,F401


# One parse of each format here imports its partitioner and loads what a first call loads (langdetect's profiles,
# the spaCy stand-in, numba's compiled PDF layout sort ...) once for every worker.
def _warm_up() -> None:
    import tempfile
    from pathlib import Path

    import docx
    import openpyxl
    import pptx

    with tempfile.TemporaryDirectory(prefix="parse-warmup-") as tmp:
        root = Path(tmp)
        d = docx.Document()
        d.add_paragraph("示范市人民政府关于推进公共数据开放的通知。Warm-up sentence.")
        d.save(root / "w.docx")
        wb = openpyxl.Workbook()
        wb.active.append(["事项", "责任单位"])
        wb.save(root / "w.xlsx")
        pptx.Presentation().save(root / "w.pptx")
        (root / "w.html").write_text("<h1>示范市通知</h1><p>正文内容。</p>", encoding="utf-8")
        (root / "w.pdf").write_bytes(ingest.parsers.tiny_pdf(["Warm-up sentence."]))
        for path in sorted(root.iterdir()):
            try:
                ingest.parsers.file_blocks(str(path))
            except Exception:  # noqa: BLE001 - a warm-up that fails only costs the first worker its time
                pass


_warm_up()

# the preloaded objects are shared copy-on-write with every worker: keep the collector from touching them
import gc  # noqa: E402

gc.freeze()
