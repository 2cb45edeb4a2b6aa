"""Liveness, readiness and Prometheus metrics: unauthenticated, for probes and scrapers (no data in them)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from assistant.api.deps import get_container
from assistant.services.health import readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="Store opened, embeddings and LLM loaded (503 with the failing check otherwise)")
def readyz(request: Request) -> JSONResponse:
    result = readiness(get_container(request))
    return JSONResponse(result, status_code=200 if result["ready"] else 503)


@router.get("/metrics", summary="Prometheus text format", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")
