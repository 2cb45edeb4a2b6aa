"""Who may see what (issue #17): the caller's own principal, the directory's mapping rules and knowledge-base
grants (admins), and a document's sensitivity level (admins). Each change is audited with the acting id and what
changed (assistant/services/access_admin.py)."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.deps import Admin, Reader, get_container, note
from assistant.services.access import Principal
from assistant.services.directory import describe

router = APIRouter(prefix="/api/v1", tags=["access"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleIn(_Body):
    kind: Literal["user", "group", "department", "claim"]
    match: str = Field(min_length=1, max_length=512, description="user id / group / department / claim=value")
    role: Literal["reader", "editor", "admin"] | None = None
    department: str | None = Field(None, max_length=128)
    clearance: str | None = Field(None, max_length=32, description="one of classification.levels")


class GrantIn(_Body):
    kb: str = Field(min_length=1, max_length=63)
    kind: Literal["user", "group", "department", "key"]
    subject: str = Field(min_length=1, max_length=512)
    access: Literal["read", "write"] = "read"


class SensitivityIn(_Body):
    level: str = Field(min_length=1, max_length=32, description="one of classification.levels, e.g. 敏感")


@router.get("/access/me", summary="Who the caller is: id, role, departments, groups, readable KBs, document levels")
def me(principal: Principal = Reader) -> dict[str, Any]:
    return describe(principal)


@router.get("/access/rules", summary="Mapping rules: directory facts → role, department, clearance")
def list_rules(request: Request, principal: Principal = Admin) -> list[dict[str, Any]]:
    return get_container(request).access_admin.rules(principal=principal)


@router.post("/access/rules", status_code=201, summary="Add a mapping rule (audited)")
def add_rule(body: RuleIn, request: Request, principal: Principal = Admin) -> dict[str, Any]:
    return get_container(request).access_admin.add_rule(body.kind, body.match, role=body.role,
                                                        department=body.department, clearance=body.clearance,
                                                        principal=principal, channel="API")


@router.delete("/access/rules/{rule_id}", summary="Remove a mapping rule (audited)")
def remove_rule(request: Request, rule_id: int = Path(ge=1), principal: Principal = Admin) -> dict[str, Any]:
    return get_container(request).access_admin.remove_rule(rule_id, principal=principal, channel="API")


@router.get("/access/grants", summary="Knowledge-base grants to departments, groups, users and keys")
def list_grants(request: Request, kb: str | None = Query(None, max_length=63),
                principal: Principal = Admin) -> list[dict[str, Any]]:
    return get_container(request).access_admin.grants(kb, principal=principal)


@router.post("/access/grants", status_code=201, summary="Grant read or write on a knowledge base (audited)")
def add_grant(body: GrantIn, request: Request, principal: Principal = Admin) -> dict[str, Any]:
    note(request, kb=body.kb)
    return get_container(request).access_admin.grant(body.kb, body.kind, body.subject, body.access,
                                                     principal=principal, channel="API")


@router.delete("/access/grants", summary="Revoke a grant (audited)")
def revoke_grant(request: Request, kb: str = Query(..., max_length=63),
                 kind: Literal["user", "group", "department", "key"] = Query(...),
                 subject: str = Query(..., max_length=512), principal: Principal = Admin) -> dict[str, Any]:
    note(request, kb=kb)
    return get_container(request).access_admin.revoke(kb, kind, subject, principal=principal, channel="API")


@router.put("/kbs/{kb}/documents/{doc_id}/sensitivity",
            summary="Set a document's sensitivity level (数据分类分级); in force for the next request (audited)")
def set_sensitivity(body: SensitivityIn, request: Request, kb: str = Path(min_length=1, max_length=63),
                    doc_id: str = Path(min_length=1, max_length=300), principal: Principal = Admin) -> dict[str, Any]:
    note(request, kb=kb, sources=[doc_id])
    return get_container(request).access_admin.set_sensitivity(kb, doc_id, body.level, principal=principal,
                                                               channel="API")
