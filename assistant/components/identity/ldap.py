"""LDAP / Active Directory bind login (issue #17): a username and password become the directory's account — its DN,
name, departments and groups (nested ones resolved) — or nothing.

One login is: refuse an empty password before any traffic (an empty password is an unauthenticated bind that
"succeeds", RFC 4513 5.1.2); find the user with the service account (or anonymously) by `user_filter` with the
username escaped (RFC 4515: no filter injection), exactly one entry or nothing; bind as that DN with the password on a
fresh connection; then, as the service account (or as the user where there is none), read whether the entry matches
`disabled_filter` and which groups it is in. Nested groups: Active Directory resolves them in one search with the
LDAP_MATCHING_RULE_IN_CHAIN rule (1.2.840.113556.1.4.1941); OpenLDAP has no such rule, so the groups whose member
is the user are read, then the groups whose member is one of those, until none are new (at most MAX_DEPTH levels
and MAX_GROUPS groups). A directory that cannot be reached, times out or refuses the service account raises
LdapUnavailable (a ConnectionError): that is not a wrong password. Passwords are never logged.

A login gives an ExternalIdentity (components/identity/__init__.py) that the directory maps to a Principal.
`lookup(dn)` reads the same facts again with the search account alone, for an open UI session's re-check.
"""
from __future__ import annotations

import logging
import math
import ssl
from typing import Any, Iterable
from urllib.parse import urlsplit

from ldap3 import (ANONYMOUS, AUTO_BIND_NO_TLS, AUTO_BIND_TLS_BEFORE_BIND, BASE, NO_ATTRIBUTES, NONE, SIMPLE,
                   SUBTREE, Connection, Server, Tls)
from ldap3.core.exceptions import LDAPBindError, LDAPException
from ldap3.utils.conv import escape_filter_chars

from assistant.components.identity import ExternalIdentity, normalize_dn
from assistant.settings import LdapSettings

log = logging.getLogger(__name__)

AD_CAPABILITY = "1.2.840.113556.1.4.800"     # LDAP_CAP_ACTIVE_DIRECTORY_OID in the rootDSE's supportedCapabilities
IN_CHAIN = "1.2.840.113556.1.4.1941"         # LDAP_MATCHING_RULE_IN_CHAIN: transitive membership (AD only)
AD_DISABLED = "(userAccountControl:1.2.840.113556.1.4.803:=2)"   # ACCOUNTDISABLE bit set
MAX_DEPTH = 10            # nesting levels followed on servers without IN_CHAIN
MAX_GROUPS = 1000         # groups one account may bring
MAX_USERNAME = 256
BATCH = 50                # group DNs per OR filter when following nesting
OK_RESULTS = (0, 4)       # success, sizeLimitExceeded (more than one user: refused below)


class LdapUnavailable(ConnectionError):
    """The directory could not be asked (unreachable, timed out, the service account refused, a configuration the
    server rejects). Not a wrong password: the UI says the directory service is unavailable."""


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in items:
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        v = str(v).strip()
        if v:
            out.append(v)
    return out


