"""Who a signed-in person is allowed to be: the mapping from directory facts (IdP subject, groups, department
claims, LDAP DN and groups) to a role, departments and a clearance, and the knowledge-base grants to departments,
groups, users and API keys. Stored in SQLite under data_dir (directory.sqlite3), managed with
`gov-assistant access ...`, `/api/v1/access/...` and the UI's 权限 page; every change is audited by the caller.

Rules add up: the highest role and clearance any matching rule gives wins, departments accumulate. Someone no rule
matches is a reader with the default clearance who reads only what is granted to them, their groups or departments.
A DN (a group rule's or grant's LDAP group, a user's DN or ldap:<DN>) matches however it is spelt: case and
the spaces around separators do not count (normalize_dn); grants to a DN are stored in that one spelling.
"""
from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from assistant.components.identity import ExternalIdentity  # noqa: F401 - re-exported: what the directory maps
from assistant.components.identity import normalize_dn
from assistant.components.store.catalog import now_iso
from assistant.services.access import ROLES, Principal
from assistant.services.classification import Classification
from assistant.db import Database

RULE_KINDS = ("user", "group", "department", "claim")
GRANT_KINDS = ("user", "group", "department", "key")
ACCESS = ("read", "write")


DN_KINDS = ("user", "group")     # rule and grant kinds whose subjects may be DNs


def subject_key(value: str) -> str:
    """How a user or group subject compares: a DN (or ldap:<DN>) in normalize_dn's spelling, anything else
    (an OIDC sub or group, a key id) exactly as written."""
    prefix, rest = ("ldap:", value[5:]) if value.startswith("ldap:") else ("", value)
    dn = normalize_dn(rest)
    return value if dn is None else prefix + dn


class DirectoryError(ValueError):
    """A mapping rule or grant that cannot be stored (the message names the field)."""


