"""👍/👎 on an answer id — by whoever asked it (or an admin), once per rater (a new rating replaces the last);
the admin exports everything as JSONL (one labelled example per line) for evaluation."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from assistant.api.deps import Admin, Reader, get_container, note
from assistant.api.schemas import FeedbackRequest
from assistant.services.access import Principal
from assistant.services.feedback import AnswerNotFound

router = APIRouter(prefix="/api/v1", tags=["feedback"])


@router.post("/feedback", status_code=201, summary="Rate an answer you asked (answer_id from /ask or "
                                                    "/v1/chat/completions); 404 for any other id")
def add_feedback(body: FeedbackRequest, request: Request, principal: Principal = Reader) -> dict:
    note(request, answer_id=body.answer_id, outcome=body.rating)
    try:
        return get_container(request).feedback.add(body.answer_id, body.rating, body.comment, principal=principal)
    except AnswerNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/feedback/export", summary="All feedback as JSONL, joined with the audited question and sources (admin)",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}}}})
def export_feedback(request: Request, principal: Principal = Admin) -> StreamingResponse:
    return StreamingResponse(get_container(request).feedback.export_jsonl(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="feedback.jsonl"'})
