"""Identity providers for sign-in (issue #17): OpenID Connect and LDAP / Active Directory. What a provider vouched
for (ExternalIdentity) and the refusal of a credential (AuthError, HTTP 401) are defined here, below the services,
so adapters and services share them; the directory (services/directory.py) maps an identity to a Principal."""
from __future__ import annotations

from dataclasses import dataclass, field


class AuthError(PermissionError):
    """No credential, or one that is unknown, revoked, expired or not accepted (HTTP 401)."""


@dataclass(frozen=True)
class ExternalIdentity:
    """What an identity provider vouched for. `subject` is its stable id (the OIDC `sub`, the LDAP DN): the
    principal's id is `<source>:<subject>`, never the display name."""
    source: str                                   # oidc | ldap
    subject: str
    name: str = ""
    groups: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    claims: dict = field(default_factory=dict, compare=False, hash=False)
    enabled: bool = True                          # a disabled directory account never becomes a principal

    @property
    def principal_id(self) -> str:
        return f"{self.source}:{self.subject}"
