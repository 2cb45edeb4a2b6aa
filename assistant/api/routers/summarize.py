"""Summaries (issue #5): one document synchronously, or a batch of uploaded files as a job whose progress and
per-document results come from /api/v1/jobs/{id}; the batch's summaries.jsonl and digest.md stay in the data dir."""
from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import Field

from assistant.api.deps import Reader, get_container, note
from assistant.api.schemas import JobAccepted, Strict
from assistant.services.access import Principal
from assistant.services.uploads import save_uploads

router = APIRouter(prefix="/api/v1", tags=["summarize"])


class SummarizeRequest(Strict):
    text: str = Field(min_length=1, max_length=200_000)
    title: str = Field("", max_length=300)
    style: str = Field("structured", description="brief | structured | action-items")


class _BatchResults:
    """The job manager reads per-document rows from `to_dict()["results"]`."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def to_dict(self) -> dict:
        return {"results": self.rows}


@router.post("/summarize", summary="Summarize one document (brief | structured | action-items), synchronously")
def summarize_one(body: SummarizeRequest, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    c = get_container(request)
    note(request, question=body.title or None, model=c.model_name, outcome="answered")
    return {**c.summarize.summarize_text(body.text, body.title, body.style), "ai_generated": True}


@router.post("/summarize/batch", status_code=202, response_model=JobAccepted,
             summary="Summarize many uploaded files as a job (progress and results at /api/v1/jobs/{id})")
def summarize_batch(request: Request, files: list[UploadFile] = File(...), style: str = Form("structured"),
                    principal: Principal = Reader) -> dict:
    c = get_container(request)
    c.summarize.check_style(style)
    token = secrets.token_hex(8)
    upload_dir = Path(c.settings.data_dir) / "uploads" / token
    out_dir = Path(c.settings.data_dir) / "summaries" / token
    paths = save_uploads([(f.filename, f.file) for f in files], upload_dir, c.settings.api.max_upload_mb * 2**20,
                         c.settings.api.max_files_per_upload)
    note(request, question=f"summarize {len(paths)} file(s)")

    def work(progress):
        c.summarize.summarize_paths(paths, out_dir, style, progress=progress)
        rows = []
        for line in (out_dir / "summaries.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            rows.append({"source": Path(str(rec.get("source", ""))).name, "status": rec.get("status"),
                         "title": rec.get("title", ""), "message": rec.get("error") or "",
                         "summary": rec.get("summary")})
        return _BatchResults(rows)

    job = c.jobs.submit("summarize", "-", principal, work, files=[p.name for p in paths],
                        cleanup=lambda: shutil.rmtree(upload_dir, ignore_errors=True))
    return {"job_id": job.id, "status_url": f"/api/v1/jobs/{job.id}", "kb": "-", "files": job.files}
