"""👍/👎 on an answer id; the admin exports everything as JSONL (one labelled example per line) for evaluation."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from assistant.api.deps import Admin, Reader, get_container, note
from assistant.api.schemas import FeedbackRequest
from assistant.services.access import Principal

router = APIRouter(prefix="/api/v1", tags=["feedback"])


@router.post("/feedback", status_code=201, summary="Rate an answer (answer_id from /ask or /v1/chat/completions)")
def add_feedback(body: FeedbackRequest, request: Request, principal: Principal = Reader) -> dict:
    note(request, answer_id=body.answer_id, outcome=body.rating)
    return get_container(request).feedback.add(body.answer_id, body.rating, body.comment, principal)


@router.get("/feedback/export", summary="All feedback as JSONL, joined with the audited question and sources (admin)",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}}}})
def export_feedback(request: Request, principal: Principal = Admin) -> StreamingResponse:
    return StreamingResponse(get_container(request).feedback.export_jsonl(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="feedback.jsonl"'})