class Directory:
    def __init__(self, path: Path | str, classification: Classification):
        """path: the SQLite file, or the scale-out profile's postgresql:// URL."""
        self._lock = threading.Lock()
        self._db = Database(path, "directory")
        self.classification = classification

    # -- mapping rules ----------------------------------------------------------------------------------------
    def add_rule(self, kind: str, match: str, *, role: str | None = None, department: str | None = None,
                 clearance: str | None = None, by: str) -> dict:
        match = (match or "").strip()
        if kind not in RULE_KINDS:
            raise DirectoryError(f"rule kind must be one of {', '.join(RULE_KINDS)}; got {kind!r}")
        if not match or len(match) > 512:
            raise DirectoryError("rule match must be 1-512 characters")
        if kind == "claim" and "=" not in match:
            raise DirectoryError("a claim rule matches claim=value, e.g. dept=办公室")
        if role is not None and role not in ROLES:
            raise DirectoryError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
        if clearance is not None:
            self.classification.require(clearance, "clearance")
        department = (department or "").strip() or None
        if role is None and department is None and clearance is None:
            raise DirectoryError("a rule must give a role, a department or a clearance")
        with self._lock:
            # UNIQUE treats NULLs as distinct: the same rule is looked for with IS
            if self._db.execute("SELECT 1 FROM rules WHERE kind=? AND match=? AND role IS NOT DISTINCT FROM ? AND "
                                "department IS NOT DISTINCT FROM ? AND clearance IS NOT DISTINCT FROM ?", (kind, match, role, department, clearance)).fetchone():
                raise DirectoryError(f"this rule exists already: {kind} {match}")
            row = self._db.execute(
                "INSERT INTO rules(kind, match, role, department, clearance, created_at, created_by)"
                " VALUES (?,?,?,?,?,?,?) RETURNING *", (kind, match, role, department, clearance, now_iso(), by)
            ).fetchone()
        return dict(row)

    def rules(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._db.execute("SELECT * FROM rules ORDER BY id")]

    def remove_rule(self, rule_id: int) -> dict:
        with self._lock:
            row = self._db.execute("SELECT * FROM rules WHERE id=?", (rule_id,)).fetchone()
            if row is None:
                raise DirectoryError(f"no rule with id {rule_id}")
            self._db.execute("DELETE FROM rules WHERE id=?", (rule_id,))
        return dict(row)

    # -- knowledge-base grants --------------------------------------------------------------------------------
    def grant(self, kb: str, kind: str, subject: str, access: str = "read", *, by: str) -> dict:
        subject = (subject or "").strip()
        if kind not in GRANT_KINDS:
            raise DirectoryError(f"grant kind must be one of {', '.join(GRANT_KINDS)}; got {kind!r}")
        if access not in ACCESS:
            raise DirectoryError(f"access must be read or write; got {access!r}")
        if not subject or len(subject) > 512:
            raise DirectoryError("grant subject must be 1-512 characters")
        if kind in DN_KINDS:
            subject = subject_key(subject)   # one spelling per DN: the indexed lookup compares exactly
        with self._lock:
            self._db.execute("INSERT INTO grants(kb, kind, subject, access, created_at, created_by)"
                             " VALUES (?,?,?,?,?,?) ON CONFLICT (kb, kind, subject) DO UPDATE SET"
                             " access=excluded.access, created_at=excluded.created_at, created_by=excluded.created_by",
                             (kb, kind, subject, access, now_iso(), by))
        return {"kb": kb, "kind": kind, "subject": subject, "access": access, "created_by": by}

    def revoke_grant(self, kb: str, kind: str, subject: str) -> dict:
        # as typed, or in the one spelling grant() stores a DN in
        key = subject_key(subject) if kind in DN_KINDS else subject
        with self._lock:
            cur = self._db.execute("DELETE FROM grants WHERE kb=? AND kind=? AND subject IN (?, ?)",
                                   (kb, kind, subject, key))
        if cur.rowcount == 0:
            raise DirectoryError(f"no grant of {kb!r} to {kind} {subject!r}")
        return {"kb": kb, "kind": kind, "subject": subject}

    def grants(self, kb: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM grants", ()
        if kb is not None:
            sql, args = sql + " WHERE kb=?", (kb,)
        with self._lock:
            return [dict(r) for r in self._db.execute(sql + " ORDER BY kb, kind, subject", args)]

    def drop_kb(self, kb: str) -> None:
        """A deleted knowledge base's grants go with it: a new KB of that name starts with none."""
        with self._lock:
            self._db.execute("DELETE FROM grants WHERE kb=?", (kb,))

    # -- principals -------------------------------------------------------------------------------------------
    def principal_for(self, ident: ExternalIdentity) -> Principal:
        """The principal a signed-in identity is now (recomputed on every request and UI re-check, so a rule or
        grant change takes effect at once)."""
        if not ident.enabled:
            raise PermissionError(f"account {ident.subject!r} is disabled in the directory")
        if not ident.subject:
            raise PermissionError("the identity provider gave no subject")
        pid = ident.principal_id
        facts = {"user": {pid, ident.subject}, "group": set(ident.groups), "department": set(ident.departments)}
        keys = {kind: {subject_key(v) for v in facts[kind]} for kind in DN_KINDS}
        role_rank, departments, clearance = 0, list(ident.departments), None
        for rule in self.rules():
            if not self._matches(rule, facts, keys, ident.claims):
                continue
            if rule["role"]:
                role_rank = max(role_rank, ROLES.index(rule["role"]))
            if rule["department"] and rule["department"] not in departments:
                departments.append(rule["department"])
            if rule["clearance"]:
                clearance = self.classification.higher(clearance, rule["clearance"])
        role = ROLES[role_rank]
        facts["department"] = set(departments)
        read, write = self._granted(facts)
        return Principal(ident.name or ident.subject, role, tuple(sorted(read | write)), tuple(departments), id=pid,
                         groups=tuple(ident.groups), levels=self.classification.visible(role, clearance),
                         writable=tuple(sorted(write)), source=ident.source)

    def extend_key(self, key: Principal) -> Principal:
        """An API key's principal with what is granted to the key itself and to its departments."""
        read, write = self._granted({"key": {key.id}, "department": set(key.departments)})
        if not read and not write:
            return key
        writable = set(key.kbs) | write   # a key's own KBs stay writable for an editor key, as before grants
        return replace(key, kbs=tuple(sorted(set(key.kbs) | read | write)), writable=tuple(sorted(writable)))

    def _granted(self, facts: dict[str, set[str]]) -> tuple[set[str], set[str]]:
        """(read-only, writable) KBs granted to these subjects: one indexed query per request, not the whole table."""
        # a DN as the server wrote it (grants from before DNs were normalised) and in the stored spelling
        pairs = sorted({(kind, s) for kind, subjects in facts.items() for subject in subjects
                        for s in ((subject, subject_key(subject)) if kind in DN_KINDS else (subject,))})
        read, write = set(), set()
        if not pairs:
            return read, write
        where = " OR ".join(["(kind=? AND subject=?)"] * len(pairs))
        with self._lock:
            rows = self._db.execute(f"SELECT kb, access FROM grants WHERE {where}",
                                    [x for pair in pairs for x in pair]).fetchall()
        for r in rows:
            (write if r["access"] == "write" else read).add(r["kb"])
        return read - write, write

    @staticmethod
    def _matches(rule: dict, facts: dict[str, set[str]], keys: dict[str, set[str]], claims: dict) -> bool:
        if rule["kind"] in DN_KINDS:
            return subject_key(rule["match"]) in keys[rule["kind"]]
        if rule["kind"] != "claim":
            return rule["match"] in facts[rule["kind"]]
        name, _, value = rule["match"].partition("=")
        have = claims.get(name.strip())
        values = have if isinstance(have, (list, tuple)) else [have]
        return value.strip() in [str(v) for v in values if v is not None]


def describe(principal: Principal) -> dict:
    """What `GET /api/v1/access/me` / the 权限 page shows of a principal (never a secret)."""
    return {"id": principal.id, "name": principal.name, "source": principal.source, "role": principal.role,
            "departments": list(principal.departments), "groups": list(principal.groups),
            "kbs": list(principal.kbs), "writable": None if principal.writable is None else list(principal.writable),
            "levels": list(principal.levels)}
