"""Knowledge bases: list (only those the key may read), create (editor with access, or admin), info, delete (admin)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from assistant.api.deps import Admin, Editor, Reader, get_container, note
from assistant.api.schemas import KbCreate
from assistant.services.access import Principal

router = APIRouter(prefix="/api/v1", tags=["knowledge bases"])
KbPath = Annotated[str, Path(min_length=1, max_length=63, description="Knowledge base name")]


@router.get("/kbs", summary="Knowledge bases this key may read")
def list_kbs(request: Request, principal: Principal = Reader) -> list[dict[str, Any]]:
    return get_container(request).knowledge_bases.list(principal=principal)


@router.post("/kbs", status_code=201, summary="Create a knowledge base")
def create_kb(body: KbCreate, request: Request, principal: Principal = Editor) -> dict[str, Any]:
    note(request, kb=body.name)
    return get_container(request).knowledge_bases.create(body.name, body.description, principal=principal)


@router.get("/kbs/{kb}", summary="Counts, validity breakdown and embedding model of a knowledge base")
def kb_info(kb: KbPath, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    note(request, kb=kb)
    return get_container(request).knowledge_bases.info(kb, principal=principal)


@router.delete("/kbs/{kb}", summary="Delete a knowledge base and all its documents (admin)")
def delete_kb(kb: KbPath, request: Request, principal: Principal = Admin) -> dict[str, str]:
    note(request, kb=kb)
    get_container(request).knowledge_bases.delete(kb, principal=principal)
    return {"deleted": kb}


@router.get("/kbs/{kb}/check", summary="Catalog against the vector store: orphan and missing vectors")
def check_kb(kb: KbPath, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    note(request, kb=kb)
    return get_container(request).knowledge_bases.check(kb, repair=False, principal=principal)


@router.post("/kbs/{kb}/repair", summary="Delete orphan vectors and re-embed documents missing theirs (admin; runs in the request)")
def repair_kb(kb: KbPath, request: Request, principal: Principal = Admin) -> dict[str, Any]:
    note(request, kb=kb)
    return get_container(request).knowledge_bases.check(kb, repair=True, principal=principal)
