"""Background jobs (uploads, re-indexing): progress from the pipeline's callback, per-file results when done.
A key sees the jobs its id submitted (not those of an earlier key with the same name); an admin sees all. Someone
else's job answers 404, as a missing one does, so job ids do not leak."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from assistant.api.deps import Reader, get_container
from assistant.services.access import Principal

router = APIRouter(prefix="/api/v1", tags=["jobs"])


def _visible(job, principal: Principal) -> bool:
    return job is not None and (principal.role == "admin" or job.owner == principal.id)


@router.get("/jobs", summary="Recent jobs of this key (all jobs for an admin)")
def list_jobs(request: Request, principal: Principal = Reader) -> list[dict[str, Any]]:
    jobs = get_container(request).jobs.list(None if principal.role == "admin" else principal.id)
    return [j.to_dict() for j in reversed(jobs)]


@router.get("/jobs/{job_id}", summary="State, progress and per-file results of a job")
def get_job(job_id: str, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    job = get_container(request).jobs.get(job_id)
    if not _visible(job, principal):
        raise HTTPException(404, f"job {job_id!r} not found")
    return job.to_dict()