class LdapAuthenticator:
    def __init__(self, settings: LdapSettings):
        if not settings.url or not settings.user_base:
            raise ValueError("identity.ldap needs url and user_base")
        self.settings = settings
        self._timeout = max(1, math.ceil(settings.timeout_s))
        self._ad: bool | None = {"ad": True, "openldap": False}.get(settings.server_type)
        if settings.url.lower().startswith("ldap://") and not settings.start_tls and not _loopback(settings.url):
            log.warning("identity.ldap: passwords go to %s unencrypted (use ldaps:// or start_tls)", settings.url)

    # -- the login ---------------------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> Any | None:
        """The account for these credentials, or None (unknown user, wrong or empty password, ambiguous match).
        A disabled account comes back with enabled=False after a correct password (the directory refuses it).
        Raises LdapUnavailable when the directory cannot be asked."""
        username = (username or "").strip()
        if not username or not password or len(username) > MAX_USERNAME or "\x00" in username + password:
            return None                      # before any traffic: an empty password is an anonymous bind
        s = self.settings
        server = self._server()
        search = self._bind(server, s.bind_dn, s.bind_password, service=True)
        user_conn = None
        try:
            found = self._find_user(search, username)
            if found is None:
                return None
            dn, attrs = found
            user_conn = self._bind(server, dn, password, service=False)
            if user_conn is None:
                return None
            reader = search if s.bind_dn else user_conn   # anonymous search: the bound user reads its groups
            disabled = self._disabled(reader, dn)
            groups = self._groups(reader, dn)
        except LDAPException as exc:
            raise self._unavailable(exc) from None
        finally:
            _unbind(user_conn, search)
        log.info("identity.ldap: %s signed in%s (%d groups)", dn, " but is disabled" if disabled else "",
                 len(groups))
        return self._identity(dn, attrs, username, groups, disabled)

    def lookup(self, dn: str, username: str = "") -> ExternalIdentity | None:
        """The account at `dn` as the directory has it now — name, departments, `disabled_filter`, groups —
        read with the search account (no password of the user's: an open UI session's re-check). None when the
        entry is gone (or the search account may not see it). Raises LdapUnavailable when the directory cannot
        be asked."""
        s = self.settings
        if not dn:
            return None
        search = self._bind(self._server(), s.bind_dn, s.bind_password, service=True)
        try:
            entries = self._search(search, dn, "(objectClass=*)", BASE, [s.name_attr, s.department_attr], 1)
            if not entries:
                return None
            attrs = dict(entries[0].get("attributes") or {})
            disabled = self._disabled(search, dn)
            groups = self._groups(search, dn)
        except LDAPException as exc:
            raise self._unavailable(exc) from None
        finally:
            _unbind(search)
        return self._identity(dn, attrs, username, groups, disabled)

    def _unavailable(self, exc: LDAPException) -> LdapUnavailable:
        url = self.settings.url
        log.warning("identity.ldap: %s failed: %s: %s", url, type(exc).__name__, str(exc)[:300])
        return LdapUnavailable(f"directory {url} failed: {type(exc).__name__}")

    def _identity(self, dn: str, attrs: dict, username: str, groups: tuple[str, ...],
                  disabled: bool) -> ExternalIdentity:
        s = self.settings
        names = _values(attrs.get(s.name_attr))
        departments = tuple(dict.fromkeys(_values(attrs.get(s.department_attr))))
        claims = {"username": username, "dn": dn, s.name_attr: names, s.department_attr: list(departments)}
        return ExternalIdentity(source="ldap", subject=dn, name=names[0] if names else username, groups=groups,
                                departments=departments, claims=claims, enabled=not disabled)

    # -- connections -------------------------------------------------------------------------------------------
    def _server(self) -> Server:
        s = self.settings
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=s.tls_ca_file)
        # get_info NONE: no schema read per login (the rootDSE is read once, by _is_ad, where it matters)
        return Server(s.url, connect_timeout=self._timeout, tls=tls, get_info=NONE)

    def _bind(self, server: Server, user: str | None, password: str | None, *, service: bool) -> Connection | None:
        """A bound connection; for the user, None on refused credentials; for the service account (or the anonymous
        search) a refusal means the directory cannot be used: LdapUnavailable."""
        s = self.settings
        try:
            # auto_referrals off: a referral must not carry the credentials to another server
            return Connection(server, user=user or None, password=password if user else None,
                              authentication=SIMPLE if user else ANONYMOUS, read_only=True, raise_exceptions=False,
                              auto_referrals=False,
                              receive_timeout=self._timeout,   # whole seconds: ldap3 packs it as SO_RCVTIMEO
                              auto_bind=AUTO_BIND_TLS_BEFORE_BIND if s.start_tls else AUTO_BIND_NO_TLS)
        except LDAPBindError:
            if not service:
                return None
            log.error("identity.ldap: %s refused the search account %s", s.url, user or "(anonymous)")
            raise LdapUnavailable(f"directory {s.url} refused the search account") from None
        except LDAPException as exc:
            log.warning("identity.ldap: %s unreachable: %s: %s", s.url, type(exc).__name__, str(exc)[:300])
            raise LdapUnavailable(f"directory {s.url} unreachable: {type(exc).__name__}") from None

    def _search(self, conn: Connection, base: str, flt: str, scope: str, attributes: Any,
                size_limit: int) -> list[dict]:
        conn.search(base, flt, scope, attributes=attributes, size_limit=size_limit,
                    time_limit=self._timeout)
        code = (conn.result or {}).get("result", 0)
        if code not in OK_RESULTS and not (code == 32 and scope == BASE):   # noSuchObject on a base read: none
            log.warning("identity.ldap: search under %s answered %s", base, (conn.result or {}).get("description"))
            raise LdapUnavailable(f"directory search failed: {(conn.result or {}).get('description')}")
        return [r for r in conn.response or () if r.get("type") == "searchResEntry"]

    # -- steps -------------------------------------------------------------------------------------------------
    def _find_user(self, conn: Connection, username: str) -> tuple[str, dict] | None:
        s = self.settings
        flt = s.user_filter.replace("{username}", escape_filter_chars(username))
        entries = self._search(conn, s.user_base, flt, SUBTREE, [s.name_attr, s.department_attr], 2)
        if len(entries) != 1 or not entries[0].get("dn"):
            return None                       # unknown, or ambiguous: never guess which one
        return entries[0]["dn"], dict(entries[0].get("attributes") or {})

    def _is_ad(self, conn: Connection) -> bool:
        if self._ad is None:
            root = self._search(conn, "", "(objectClass=*)", BASE, ["supportedCapabilities"], 1)
            caps = _values((root[0].get("attributes") or {}).get("supportedCapabilities")) if root else []
            self._ad = AD_CAPABILITY in caps
        return self._ad

    def _disabled(self, conn: Connection, dn: str) -> bool:
        flt = self.settings.disabled_filter or (AD_DISABLED if self._is_ad(conn) else None)
        if not flt:
            return False
        return bool(self._search(conn, dn, flt, BASE, NO_ATTRIBUTES, 1))

    def _groups(self, conn: Connection, dn: str) -> tuple[str, ...]:
        s = self.settings
        if not s.group_base:
            return ()
        if s.nested_groups and "(member={dn})" in s.group_filter and self._is_ad(conn):
            flt = s.group_filter.replace("(member={dn})", f"(member:{IN_CHAIN}:={escape_filter_chars(dn)})")
            return tuple(dict.fromkeys(e["dn"] for e in self._search(conn, s.group_base, flt, SUBTREE,
                                                                      NO_ATTRIBUTES, MAX_GROUPS)))
        found: dict[str, str] = {}            # normalised DN → DN as the server wrote it
        seen, frontier = {_dn_key(dn)}, [dn]
        for _ in range(MAX_DEPTH if s.nested_groups else 1):
            fresh = []
            for batch in _batches(frontier, BATCH):
                clauses = "".join(s.group_filter.replace("{dn}", escape_filter_chars(d)) for d in batch)
                flt = clauses if len(batch) == 1 else f"(|{clauses})"
                for e in self._search(conn, s.group_base, flt, SUBTREE, NO_ATTRIBUTES, MAX_GROUPS):
                    key = _dn_key(e["dn"])
                    if key not in seen:
                        seen.add(key)
                        found[key] = e["dn"]
                        fresh.append(e["dn"])
            if len(found) >= MAX_GROUPS:
                log.warning("identity.ldap: %s is in more than %d groups; the rest are ignored", dn, MAX_GROUPS)
                break
            if not fresh:
                break
            frontier = fresh
        return tuple(list(found.values())[:MAX_GROUPS])


def _dn_key(dn: str) -> str:
    return normalize_dn(dn) or dn.lower()


def _batches(items: list[str], n: int) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _loopback(url: str) -> bool:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host in ("127.0.0.1", "localhost", "::1")


def _unbind(*conns) -> None:
    for conn in conns:
        if conn is not None:
            try:
                conn.unbind()
            except Exception:  # noqa: BLE001 - a connection that is gone already
                pass
