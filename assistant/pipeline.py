"""Ingestion pipeline: SourceDocument → metadata → chunks → store, atomically per document; vectors behind.

Text stage, per document under the knowledge base's write lock (store/locks.py: threads and processes, of
every host with the PostgreSQL catalog; released between documents): the unchanged / duplicate checks, mark
the document pending, stage its rows (with their jieba tokens) in batches of ingest.write_batch, then commit
rows, lexical index and state in one transaction: the document is searchable by BM25 from that moment; the
previous version's vectors go. A failure discards the staged rows; a crash (kill -9) leaves the old version or
the new one visible, never half a document.

Vector stage (fill_vectors, the embedding worker): the catalog lists the committed chunks still without a vector;
the worker embeds a batch of them outside the write lock (a large document no longer holds it while it is
embedded), then, under it, writes the vectors of those chunks that are still committed (a replace or a delete
meanwhile drops the rest) and marks them. A crash or a restart loses at most one batch of work: the next worker
(the next ingest, `kb embed`) resumes from the catalog. One worker per knowledge base (store.embed_locks).

Originals: a document's extracted text, and the file it was parsed from (up to ingest.max_file_mb), are staged
in the originals store (files under data_dir, or rows of the PostgreSQL database) before the commit and
published after it; the document's `origin` names them. Each chunk's metadata carries "offsets" [start, end]
into that text and "pages" when its blocks had pages.
"""
from __future__ import annotations

import fnmatch
import hashlib
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from langchain_core.embeddings import Embeddings

from assistant.components.store import KnowledgeStore
from assistant.components.store.catalog import ChunkRecord, DuplicateContent, origin_blobs
from assistant.components.store.originals import Staged
from assistant.components.store.tokens import tokenize
from assistant.filters import LATEST_TEXT, STATUSES, FilterError, date_to_int
from assistant.progress import Progress, no_progress
from assistant.settings import ChunkingSettings, IngestSettings
from ingest.chunking import Block, Chunk, block_starts, chunk_blocks, format_heading_path
from ingest.discovery import scan
from ingest.loaders import LoadError, SourceDocument, load_file
from ingest.metadata import (META_HEADING, META_PASSAGE, extract_metadata, lead_title, metadata_passage,
                             metadata_passage_prefix, parse_cn_date)

DEFAULT_STATUS = "现行有效"
# what a stored document's hash covers besides its content: bumped when the chunks made from the same content
# change shape (v1: the 文件信息 passage; v2: positions and originals), so a re-ingest after an upgrade replaces
# each document once
INDEX_FORMAT = "positions-v2"


@dataclass
class DocResult:
    source: str
    doc_id: str | None
    status: str            # added | replaced | unchanged | duplicate | skipped | failed
    chunks: int = 0
    message: str = ""
    seconds: float = 0.0
    title: str = ""
    pending_vectors: int = 0   # chunks searchable by BM25 still waiting for their vectors (when the report was made)
    how: list[str] = field(default_factory=list)   # how the file was read: "OFD, 2 pages", "3 tables", ...


@dataclass
class VectorReport:
    kb: str
    written: int = 0           # vectors written by this worker
    skipped: int = 0           # embedded, then not written: the chunk was replaced or deleted meanwhile
    pending: int = 0           # chunks of the knowledge base still without a vector when it stopped
    seconds: float = 0.0
    error: str = ""            # why it stopped early (the text stage stands; the next worker resumes)

    def to_dict(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 2)}


@dataclass
class IngestReport:
    kb: str
    results: list[DocResult] = field(default_factory=list)
    seconds: float = 0.0       # the text stage: every document searchable by BM25 after it
    notes: list[str] = field(default_factory=list)     # what the run repaired before it began
    vectors: VectorReport | None = None                # the vector stage, when the caller waited for it

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
                "seconds": round(self.seconds, 2), "results": [asdict(r) for r in self.results], "notes": self.notes,
                "vectors": self.vectors.to_dict() if self.vectors else None}


class DocumentError(ValueError):
    pass


