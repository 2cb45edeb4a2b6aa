"""Write operations that run as background jobs: upload a batch of files, re-index documents. The caller's
rights are checked before the job is accepted (and again by KnowledgeBaseService when it runs)."""
from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import BinaryIO

from assistant.services.access import Principal, require_write
from assistant.services.jobs import Job, JobManager
from assistant.services.knowledge_bases import KnowledgeBaseService
from assistant.services.uploads import save_uploads


def submit_upload(kbs: KnowledgeBaseService, jobs: JobManager, kb: str, files: list[tuple[str | None, BinaryIO]],
                  principal: Principal, upload_root: Path, max_bytes: int, max_files: int,
                  metadata: dict | None = None) -> Job:
    require_write(principal, kb)
    kbs.catalog.require_kb(kb)
    dest = upload_root / secrets.token_hex(8)
    paths = save_uploads(files, dest, max_bytes, max_files)
    # the document id derives from the file name, so uploading a file again replaces its previous version
    names = {str(p): p.name for p in paths}

    def work(progress):
        report = kbs.ingest_paths(kb, paths, progress, principal=principal, source_names=names, extra_metadata=metadata)
        for r in report.results:   # loader errors name the temporary path: show the uploaded name instead
            r.source = names.get(r.source, Path(r.source).name if r.source.startswith(str(dest)) else r.source)
        return report

    return jobs.submit("upload", kb, principal, work, files=[p.name for p in paths],
                       cleanup=lambda: shutil.rmtree(dest, ignore_errors=True))


def submit_reindex(kbs: KnowledgeBaseService, jobs: JobManager, kb: str, principal: Principal,
                   doc_id: str | None = None) -> Job:
    """Re-chunk and re-embed one document, or every document of the knowledge base."""
    require_write(principal, kb)
    kbs.catalog.require_kb(kb)
    doc_ids = [doc_id] if doc_id else [d["doc_id"] for d in kbs.documents(kb, principal=principal)]
    if doc_id:
        kbs.document(kb, doc_id, principal=principal)   # 404 now rather than a failed job later

    def work(progress):
        reports = []
        for i, one in enumerate(doc_ids):
            progress("reindex", i, len(doc_ids), one)
            reports.append(kbs.reindex_document(kb, one, principal=principal))
        progress("reindex", len(doc_ids), len(doc_ids), "")
        return reports

    return jobs.submit("reindex", kb, principal, work, files=doc_ids)
