"""Single-use values of the OIDC sign-in shared by every replica: a login's `state` (issued at
/auth/oidc/login, spent at the callback) and the callback's handover ticket to the UI (spent by the page
load).

They live in the database the deployment already shares: a SQLite file under data_dir (the embedded
default), the scale-out profile's PostgreSQL (table `sso_once`, Alembic 0004). So a callback that lands on
another replica than the login, or a page load on another one than the callback, still finds them. Taking a
value is one `DELETE … RETURNING`: of two replicas racing for the same ticket, one gets the row and the other
nothing. Only the sha256 of a value is stored (someone reading the table cannot replay a live ticket);
expired rows are purged whenever a value is put. Expiry uses the wall clock, which replica hosts must keep in
sync already (ID token `exp`).
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Callable

from assistant.db import Database


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class OneTimeStore:
    def __init__(self, target: Path | str, clock: Callable[[], float] = time.time):
        """target: the SQLite file, or the scale-out profile's postgresql:// URL (schema by Alembic)."""
        self._db = Database(target, "sso")
        self._clock = clock
        self._lock = threading.Lock()

    def put(self, kind: str, value: str, data: dict, ttl_s: float) -> None:
        """Keep `data` under `value` for `ttl_s` seconds (taken at most once)."""
        now = self._clock()
        with self._lock:
            self._db.execute("DELETE FROM sso_once WHERE expires_at <= ?", (now,))
            self._db.execute("INSERT INTO sso_once(kind, key_hash, data, expires_at) VALUES (?,?,?,?)",
                             (kind, _hash(value), json.dumps(data, ensure_ascii=False), now + ttl_s))

    def take(self, kind: str, value: str | None) -> dict | None:
        """The data put under `value`, once; None for an unknown, spent or expired value."""
        if not value:
            return None
        with self._lock:
            # fetchall: an unfinished RETURNING statement would keep SQLite's write transaction open
            rows = self._db.execute("DELETE FROM sso_once WHERE kind=? AND key_hash=?"
                                    " RETURNING data, expires_at", (kind, _hash(value))).fetchall()
        if not rows or float(rows[0]["expires_at"]) <= self._clock():
            return None
        return json.loads(rows[0]["data"])

    def close(self) -> None:
        self._db.close()