def normalise_metadata(doc: SourceDocument) -> dict:
    """Extracted 公文 metadata, overridden by what the source states; validated, with the field named."""
    meta = {k: v for k, v in doc.hints.items() if v not in (None, "")}     # the file's properties: weakest
    if doc.extract_metadata:
        meta.update({k: v for k, v in extract_metadata(doc.text, title_hint=doc.title or None).items() if v})
    meta.update({k: v for k, v in doc.metadata.items() if v not in (None, "")})
    # a line of a multi-document file (.jsonl) with no title of its own is named by its opening, not the file
    untitled = ":" in doc.source and doc.text.strip()
    meta["title"] = str(meta.get("title") or doc.title or (lead_title(doc.text) if untitled else "")
                        or Path(doc.source.split(":")[0]).stem)
    meta["status"] = str(meta.get("status") or DEFAULT_STATUS)
    if meta["status"] not in STATUSES:
        raise DocumentError(f"metadata field 'status' is {meta['status']!r}; use one of {', '.join(STATUSES)}")
    meta.pop(LATEST_TEXT, None)     # the catalog decides it from the law's texts, never the source
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
    return meta["title"] not in (Path(doc.source.split(":")[0]).stem, lead_title(doc.text))    # a label, no title


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

    def ingest_document(self, kb: str, doc: SourceDocument,
                        on_batch: Callable[[int, int], None] | None = None) -> DocResult:
        """The text stage of one document, under the knowledge base's write lock: searchable by BM25 when it
        returns, its vectors pending; on_batch(chunks staged, chunks) after each batch of ingest.write_batch."""
        t0 = time.perf_counter()
        catalog = self.store.catalog
        try:
            meta = normalise_metadata(doc)
            meta["sensitivity"] = self._sensitivity(doc, meta)
        except DocumentError as exc:
            return DocResult(doc.source, doc.doc_id, "failed", message=str(exc))
        content_hash = index_hash(doc)
        with self.store.writer(kb):
            existing = catalog.get_document(kb, doc.doc_id)
            if existing and existing["state"] == "complete" and existing["content_hash"] == content_hash:
                return DocResult(doc.source, doc.doc_id, "unchanged", existing["n_chunks"], title=meta["title"])
            twin = catalog.find_by_hash(kb, content_hash)
            if twin and twin["doc_id"] != doc.doc_id:
                return DocResult(doc.source, doc.doc_id, "duplicate", 0, f"same content as {twin['doc_id']}",
                                 title=meta["title"])
            chunks, has_passage, pages = self._chunks(doc, meta)
            if not chunks:
                return DocResult(doc.source, doc.doc_id, "failed", message="no text to index")
            old_ids = catalog.document_chunk_ids(kb, doc.doc_id) if existing else set()
            staged, origin = self._stage_originals(doc, pages)
            catalog.mark_pending(kb, doc.doc_id, content_hash, meta["title"], doc.source, meta, doc.path)
            try:
                new_ids = self._stage_batches(kb, doc, meta, content_hash, chunks, has_passage, on_batch)
                flags = catalog.commit_document(kb, doc.doc_id, content_hash, meta["title"], doc.source, meta,
                                                doc.path, origin)
            except DuplicateContent as exc:      # another writer committed this content first
                self.store.originals.discard(staged)
                self.discard_uncommitted(kb, doc.doc_id)
                return DocResult(doc.source, doc.doc_id, "duplicate", 0, str(exc), title=meta["title"])
            except BaseException:
                self.store.originals.discard(staged)
                self.discard_uncommitted(kb, doc.doc_id)
                raise
            self.store.originals.publish(staged)
            if old_ids:    # the previous version's chunks left the catalog with the commit: their vectors go too
                self.store.vectors.delete_document(kb, doc.doc_id, keep=new_ids)
            self.store.flag_vectors(kb, flags)
            if existing:   # and its originals, unless another document uses them
                self.store.release_originals(origin_blobs(existing.get("origin")))
        # a document left pending by a crash had no visible version: completing it adds it
        return DocResult(doc.source, doc.doc_id, "replaced" if old_ids else "added", len(chunks),
                         seconds=time.perf_counter() - t0, title=meta["title"], pending_vectors=len(new_ids))

    def _sensitivity(self, doc: SourceDocument, meta: dict) -> str:
        """数据分类分级: the level the document states (metadata `sensitivity`; `level` is a law's 效力级别), else
        the first folder rule matching its source name or server path, else the default. An unknown name fails
        the document, naming the field."""
        cls = self.store.settings.classification
        level = str(meta.get("sensitivity") or "")
        if not level:
            where = [doc.source] + ([str(doc.path)] if doc.path else [])
            level = next((r["level"] for r in cls.folder_rules
                          if any(fnmatch.fnmatch(w, r["pattern"]) for w in where)), cls.default_level)
        if level not in cls.levels:
            raise DocumentError(f"metadata field 'sensitivity' is {level!r}; use one of {', '.join(cls.levels)}")
        return level

    def _chunks(self, doc: SourceDocument, meta: dict) -> tuple[list[Chunk], bool, list[list[int]]]:
        """The document's chunks, the 文件信息 passage last when it has one (the bool), and where its pages begin
        in its text ([offset, page] pairs)."""
        # a stored 文件信息 passage comes back in the text a document is re-indexed from: it is not body text
        prefix = metadata_passage_prefix(meta["title"])
        blocks = doc.blocks or [Block(line) for line in doc.text.splitlines()]
        starts = block_starts(doc.text, blocks)
        kept = [(b, at) for b, at in zip(blocks, starts) if not b.text.strip().startswith(prefix)]
        if doc.chunks is not None:
            chunks = locate_chunks(doc.text, doc.chunks)
        else:
            chunks = chunk_blocks([b for b, _ in kept], max_chars=self.chunking.max_chars,
                                  min_chars=self.chunking.min_chars, starts=[at for _, at in kept])
        chunks = [c for c in chunks if c.text.strip()]
        # one metadata passage per document (标题, 文号, 发文机关, 成文日期, 文种, 效力), retrieved and cited like any chunk
        passage = metadata_passage(meta) if chunks and _titled(doc, meta) else None
        if passage:
            chunks.append(Chunk(text=passage, heading_path=[META_HEADING], position=len(chunks)))
        return chunks, passage is not None, page_starts(blocks, starts)

    def _stage_originals(self, doc: SourceDocument, pages: list[list[int]]) -> tuple[list[Staged | None], dict]:
        """Copies of the document's text and file in the originals store (published after the commit) and the
        `origin` that names them."""
        originals = self.store.originals
        text = originals.stage_text(doc.text)
        origin: dict = {"text": text.sha256, "chars": len(doc.text)}
        if pages:
            origin["pages"] = pages
        file = originals.stage_file(doc.file, self.limits.max_file_mb * 2**20) if doc.file else None
        if file is not None:
            origin.update(file=file.sha256, size=file.size, name=Path(doc.source.replace("\\", "/")).name)
        return [text, file], origin

    def _stage_batches(self, kb: str, doc: SourceDocument, meta: dict, content_hash: str, chunks: list[Chunk],
                       has_passage: bool, on_batch: Callable[[int, int], None] | None) -> set[str]:
        """Stage the chunk rows a batch at a time, so memory stays flat however long the document; the new
        chunk ids."""
        step = max(self.limits.write_batch, 1)
        new_ids: set[str] = set()
        for start in range(0, len(chunks), step):
            records = []
            for pos in range(start, min(start + step, len(chunks))):
                ch = chunks[pos]
                heading = format_heading_path(meta["title"], ch.heading_path)
                cmeta = {**meta, "kb": kb, "doc_id": doc.doc_id, "position": pos, "heading": heading,
                         "source": doc.source}
                if ch.article:
                    cmeta["article"] = ch.article
                if ch.start is not None and ch.end is not None:
                    cmeta["offsets"] = [ch.start, ch.end]
                if ch.pages:
                    cmeta["pages"] = list(ch.pages)
                if has_passage and pos == len(chunks) - 1:
                    cmeta["passage"] = META_PASSAGE
                records.append(ChunkRecord(f"{doc.doc_id}#{content_hash[:8]}#{pos:04d}", doc.doc_id, pos, ch.text,
                                           tokenize(embedding_text(heading, ch.text)), cmeta))
            self.store.catalog.stage_chunks(kb, doc.doc_id, records)
            new_ids.update(r.chunk_id for r in records)
            if on_batch:
                on_batch(len(new_ids), len(chunks))
        return new_ids

    def fill_vectors(self, kb: str, progress: Progress = no_progress, doc_ids: list[str] | None = None) -> VectorReport:
        """The embedding worker: embed every committed chunk of the knowledge base that lacks a vector (of
        doc_ids only: what one ingest waits for, not a background backlog), a batch of ingest.write_batch at a
        time, outside the write lock; write each batch under it."""
        catalog, report, t0 = self.store.catalog, VectorReport(kb), time.perf_counter()
        step = max(self.limits.write_batch, 1)
        waiting = lambda: progress("vectors", 0, None, "waiting for another process's embedding worker")  # noqa: E731
        # one backlog worker per KB at a time; an ingest filling its own documents does not queue behind one (a
        # row both embed is written once: still_unembedded under the write lock)
        lock = self.store.embed_locks.hold(kb, on_wait=waiting) if doc_ids is None else nullcontext()
        with lock:
            after, done = 0, 0
            if doc_ids is not None:
                waiting_docs = catalog.pending_vectors_by_document(kb)
                mine = sum(waiting_docs.get(d, 0) for d in doc_ids)
            while True:
                rows = catalog.unembedded(kb, step, after, doc_ids)
                if not rows:
                    break
                after = rows[-1]["rowid"]
                total = done + catalog.vector_counts(kb)[1] if doc_ids is None else mine
                progress("vectors", done, total, rows[0]["metadata"].get("title", ""))
                vectors = self.embeddings.embed_documents(
                    [embedding_text(r["metadata"].get("heading", ""), r["text"]) for r in rows])
                with self.store.writer(kb):
                    live = catalog.still_unembedded(kb, [r["chunk_id"] for r in rows])
                    keep = [i for i, r in enumerate(rows) if r["chunk_id"] in live]
                    if keep:
                        # the metadata as committed now: a commit meanwhile may have changed a latest_text
                        now = catalog.get_chunks(kb, [rows[i]["chunk_id"] for i in keep])
                        self.store.vectors.upsert(kb, [rows[i]["chunk_id"] for i in keep], [vectors[i] for i in keep],
                                                  [now[rows[i]["chunk_id"]]["metadata"] for i in keep],
                                                  [rows[i]["text"] for i in keep])
                        catalog.set_embedded(kb, [rows[i]["chunk_id"] for i in keep])
                report.written += len(keep)
                report.skipped += len(rows) - len(keep)
                done += len(rows)
            report.pending = catalog.vector_counts(kb)[1]
            progress("vectors", done, done + report.pending, "")
        report.seconds = time.perf_counter() - t0
        return report

    def fill_vectors_claimed(self, kb: str, progress: Progress = no_progress) -> VectorReport:
        """The scale-out embedding worker (PostgreSQL catalog, Chroma server): claim a batch no other worker holds,
        embed it, write its vectors and mark it in the claim's transaction; until the backlog is empty. No file
        lock: the rows' locks keep a replace or delete of those chunks waiting until the batch is written, and
        the Chroma server takes concurrent writers."""
        catalog, report, t0 = self.store.catalog, VectorReport(kb), time.perf_counter()
        step = max(self.limits.write_batch, 1)
        while True:
            with catalog.claim_unembedded(kb, step) as rows:
                if not rows:
                    break
                progress("vectors", report.written, None, rows[0]["metadata"].get("title", ""))
                vectors = self.embeddings.embed_documents(
                    [embedding_text(r["metadata"].get("heading", ""), r["text"]) for r in rows])
                ids = [r["chunk_id"] for r in rows]
                self.store.vectors.upsert(kb, ids, vectors, [r["metadata"] for r in rows], [r["text"] for r in rows])
                catalog.set_embedded(kb, ids)
            report.written += len(rows)
        report.pending = catalog.vector_counts(kb)[1]
        report.seconds = time.perf_counter() - t0
        return report

    def discard_uncommitted(self, kb: str, doc_id: str) -> int:
        """Remove what a write of doc_id left before its commit (staged rows, their vectors); the number of
        vectors removed. Call it holding the knowledge base's write lock."""
        committed = self.store.catalog.document_chunk_ids(kb, doc_id)
        stale = [i for i in self.store.catalog.staged(kb).get(doc_id, []) if i not in committed]
        if stale:
            self.store.vectors.delete_ids(kb, stale)
        self.store.catalog.drop_staged(kb, doc_id)
        return len(stale)

    def recover(self, kb: str) -> list[str]:
        """Discard what writers that died mid-document (kill -9, power loss) left in the knowledge base; one
        line per document. Safe whenever the write lock is held: a live writer holds it while it has staged rows."""
        notes = []
        with self.store.writer(kb):
            for doc_id in self.store.catalog.staged(kb):
                removed = self.discard_uncommitted(kb, doc_id)
                notes.append(f"{doc_id}: removed {removed} vectors an interrupted ingest had written")
        return notes

    def ingest_documents(self, kb: str, items: Iterable[SourceDocument | LoadError], total: int | None = None,
                         progress: Progress = no_progress) -> IngestReport:
        self.ensure_kb(kb)
        report = IngestReport(kb, notes=self.recover(kb))
        t0 = time.perf_counter()
        progress("ingest", 0, total, "")
        try:
            for item in items:
                if isinstance(item, LoadError):
                    result = DocResult(item.source, None, "failed", message=item.message)
                else:
                    done, label = len(report.results), item.title or Path(item.source).name

                    def on_batch(written: int, n: int) -> None:   # a long document shows its own progress
                        progress("ingest", done, total, f"{written:,}/{n:,} chunks · {label}")
                    try:
                        result = self.ingest_document(kb, item, on_batch)
                    except Exception as exc:  # noqa: BLE001 - one bad document must not stop the batch
                        result = DocResult(item.source, item.doc_id, "failed",
                                           message=f"{type(exc).__name__}: {exc}"[:300])
                    result.how = list(item.how)
                report.results.append(result)
                progress("ingest", len(report.results), total, result.title or result.source)
        finally:
            report.seconds = time.perf_counter() - t0
        return report

    def ingest_paths(self, kb: str, paths: list[str | Path], progress: Progress = no_progress,
                     source_names: dict[str, str] | None = None, extra_metadata: dict | None = None) -> IngestReport:
        """Files and folders. source_names maps a path to the stable name its document id derives from and
        readers see (uploads are saved under temporary names); otherwise a document's id derives from its absolute
        path and readers see its path relative to the named folder's parent. extra_metadata (e.g. status) applies
        to every document. Every path left out gets a result line: skipped (hidden, symlink leaving the folder,
        not a regular file) or failed (missing, unsupported, too large, unreadable)."""
        found = scan(paths, self.limits.max_files)

        yielded = 0     # each item yielded is reported before the next is read: the results so far

        def items() -> Iterable[SourceDocument | LoadError]:
            nonlocal yielded
            for item in found.problems:
                yielded += 1
                yield item
            for f in found.files:
                name = (source_names or {}).get(str(f.path))

                def on_page(done: int, pages: int, label: str = Path(f.name).name) -> None:  # a scan's OCR
                    progress("ingest", yielded, total, f"OCR {done}/{pages} pages · {label}")
                try:
                    for doc in load_file(f.path, name, self.limits, shown_as=None if name else f.name,
                                         on_page=on_page):
                        if extra_metadata and isinstance(doc, SourceDocument):
                            doc.metadata.update(extra_metadata)
                        yielded += 1
                        yield doc
                except LoadError as exc:
                    yielded += 1
                    yield exc

        total = len(found.problems) + sum(_count_lines(f.path) if f.path.suffix.lower() == ".jsonl" else 1
                                          for f in found.files)
        report = self.ingest_documents(kb, items(), total=total, progress=progress)
        report.results += [DocResult(s.source, None, "skipped", message=s.message) for s in found.skipped]
        return report


