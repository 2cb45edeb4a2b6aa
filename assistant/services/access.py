"""Who may read which knowledge base. Enforced where retrieval starts (SearchService, QAService), so every
entry point (CLI, API, OpenAI route, UI, eval) gets the same rule."""
from __future__ import annotations

from dataclasses import dataclass, field


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

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", self.name)

    def can_read(self, kb: str) -> bool:
        return self.role == "admin" or "*" in self.kbs or kb in self.kbs

    def can_write(self, kb: str) -> bool:
        return self.role == "admin" or (self.role == "editor" and self.can_read(kb))


# The local operator (CLI on the machine that holds the data directory) is trusted like a database owner.
LOCAL_ADMIN = Principal("local-cli", "admin", ("*",), id="local-cli")


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
