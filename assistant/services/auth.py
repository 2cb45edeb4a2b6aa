"""API keys: random secrets shown once, stored only as sha256 hashes (SQLite under data_dir), each mapped to a
Principal (role, readable knowledge bases, departments). Managed with `gov-assistant keys create|list|revoke`."""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from pathlib import Path

from assistant.components.identity import AuthError  # noqa: F401 - re-exported: a refused key is a 401
from assistant.components.store.catalog import now_iso
from assistant.services.access import ROLES, Principal
from assistant.services.classification import Classification
from assistant.settings import ClassificationSettings
from assistant.db import Database

KEY_PREFIX = "gak_"
ENV_ADMIN_KEY = "GOV_ASSISTANT_ADMIN_KEY"
ENV_ADMIN_NAME = "env-admin"
KEY_ID = re.compile(r"^k_[0-9a-f]{8}$")
_TOUCH_EVERY_S = 60   # last_used_at is a write: at most once a minute per key, not once per request


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class ApiKeyStore:
    def __init__(self, path: Path | str, classification: Classification | None = None):
        """path: the SQLite file, or the scale-out profile's postgresql:// URL (schema by Alembic)."""
        self._lock = threading.Lock()
        self._db = Database(path, "api_keys")
        self.classification = classification or Classification(ClassificationSettings())
        self._touched: dict[str, float] = {}

    def create(self, name: str, role: str, kbs: list[str] | None = None,
               departments: list[str] | None = None, secret: str | None = None,
               clearance: str | None = None) -> tuple[str, dict]:
        """Returns (secret, record). The secret is not stored and cannot be shown again."""
        name = (name or "").strip()
        if not name or len(name) > 64:
            raise ValueError("key name must be 1-64 characters")
        if KEY_ID.match(name):   # `keys revoke NAME_OR_ID` would also hit the key whose id this is
            raise ValueError("a key name must not look like a key id (k_ and 8 hex digits)")
        if role not in ROLES:
            raise ValueError(f"invalid role {role!r}: use {', '.join(ROLES)}")
        if clearance is not None:
            self.classification.require(clearance, "clearance")
        if any(k["name"] == name for k in self.list()):
            raise ValueError(f"an active key named {name!r} exists: revoke it first or pick another name")
        secret = secret or KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "k_" + secrets.token_hex(4)   # the principal's id: what owns jobs, feedback and audit rows
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys(id, name, key_hash, prefix, role, kbs, departments, created_at, clearance)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (key_id, name, hash_key(secret), secret[:8], role, json.dumps(sorted(set(kbs or []))),
                 json.dumps(list(departments or []), ensure_ascii=False), now_iso(), clearance))
        return secret, self.get(key_id)

    def get(self, key_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM api_keys WHERE id=?", (key_id,)).fetchone()
        return _record(row) if row else None

    def list(self, include_revoked: bool = False) -> list[dict]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        sql = f"SELECT * FROM api_keys{where} ORDER BY created_at"
        with self._lock:
            return [_record(r) for r in self._db.execute(sql).fetchall()]

    def revoke(self, id_or_name: str) -> int:
        with self._lock:
            cur = self._db.execute("UPDATE api_keys SET revoked_at=? WHERE (id=? OR name=?) AND revoked_at IS NULL",
                                   (now_iso(), id_or_name, id_or_name))
        return cur.rowcount

    def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        with self._lock:
            row = self._db.execute("SELECT * FROM api_keys WHERE key_hash=? AND revoked_at IS NULL",
                                   (hash_key(secret),)).fetchone()
            if row is None:
                raise AuthError("invalid or revoked API key")
            now = time.monotonic()
            if now - self._touched.get(row["id"], 0.0) > _TOUCH_EVERY_S:
                self._touched[row["id"]] = now
                self._db.execute("UPDATE api_keys SET last_used_at=? WHERE id=?", (now_iso(), row["id"]))
        return self.principal(_record(row))

    def principal(self, rec: dict) -> Principal:
        """The principal of an active key record (its clearance, or the configured default, gives its levels)."""
        return Principal(rec["name"], rec["role"], tuple(rec["kbs"]), tuple(rec["departments"]), id=rec["id"],
                         levels=self.classification.visible(rec["role"], rec.get("clearance")), source="key")

    def seed_admin(self, secret: str | None) -> dict | None:
        """GOV_ASSISTANT_ADMIN_KEY (demo bootstrap): make that secret an admin key, replacing an older seeded one."""
        if not secret:
            return None
        if len(secret) < 16:
            raise ValueError(f"{ENV_ADMIN_KEY} must be at least 16 characters")
        with self._lock:
            row = self._db.execute("SELECT * FROM api_keys WHERE key_hash=?", (hash_key(secret),)).fetchone()
        if row is not None:
            if row["revoked_at"]:   # a revocation wins over the environment: never resurrect a key
                raise ValueError(f"the {ENV_ADMIN_KEY} secret was revoked; set a new one")
            return _record(row)
        self.revoke(ENV_ADMIN_NAME)  # the previous seeded key, if the variable changed
        return self.create(ENV_ADMIN_NAME, "admin", ["*"], secret=secret)[1]


def _record(row) -> dict:
    rec = dict(row)
    rec["kbs"] = json.loads(rec["kbs"])
    rec["departments"] = json.loads(rec["departments"])
    return rec


def public_record(rec: dict) -> dict:
    """What `keys list` shows: never the hash."""
    return {k: v for k, v in rec.items() if k != "key_hash"}
