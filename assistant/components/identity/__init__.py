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


def normalize_dn(value: str) -> str | None:
    """One spelling of an LDAP DN for comparing: attribute types and values case-folded, the spaces around
    `=`, `,` and `+` dropped, a multi-valued RDN's parts sorted; None for what is not a DN (an OIDC group,
    办公室). Servers compare DNs so (cn, ou, dc and uid match case-insensitively), and a DN typed into a rule
    need not be spelt as the server writes it."""
    if not isinstance(value, str) or "=" not in value:
        return None
    from ldap3.core.exceptions import LDAPInvalidDnError
    from ldap3.utils.dn import parse_dn
    try:
        parts = parse_dn(value.strip(), strip=True)
    except (LDAPInvalidDnError, ValueError, IndexError):
        return None
    rdns, rdn = [], []
    for attr, val, sep in parts:
        rdn.append(f"{attr.strip().casefold()}={val.strip().casefold()}")
        if sep != "+":
            rdns.append("+".join(sorted(rdn)))
            rdn = []
    return ",".join(rdns) if rdns and not rdn else None