def locate_chunks(text: str, chunks: list[Chunk]) -> list[Chunk]:
    """Chunks a structured source gave (law articles) with their start/end: where each one's text stands in the
    document's text, in order (none where it is not found verbatim)."""
    cursor = 0
    for c in chunks:
        if c.start is None:
            at = text.find(c.text, cursor)
            if at >= 0:
                c.start, c.end = at, at + len(c.text)
        if c.end is not None:
            cursor = c.end
    return chunks


def page_starts(blocks: list[Block], starts: list[int | None]) -> list[list[int]]:
    """[offset, page] where each page begins in the document's text (the first block of each page that was found)."""
    out: list[list[int]] = []
    for b, at in zip(blocks, starts):
        if b.page is not None and at is not None and (not out or out[-1][1] != b.page):
            out.append([at, b.page])
    return out


def blocks_from_text(text: str, pages: list[list[int]] | None, title: str = "") -> list[Block]:
    """A stored text's lines as blocks, each with the page it begins on (re-indexing from an original's text); a
    line that is the document's title is flagged as one, as its parser had it."""
    from bisect import bisect_right
    marks = [at for at, _ in pages or []]
    blocks, at = [], 0
    for piece in text.splitlines(keepends=True):
        line = piece.splitlines()[0] if piece.splitlines() else ""
        k = bisect_right(marks, at) - 1
        blocks.append(Block(line, bool(title) and line.strip() == title, pages[k][1] if pages and k >= 0 else None))
        at += len(piece)
    return blocks


def embedding_text(heading: str, text: str) -> str:
    """What a chunk is embedded (and tokenized) as: its heading path line, then its text."""
    return f"{heading}\n{text}"


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())
