"""Grounded answers and retrieval over the knowledge bases the key may read (the services enforce the ACL)."""
from __future__ import annotations

from fastapi import APIRouter, Request

from assistant.api.deps import Reader, get_container, note
from assistant.api.schemas import AskRequest, AskResponse, SearchRequest, SearchResponse, answer_payload
from assistant.filters import Filters
from assistant.services.access import Principal

router = APIRouter(prefix="/api/v1", tags=["qa"])


@router.post("/ask", response_model=AskResponse, summary="A cited, verified answer, or a refusal without evidence",
             description="Each sentence of the answer is checked against the passages it cites (`verification`); "
                         "an unsupported sentence is removed. A refusal has no `citations` and lists the closest "
                         "passages in `related` (相关但未直接回答).")
def ask(body: AskRequest, request: Request, principal: Principal = Reader) -> dict:
    kbs = body.selected_kbs()
    note(request, kb=kbs, question=body.question)
    history = [t.model_dump() for t in body.history or []]
    answer = get_container(request).qa.ask(body.question, kbs, Filters.from_dict(body.filters), history,
                                           principal=principal)
    note(request, sources=[c.chunk_id for c in answer.citations], model=answer.model, answer_id=answer.answer_id,
         outcome="refused" if answer.refused else "answered")
    request.app.state.metrics.add_usage(answer.usage)
    request.app.state.metrics.count_answer("refused" if answer.refused else "answered")
    return answer_payload(answer)


@router.post("/search", response_model=SearchResponse, summary="Retrieval only: the passages an answer would use")
def search(body: SearchRequest, request: Request, principal: Principal = Reader) -> dict:
    kbs = body.selected_kbs()
    note(request, kb=kbs, question=body.query)
    result = get_container(request).search.search(body.query, kbs, Filters.from_dict(body.filters), body.top_k,
                                                  principal=principal, mode=body.mode)
    note(request, sources=[h.chunk_id for h in result.hits])
    return {"hits": [h.to_dict() for h in result.hits], "timings": {k: round(v, 1) for k, v in result.timings.items()}}
