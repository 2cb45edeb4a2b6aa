"""One-stop service (一网通办) and collaborative office (一网协同): the structured 办事指南 answer, 公文 drafting,
polishing and action-item extraction. The routers check read access to the named knowledge bases before the
services run (the services check again)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from assistant.api.deps import Reader, get_container, note
from assistant.api.schemas import DraftRequest, ExtractRequest, GuideRequest, PolishRequest
from assistant.services.access import Principal, readable_kbs

router = APIRouter(prefix="/api/v1", tags=["office"])


def _sources(out: dict) -> list[str]:
    return [c["chunk_id"] for c in out.get("citations") or [] if isinstance(c, dict) and c.get("chunk_id")]


def _generated(request: Request, out: dict) -> dict:
    model = get_container(request).model_name
    note(request, sources=_sources(out), model=model, outcome="answered")
    return {**out, "ai_generated": True}


@router.post("/service/guide", summary="办事指南: 办理条件, 申请材料, 办理流程, 办理时限, 收费标准, 办理地点, 依据 — "
                                     "each cited, 未找到 where the knowledge base is silent")
def service_guide(body: GuideRequest, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    kbs = readable_kbs(principal, body.selected_kbs())
    note(request, kb=kbs, question=body.request)
    return _generated(request, get_container(request).service_guide.guide(body.request, kbs, principal=principal))


@router.post("/draft", summary="Draft a 通知 / 请示 / 报告 / 函 / 会议纪要 in GB/T 9704 element order, with citations")
def draft(body: DraftRequest, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    kbs = readable_kbs(principal, body.selected_kbs())
    note(request, kb=kbs, question=f"{body.doc_type}：{body.topic}")
    out = get_container(request).drafting.draft(
        body.doc_type, body.topic, kbs, principal=principal, requirements=body.requirements, doc_ids=body.doc_ids,
        issuer=body.issuer, recipients=body.recipients, date=body.date)
    return _generated(request, out)


@router.post("/polish", summary="Polish a text into 公文 style (numbers and names kept)")
def polish(body: PolishRequest, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    note(request, question=body.instruction or None)
    return _generated(request, get_container(request).drafting.polish(body.text, body.instruction))


@router.post("/extract-actions", summary="事项 / 责任单位 / 完成时限 rows from a document")
def extract_actions(body: ExtractRequest, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    return _generated(request, get_container(request).drafting.extract_actions(body.text))
