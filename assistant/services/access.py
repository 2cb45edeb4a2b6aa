"""Who may read which knowledge base, and which document levels (数据分类分级). Enforced where retrieval starts
(SearchService, QAService, drafting, the service guide: `scope`) and where documents are shown, so every entry
point (CLI, API, OpenAI route, UI, eval) gets the same rule. A principal built without levels sees no document."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.filters import Filters


class AccessDenied(PermissionError):
    pass


ROLES = ("reader", "editor", "admin")     # each role can do what the ones before it can


@dataclass(frozen=True)
class Principal:
    name: str
    role: str = "reader"                      # admin | editor | reader
    kbs: tuple[str, ...] = ()                 # readable knowledge bases; "*" = all
    departments: tuple[str, ...] = field(default_factory=tuple)
    # stable identity (API key id, later the SSO subject): what jobs, rate limits, audit and feedback are keyed by;
    # names are labels and may be reused after a revoke
    id: str = ""
    groups: tuple[str, ...] = ()              # directory groups (LDAP DNs, OIDC group claims), for the mapping
    levels: tuple[str, ...] = ()              # document levels it may see; "*" = all; () = none (fail closed)
    writable: tuple[str, ...] | None = None   # knowledge bases an editor may change; None = the readable ones
    source: str = "key"                       # key | oidc | ldap | local: how it signed in

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", self.name)

    def can_read(self, kb: str) -> bool:
        return self.role == "admin" or "*" in self.kbs or kb in self.kbs

    def can_write(self, kb: str) -> bool:
        if self.role == "admin":
            return True
        if self.role != "editor":
            return False
        return self.can_read(kb) if self.writable is None else ("*" in self.writable or kb in self.writable)

    def can_see(self, level: str | None) -> bool:
        """A document of this level (documents always carry one; a missing one is treated as unseeable)."""
        return "*" in self.levels or (level is not None and level in self.levels)

    def sees(self, doc: dict) -> bool:
        """A stored document (a catalog record): its level is one this principal may see."""
        return self.can_see((doc.get("metadata") or {}).get("sensitivity"))

    def covers(self, other: "Principal") -> bool:
        """Whether this principal may do all that `other` may: role, readable and writable knowledge bases,
        document levels, departments (an open session whose account now gives less is ended; one that gives
        as much or more goes on with what it had)."""
        if ROLES.index(self.role) < ROLES.index(other.role):
            return False
        if self.role == "admin":
            return set(other.departments) <= set(self.departments)

        def within(have: tuple[str, ...], need: tuple[str, ...]) -> bool:
            return "*" in have or set(need) <= set(have)

        writable = self.kbs if self.writable is None else self.writable
        other_writable = other.kbs if other.writable is None else other.writable
        return (within(self.kbs, other.kbs) and within(writable, other_writable)
                and within(self.levels, other.levels) and set(other.departments) <= set(self.departments))


# The local operator (CLI on the machine that holds the data directory) is trusted like a database owner.
LOCAL_ADMIN = Principal("local-cli", "admin", ("*",), id="local-cli", levels=("*",), source="local")


def readable_kbs(principal: Principal, requested: list[str]) -> list[str]:
    """The requested knowledge bases, all of which the principal must be allowed to read."""
    denied = [kb for kb in requested if not principal.can_read(kb)]
    if denied:
        raise AccessDenied(f"{principal.name} may not read knowledge base(s): {', '.join(denied)}")
    return list(requested)


def require_write(principal: Principal, kb: str) -> None:
    if not principal.can_write(kb):
        raise AccessDenied(f"{principal.name} ({principal.role}) may not change knowledge base {kb!r}")


def require_role(principal: Principal, role: str) -> None:
    """At least `role` (reader < editor < admin)."""
    have = ROLES.index(principal.role) if principal.role in ROLES else -1
    if have < ROLES.index(role):
        raise AccessDenied(f"{principal.name} ({principal.role}) may not do this: needs role {role}")


def scope(principal: Principal, requested: list[str], filters: "Filters | None" = None) -> tuple[list[str], "Filters"]:
    """What a retrieval on the principal's behalf may touch: the requested knowledge bases (all readable, else
    AccessDenied) and the filters narrowed to the document levels it may see. Every retrieval path goes through
    here; the searcher refuses filters that name no levels."""
    from assistant.filters import Filters
    kbs = readable_kbs(principal, requested)
    flt = filters or Filters()
    return kbs, flt.visible_to(principal.levels)

