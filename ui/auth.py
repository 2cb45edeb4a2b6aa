"""Login for the UI: the same principals as the API.

- API key: the key the API accepts (assistant/services/auth.py ApiKeyStore.authenticate → Principal).
- Username and password: only where the deployment passes a resolver `(username, password) -> Principal | None`
  to mount_ui (an LDAP/SSO bridge, a fixed user table ...); the tab is hidden otherwise.

The principal lives in a per-session gr.State (server side; the browser never holds it), so every page calls the
services as that principal and the services enforce the ACL. Every handler re-checks the session (`still_valid`,
applied by UIContext.bind): a key session lasts while that key — by id, not by its reusable name — is active with
the same role and knowledge bases, at most RECHECK_S behind a revocation. Failed logins are throttled per client
address and, against many addresses, in total.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from assistant.services.access import Principal

PrincipalResolver = Callable[[str, str], "Principal | None"]
KeyAuthenticator = Callable[[str], Principal]

MAX_FAILURES = 5          # per client address within WINDOW_S, then locked for WINDOW_S
MAX_FAILURES_TOTAL = 100  # all addresses together within WINDOW_S (one guesser with many addresses)
WINDOW_S = 60.0
RECHECK_S = 10.0          # how stale the list of active keys may be when a logged-in session acts


class LoginError(Exception):
    """A login that did not succeed; the message is shown to the user (Chinese, no detail that helps guessing)."""


def find_key_authenticator(container: Any) -> KeyAuthenticator | None:
    """The API's key store as the container exposes it (api_keys / auth / keys), if this build has one."""
    for name in ("api_keys", "auth", "keys", "key_store"):
        try:
            svc = getattr(container, name)
        except AttributeError:
            continue
        except Exception:  # noqa: BLE001 - a store that cannot open is reported at login, not at start
            continue
        if callable(getattr(svc, "authenticate", None)):
            return svc.authenticate
    return None


class Throttle:
    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S,
                 max_total: int = MAX_FAILURES_TOTAL, clock: Callable[[], float] = time.monotonic):
        self.max_failures, self.window_s, self.max_total, self._clock = max_failures, window_s, max_total, clock
        self._failures: dict[str, list[float]] = {}
        self._all: list[float] = []           # every failure in the window, whatever the address
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            self._all = [t for t in self._all if now - t < self.window_s]
            recent = [t for t in self._failures.pop(client, []) if now - t < self.window_s]
            if recent:
                self._failures[client] = recent
            over = [(times, limit) for times, limit in ((recent, self.max_failures), (self._all, self.max_total))
                    if len(times) >= limit]
        if over:
            times, limit = over[0]
            wait = int(self.window_s - (now - times[len(times) - limit])) + 1   # until one leaves the window
            raise LoginError(f"登录失败次数过多，请 {wait} 秒后再试。")

    def failed(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            self._failures.setdefault(client, []).append(now)
            self._all.append(now)
            if len(self._failures) > 4 * self.max_total:   # many addresses: drop the ones whose window is over
                self._failures = {c: ts for c, ts in self._failures.items() if now - ts[-1] < self.window_s}

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


def find_key_store(container: Any) -> Any | None:
    """The key store itself where it can list active keys (to notice a revocation after login)."""
    try:
        store = getattr(container, "api_keys")
    except Exception:  # noqa: BLE001
        return None
    return store if callable(getattr(store, "list", None)) else None


class Login:
    def __init__(self, container: Any, principal_resolver: PrincipalResolver | None = None,
                 key_authenticator: KeyAuthenticator | None = None, recheck_s: float = RECHECK_S,
                 clock: Callable[[], float] = time.monotonic):
        self.container = container
        self.principal_resolver = principal_resolver
        self._key_authenticator = key_authenticator
        self.throttle = Throttle(clock=clock)
        self.recheck_s, self._clock = recheck_s, clock
        self._sessions: dict[Principal, str] = {}        # principals this process logged in → "key" | "password"
        self._active: tuple[float, dict[str, dict]] = (float("-inf"), {})   # (as of, active key records by id)
        self._lock = threading.Lock()

    def still_valid(self, principal: Principal) -> bool:
        """A principal that this Login issued; for a key login, while that key id is active with the same role,
        knowledge bases and departments (seen at most `recheck_s` late). A password login is the resolver's
        business. A session that fails once stays ended."""
        with self._lock:
            kind = self._sessions.get(principal) if isinstance(principal, Principal) else None
        if kind is None:                     # forged, or ended
            return False
        store = find_key_store(self.container)
        if kind == "password" or store is None or self._key_authenticator is not None:
            return True                      # nothing here can re-check it
        rec = self._active_key(store, principal.id)
        ok = (rec is not None and rec["role"] == principal.role and tuple(rec["kbs"]) == principal.kbs
              and tuple(rec.get("departments") or ()) == principal.departments)
        if not ok:
            with self._lock:
                self._sessions.pop(principal, None)
        return ok

    def _active_key(self, store: Any, key_id: str) -> dict | None:
        """The active key record with this id, from a list at most `recheck_s` old; an id the list lacks is
        looked up afresh (a key created after the list was read)."""
        with self._lock:
            at, active = self._active
            now = self._clock()
            if now - at >= self.recheck_s or key_id not in active:
                active = {k["id"]: k for k in store.list()}
                self._active = (now, active)
            return active.get(key_id)

    @property
    def key_authenticator(self) -> KeyAuthenticator | None:
        return self._key_authenticator or find_key_authenticator(self.container)

    @property
    def password_enabled(self) -> bool:
        return self.principal_resolver is not None

    def with_key(self, secret: str, client: str = "") -> Principal:
        secret = (secret or "").strip()
        if not secret:
            raise LoginError("请输入 API 密钥。")
        auth = self.key_authenticator
        if auth is None:
            raise LoginError("本系统尚未启用 API 密钥登录（缺少密钥服务）。")
        self.throttle.check(client)
        try:
            principal = auth(secret)
        except PermissionError:
            principal = None
        if not isinstance(principal, Principal):
            self.throttle.failed(client)
            raise LoginError("API 密钥无效或已被吊销。")
        self.throttle.succeeded(client)
        with self._lock:
            self._sessions[principal] = "key"
        return principal

    def with_password(self, username: str, password: str, client: str = "") -> Principal:
        username, password = (username or "").strip(), password or ""
        if not username or not password:
            raise LoginError("请输入用户名和密码。")
        if self.principal_resolver is None:
            raise LoginError("本系统未启用用户名密码登录，请使用 API 密钥。")
        self.throttle.check(client)
        try:
            principal = self.principal_resolver(username, password)
        except PermissionError:
            principal = None
        if not isinstance(principal, Principal):
            self.throttle.failed(client)
            raise LoginError("用户名或密码错误。")
        self.throttle.succeeded(client)
        with self._lock:
            self._sessions[principal] = "password"
        return principal
