"""Managing who may see what (issue #17): the directory's mapping rules and knowledge-base grants, and a document's
sensitivity level. Admins only; every change is written to the audit log with the acting principal's id and what
changed (`detail`), whichever door it came through (CLI, API, UI). The checks themselves live in access.py and
the directory; this is the one place that changes them."""
from __future__ import annotations

from assistant.services.access import Principal, require_role
from assistant.services.audit import AuditLog
from assistant.services.classification import Classification
from assistant.services.directory import Directory
from assistant.services.knowledge_bases import KnowledgeBaseService


class AccessAdminService:
    def __init__(self, directory: Directory, knowledge_bases: KnowledgeBaseService, classification: Classification,
                 audit: AuditLog):
        self.directory, self.kbs, self.classification, self.audit = directory, knowledge_bases, classification, audit

    def _record(self, principal: Principal, operation: str, detail: dict, kb: str | None = None,
                channel: str | None = None) -> None:
        self.audit.record(principal=principal.id, operation=operation, outcome="ok", kb=kb, detail=detail,
                          method=channel)

    # -- reading ----------------------------------------------------------------------------------------------
    def rules(self, *, principal: Principal) -> list[dict]:
        require_role(principal, "admin")
        return self.directory.rules()

    def grants(self, kb: str | None = None, *, principal: Principal) -> list[dict]:
        require_role(principal, "admin")
        return self.directory.grants(kb)

    # -- changing ---------------------------------------------------------------------------------------------
    def add_rule(self, kind: str, match: str, *, principal: Principal, role: str | None = None,
                 department: str | None = None, clearance: str | None = None, channel: str | None = None) -> dict:
        require_role(principal, "admin")
        rule = self.directory.add_rule(kind, match, role=role, department=department, clearance=clearance,
                                       by=principal.id)
        self._record(principal, "access.rule.add", _public(rule), channel=channel)
        return rule

    def remove_rule(self, rule_id: int, *, principal: Principal, channel: str | None = None) -> dict:
        require_role(principal, "admin")
        rule = self.directory.remove_rule(rule_id)
        self._record(principal, "access.rule.remove", _public(rule), channel=channel)
        return rule

    def grant(self, kb: str, kind: str, subject: str, access: str = "read", *, principal: Principal,
              channel: str | None = None) -> dict:
        require_role(principal, "admin")
        self.kbs.catalog.require_kb(kb)
        grant = self.directory.grant(kb, kind, subject, access, by=principal.id)
        self._record(principal, "access.grant", grant, kb=kb, channel=channel)
        return grant

    def revoke(self, kb: str, kind: str, subject: str, *, principal: Principal, channel: str | None = None) -> dict:
        require_role(principal, "admin")
        grant = self.directory.revoke_grant(kb, kind, subject)
        self._record(principal, "access.revoke", grant, kb=kb, channel=channel)
        return grant

    def set_sensitivity(self, kb: str, doc_id: str, level: str, *, principal: Principal,
                        channel: str | None = None) -> dict:
        require_role(principal, "admin")
        before = self.kbs.document(kb, doc_id, principal=principal)["metadata"].get("sensitivity")
        doc = self.kbs.set_sensitivity(kb, doc_id, level, self.classification, principal=principal)
        self._record(principal, "access.sensitivity", {"doc_id": doc_id, "from": before, "to": level}, kb=kb,
                     channel=channel)
        return doc


def _public(rule: dict) -> dict:
    return {k: v for k, v in rule.items() if v is not None and k not in ("created_at",)}
