"""Ingestion pipeline: SourceDocument → metadata → chunks → embeddings → store, atomically per document.

Order per document (see Catalog): embed everything first (the slow, failure-prone part, nothing written yet),
mark the document pending, write vectors under new content-addressed chunk ids, then commit catalog rows
(chunks + state) in one transaction, and only then drop the previous version's vectors. A crash at any point
leaves the old version or the new one visible, never half a document; a re-run completes it.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from langchain_core.embeddings import Embeddings

from assistant.components.store import KnowledgeStore
from assistant.components.store.bm25 import tokenize
from assistant.components.store.catalog import ChunkRecord
from assistant.filters import STATUSES, FilterError, date_to_int
from assistant.progress import Progress, no_progress
from assistant.settings import ChunkingSettings, IngestSettings
from ingest.chunking import Block, Chunk, chunk_blocks, format_heading_path
from ingest.loaders import LoadError, SourceDocument, discover, load_file
from ingest.metadata import (META_HEADING, META_PASSAGE, extract_metadata, metadata_passage,
                             metadata_passage_prefix, parse_cn_date)

DEFAULT_STATUS = "现行有效"
# what a stored document's hash covers besides its content: bumped when the chunks made from the same content
# change shape (v1: the 文件信息 passage), so a re-ingest after an upgrade replaces each document once
INDEX_FORMAT = "meta-passage-v1"


@dataclass
class DocResult:
    source: str
    doc_id: str | None
    status: str            # added | replaced | unchanged | duplicate | failed
    chunks: int = 0
    message: str = ""
    seconds: float = 0.0
    title: str = ""


@dataclass
class IngestReport:
    kb: str
    results: list[DocResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    @property
    def ok(self) -> bool:
        return not any(r.status == "failed" for r in self.results)

    @property
    def chunks(self) -> int:
        return sum(r.chunks for r in self.results if r.status in ("added", "replaced"))

    def to_dict(self) -> dict:
        return {"kb": self.kb, "ok": self.ok, "counts": self.counts, "chunks": self.chunks,
                "seconds": round(self.seconds, 2), "results": [asdict(r) for r in self.results]}


class DocumentError(ValueError):
    pass


def normalise_metadata(doc: SourceDocument) -> dict:
    """Extracted 公文 metadata, overridden by what the source states; validated, with the field named."""
    meta = {k: v for k, v in extract_metadata(doc.text, title_hint=doc.title or None).items() if v} \
        if doc.extract_metadata else {}
    meta.update({k: v for k, v in doc.metadata.items() if v not in (None, "")})
    meta["title"] = str(meta.get("title") or doc.title or Path(doc.source.split(":")[0]).stem)
    meta["status"] = str(meta.get("status") or DEFAULT_STATUS)
    if meta["status"] not in STATUSES:
        raise DocumentError(f"metadata field 'status' is {meta['status']!r}; use one of {', '.join(STATUSES)}")
    if meta.get("date"):
        iso = parse_cn_date(str(meta["date"]))
        if iso is None:
            raise DocumentError(f"metadata field 'date' is {meta['date']!r}; use YYYY-MM-DD")
        meta["date"] = iso
        try:
            meta["date_int"] = date_to_int(iso)
        except FilterError as exc:
            raise DocumentError(f"metadata field 'date': {exc}") from None
    # Chroma metadata values must be scalars
    return {k: (v if isinstance(v, (str, int, float, bool)) else str(v)) for k, v in meta.items()}


def _titled(doc: SourceDocument, meta: dict) -> bool:
    """False when the title is only the name of a multi-document file (a .jsonl line with no title of its own):
    a 文件信息 passage would then name every line of that file after it."""
    if doc.title or doc.metadata.get("title") or ":" not in doc.source:
        return True
    return meta["title"] != Path(doc.source.split(":")[0]).stem


def index_hash(doc: SourceDocument) -> str:
    """The stored version's hash: the document's content (title, text, stated metadata) and INDEX_FORMAT."""
    return hashlib.sha256(f"{doc.content_hash}|{INDEX_FORMAT}".encode()).hexdigest()


class IngestPipeline:
    def __init__(self, store: KnowledgeStore, embeddings: Embeddings, chunking: ChunkingSettings, embedding_name: str,
                 limits: IngestSettings | None = None):
        self.store = store
        self.embeddings = embeddings
        self.chunking = chunking
        self.embedding_name = embedding_name
        self.limits = limits or store.settings.ingest

    def ensure_kb(self, kb: str, description: str = "") -> None:
        self.store.catalog.create_kb(kb, self.embedding_name, description, exist_ok=True)

    def ingest_document(self, kb: str, doc: SourceDocument) -> DocResult:
        t0 = time.perf_counter()
        catalog = self.store.catalog
        try:
            meta = normalise_metadata(doc)
        except DocumentError as exc:
            return DocResult(doc.source, doc.doc_id, "failed", message=str(exc))
        content_hash = index_hash(doc)
        existing = catalog.get_document(kb, doc.doc_id)
        if existing and existing["state"] == "complete" and existing["content_hash"] == content_hash:
            return DocResult(doc.source, doc.doc_id, "unchanged", existing["n_chunks"], title=meta["title"])
        twin = catalog.find_by_hash(kb, content_hash)
        if twin and twin["doc_id"] != doc.doc_id:
            return DocResult(doc.source, doc.doc_id, "duplicate", 0, f"same content as {twin['doc_id']}",
                             title=meta["title"])

        # a stored 文件信息 passage comes back in the text a document is re-indexed from: it is not body text
        prefix = metadata_passage_prefix(meta["title"])
        blocks = [b for b in (doc.blocks or [Block(line) for line in doc.text.splitlines()])
                  if not b.text.strip().startswith(prefix)]
        chunks = doc.chunks if doc.chunks is not None else chunk_blocks(
            blocks, max_chars=self.chunking.max_chars, min_chars=self.chunking.min_chars)
        chunks = [c for c in chunks if c.text.strip()]
        if not chunks:
            return DocResult(doc.source, doc.doc_id, "failed", message="no text to index")
        # one metadata passage per document (标题, 文号, 发文机关, 成文日期, 文种, 效力), retrieved and cited like any chunk
        passage = metadata_passage(meta) if _titled(doc, meta) else None
        if passage:
            chunks = chunks + [Chunk(text=passage, heading_path=[META_HEADING], position=len(chunks))]
        records, search_texts = [], []
        for pos, ch in enumerate(chunks):
            heading = format_heading_path(meta["title"], ch.heading_path)
            search_text = f"{heading}\n{ch.text}"
            cmeta = {**meta, "kb": kb, "doc_id": doc.doc_id, "position": pos, "heading": heading,
                     "source": doc.source}
            if ch.article:
                cmeta["article"] = ch.article
            if passage and pos == len(chunks) - 1:
                cmeta["passage"] = META_PASSAGE
            records.append(ChunkRecord(f"{doc.doc_id}#{content_hash[:8]}#{pos:04d}", doc.doc_id, pos, ch.text,
                                       tokenize(search_text), cmeta))
            search_texts.append(search_text)
        vectors = self.embeddings.embed_documents(search_texts)

        old_ids = [c["chunk_id"] for c in catalog.document_chunks(kb, doc.doc_id)] if existing else []
        catalog.mark_pending(kb, doc.doc_id, content_hash, meta["title"], doc.source, meta)
        new_ids = [r.chunk_id for r in records]
        self.store.vectors.upsert(kb, new_ids, vectors, [r.metadata for r in records], [r.text for r in records])
        catalog.commit_document(kb, doc.doc_id, content_hash, meta["title"], doc.source, meta, records)
        self.store.vectors.delete_document(kb, doc.doc_id, keep=set(new_ids))
        self.store.bm25.apply(kb, removed=[i for i in old_ids if i not in set(new_ids)],
                              added=[(r.chunk_id, r.tokens, r.metadata) for r in records],
                              new_version=catalog.kb_version(kb))
        # a document left pending by a crash had no visible version: completing it adds it
        return DocResult(doc.source, doc.doc_id, "replaced" if old_ids else "added", len(records),
                         seconds=time.perf_counter() - t0, title=meta["title"])

    def ingest_documents(self, kb: str, items: Iterable[SourceDocument | LoadError], total: int | None = None,
                         progress: Progress = no_progress) -> IngestReport:
        self.ensure_kb(kb)
        report = IngestReport(kb)
        t0 = time.perf_counter()
        progress("ingest", 0, total, "")
        try:
            for item in items:
                if isinstance(item, LoadError):
                    result = DocResult(item.source, None, "failed", message=item.message)
                else:
                    try:
                        result = self.ingest_document(kb, item)
                    except Exception as exc:  # noqa: BLE001 - one bad document must not stop the batch
                        result = DocResult(item.source, item.doc_id, "failed",
                                           message=f"{type(exc).__name__}: {exc}"[:300])
                report.results.append(result)
                progress("ingest", len(report.results), total, result.title or result.source)
        finally:
            self.store.bm25.flush(kb)
            report.seconds = time.perf_counter() - t0
        return report

    def ingest_paths(self, kb: str, paths: list[str | Path], progress: Progress = no_progress,
                     source_names: dict[str, str] | None = None, extra_metadata: dict | None = None) -> IngestReport:
        """Files and folders. source_names maps a path to the stable name its document id derives from
        (uploads are saved under temporary names); extra_metadata (e.g. status) applies to every document."""
        files, problems = discover(paths)

        def items() -> Iterable[SourceDocument | LoadError]:
            yield from problems
            for path in files:
                try:
                    for doc in load_file(path, (source_names or {}).get(str(path)), self.limits):
                        if extra_metadata and isinstance(doc, SourceDocument):
                            doc.metadata.update(extra_metadata)
                        yield doc
                except LoadError as exc:
                    yield exc

        total = len(problems) + sum(_count_lines(p) if p.suffix.lower() == ".jsonl" else 1 for p in files)
        return self.ingest_documents(kb, items(), total=total, progress=progress)


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())
