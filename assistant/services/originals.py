"""Back to the original: a document's kept file, its extracted text with a passage's span, a PDF page rendered with
the passage highlighted. Whoever may list a knowledge base's documents may read these (the same check)."""
from __future__ import annotations

import codecs
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from assistant.components import pdf_view
from assistant.components.store import KnowledgeStore
from assistant.components.store.catalog import CatalogError
from assistant.retrieval import positions
from assistant.services.access import Principal, readable_kbs
from ingest.loaders import display_name

MEDIA_TYPES = {".pdf": "application/pdf", ".txt": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown",
               ".html": "text/html", ".htm": "text/html", ".jsonl": "application/jsonl",
               ".doc": "application/msword", ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
               ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation"}
MAX_CONTEXT = 200_000        # characters of text around a span one call returns at most


@dataclass
class OriginalFile:
    path: Path
    filename: str
    media_type: str
    size: int


def download_name(name: str, fallback: str) -> str:
    """A file name safe in a Content-Disposition header and on any disk: the basename, without control, format or
    reserved characters."""
    base = display_name(str(name).replace("\\", "/").rsplit("/", 1)[-1])
    base = re.sub(r'[\x00-\x1f\x7f"*/:<>?\\|;]', "_", base).strip(" .")
    return base[:150] or fallback


def media_type(name: str, path: Path) -> str:
    suffix = Path(name).suffix.lower()
    kind = MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if kind.startswith("text/"):   # the original's own encoding: UTF-8 or, for older 公文, GB18030
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
            kind += "; charset=utf-8"
        except UnicodeDecodeError:
            kind += "; charset=gb18030"
    return kind


class OriginalsService:
    def __init__(self, store: KnowledgeStore):
        self.store = store
        self.catalog = store.catalog

    def _document(self, kb: str, doc_id: str, principal: Principal) -> dict:
        readable_kbs(principal, [kb])          # as KnowledgeBaseService.documents: no existence answer before it
        self.catalog.require_kb(kb)
        doc = self.catalog.get_document(kb, doc_id)
        if doc is None or not principal.sees(doc):   # above clearance: not found
            raise CatalogError(f"document {doc_id!r} not found in knowledge base {kb!r}")
        return doc

    def original(self, kb: str, doc_id: str, *, principal: Principal) -> OriginalFile:
        doc = self._document(kb, doc_id, principal)
        origin = doc.get("origin") or {}
        path = self.store.originals.path(origin.get("file"))
        if path is None:
            raise CatalogError(f"the original file of document {doc_id!r} was not found: none was kept (ingested "
                               "before originals were kept, not read from a file, or larger than ingest.max_file_mb)")
        name = download_name(origin.get("name") or doc.get("source") or doc_id, f"{doc_id}.bin")
        return OriginalFile(path, name, media_type(name, path), path.stat().st_size)

    def _chunk(self, kb: str, doc_id: str, chunk_id: str) -> dict:
        chunk = self.catalog.get_chunks(kb, [chunk_id]).get(chunk_id)
        if chunk is None or chunk["doc_id"] != doc_id:
            raise CatalogError(f"chunk {chunk_id!r} not found in document {doc_id!r}")
        return chunk

    def passage(self, kb: str, doc_id: str, *, principal: Principal, chunk_id: str | None = None,
                start: int | None = None, end: int | None = None, context: int | None = None) -> dict:
        """The document's extracted text (all of it, or `context` characters either side of the span) and the span
        to highlight: the chunk's offsets, or start/end as given. `offset` is where the returned text begins."""
        doc = self._document(kb, doc_id, principal)
        origin = doc.get("origin") or {}
        text = self.store.originals.read_text(origin.get("text"))
        if text is None:
            raise CatalogError(f"the extracted text of document {doc_id!r} was not found: it was ingested before "
                               "texts were kept (ingest it again)")
        where = {"offsets": None, "pages": [], "page": None}
        if chunk_id:
            chunk = self._chunk(kb, doc_id, chunk_id)
            where = positions(chunk["metadata"])
        elif start is not None or end is not None:
            s, e = start or 0, len(text) if end is None else end
            if not 0 <= s <= e <= len(text):
                raise ValueError(f"span [{s}, {e}] is outside the text (0-{len(text)})")
            where["offsets"] = [s, e]
        lo, hi = 0, len(text)
        span = where["offsets"]
        if context is not None and span:
            context = max(0, min(context, MAX_CONTEXT))
            lo, hi = max(0, span[0] - context), min(len(text), span[1] + context)
        original = self.store.originals.exists(origin.get("file"))
        name = origin.get("name") or ""
        return {"kb": kb, "doc_id": doc_id, "title": doc.get("title") or "", "chars": len(text), "offset": lo,
                "text": text[lo:hi], "span": span, "pages": where["pages"], "page": where["page"],
                "original": original, "name": name, "is_pdf": original and Path(name).suffix.lower() == ".pdf"}

    def page_image(self, kb: str, doc_id: str, *, principal: Principal, chunk_id: str | None = None,
                   page: int | None = None, scale: float = 1.5) -> pdf_view.PageImage:
        """A page of the original PDF as PNG: `page`, else the chunk's first page, else the page its text is found
        on, else the first; the chunk's passage highlighted where it is found on that page."""
        original = self.original(kb, doc_id, principal=principal)
        if original.media_type != "application/pdf":
            raise ValueError(f"document {doc_id!r} is not a PDF")
        passage = None
        if chunk_id:
            chunk = self._chunk(kb, doc_id, chunk_id)
            passage = chunk["text"]
            page = page or positions(chunk["metadata"])["page"] or pdf_view.find_page(original.path, passage)
        return pdf_view.render_page(original.path, page or 1, passage, max(0.5, min(scale, 3.0)))
