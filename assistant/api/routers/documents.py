"""Documents of a knowledge base: upload (multipart, many files → a job), list, metadata (+chunks), delete,
re-index (a job), the original file and the extracted text a citation's offsets point into. Writes need an editor
key with access to the knowledge base; reads, a key that may read it."""
from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse

from assistant.api.deps import Editor, Reader, get_container, note
from assistant.api.schemas import JobAccepted
from assistant.services.access import Principal
from assistant.services.ingest_jobs import submit_reindex, submit_upload
from assistant.services.uploads import parse_upload_metadata

router = APIRouter(prefix="/api/v1/kbs/{kb}", tags=["documents"])
KbPath = Annotated[str, Path(min_length=1, max_length=63)]
DocPath = Annotated[str, Path(min_length=1, max_length=300)]


def _accepted(job) -> dict:
    return {"job_id": job.id, "status_url": f"/api/v1/jobs/{job.id}", "kb": job.kb, "files": job.files}


@router.get("/documents", summary="Documents with their metadata (文号, 发文机关, 成文日期, 效力) and state")
def list_documents(kb: KbPath, request: Request, principal: Principal = Reader,
                   limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> list[dict[str, Any]]:
    note(request, kb=kb)
    return get_container(request).knowledge_bases.documents(kb, limit, offset, principal=principal)


@router.post("/documents", status_code=202, response_model=JobAccepted,
             summary="Upload files (.txt .md .html .docx .pdf .xlsx .pptx .jsonl); ingestion runs as a job")
def upload_documents(kb: KbPath, request: Request,
                     files: list[UploadFile] = File(..., description="One or more files (field name 'files')."),
                     metadata: str | None = Form(None, description='JSON object applied to every file, '
                                                                   'e.g. {"status": "已废止"}'),
                     principal: Principal = Editor) -> dict:
    c = get_container(request)
    api = c.settings.api
    note(request, kb=kb)
    max_mb = min(api.max_upload_mb, c.settings.ingest.max_file_mb)   # a larger file could not be ingested anyway
    job = submit_upload(c.knowledge_bases, c.jobs, kb, [(f.filename, f.file) for f in files], principal,
                        FsPath(c.settings.data_dir) / "uploads", max_mb * 2**20, api.max_files_per_upload,
                        parse_upload_metadata(metadata))
    return _accepted(job)


@router.get("/documents/{doc_id}", summary="One document's metadata, optionally with its chunks")
def get_document(kb: KbPath, doc_id: DocPath, request: Request, principal: Principal = Reader,
                 chunks: bool = Query(False)) -> dict[str, Any]:
    note(request, kb=kb, sources=[doc_id])
    return get_container(request).knowledge_bases.document(kb, doc_id, chunks, principal=principal)


# an original is the uploader's bytes: never run as a page of this origin (an .html upload would be stored XSS)
SOURCE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'",
                  "Cache-Control": "private, no-store"}
INLINE_TYPES = ("application/pdf", "text/plain")


@router.get("/documents/{doc_id}/source", summary="The original file the document was ingested from",
            response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "The file as ingested (its content type; PDF and plain text inline)."},
                       404: {"description": "No such knowledge base or document, or no original kept for it."}})
def document_source(kb: KbPath, doc_id: DocPath, request: Request, principal: Principal = Reader) -> FileResponse:
    note(request, kb=kb, sources=[doc_id])
    f = get_container(request).originals.original(kb, doc_id, principal=principal)
    inline = f.media_type.split(";")[0] in INLINE_TYPES
    return FileResponse(f.path, media_type=f.media_type, filename=f.filename, headers=SOURCE_HEADERS,
                        content_disposition_type="inline" if inline else "attachment")


@router.get("/documents/{doc_id}/text", summary="The document's extracted text and the span to highlight",
            description="Citation offsets [start, end] index this text (chunk_id: that chunk's span; or start/end). "
                        "context: only that many characters either side of the span; `offset` says where the "
                        "returned text begins.")
def document_text(kb: KbPath, doc_id: DocPath, request: Request, principal: Principal = Reader,
                  chunk_id: str | None = Query(None, max_length=300), start: int | None = Query(None, ge=0),
                  end: int | None = Query(None, ge=0),
                  context: int | None = Query(None, ge=0, le=200_000)) -> dict[str, Any]:
    note(request, kb=kb, sources=[chunk_id or doc_id])
    return get_container(request).originals.passage(kb, doc_id, principal=principal, chunk_id=chunk_id, start=start,
                                                    end=end, context=context)


@router.delete("/documents/{doc_id}", summary="Delete a document")
def delete_document(kb: KbPath, doc_id: DocPath, request: Request, principal: Principal = Editor) -> dict[str, str]:
    note(request, kb=kb, sources=[doc_id])
    get_container(request).knowledge_bases.delete_document(kb, doc_id, principal=principal)
    return {"deleted": doc_id}


@router.post("/documents/{doc_id}/reindex", status_code=202, response_model=JobAccepted,
             summary="Re-chunk and re-embed one document (a job)")
def reindex_document(kb: KbPath, doc_id: DocPath, request: Request, principal: Principal = Editor) -> dict:
    c = get_container(request)
    note(request, kb=kb, sources=[doc_id])
    return _accepted(submit_reindex(c.knowledge_bases, c.jobs, kb, principal, doc_id))


@router.post("/reindex", status_code=202, response_model=JobAccepted,
             summary="Re-chunk and re-embed every document (after a chunking or model change; a job)")
def reindex_kb(kb: KbPath, request: Request, principal: Principal = Editor) -> dict:
    c = get_container(request)
    note(request, kb=kb)
    return _accepted(submit_reindex(c.knowledge_bases, c.jobs, kb, principal))
