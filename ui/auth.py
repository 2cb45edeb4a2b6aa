"""Login for the UI: the same principals as the API.

- API key: the key the API accepts (assistant/services/auth.py ApiKeyStore.authenticate → Principal).
- Username and password: only where the deployment passes a resolver `(username, password) -> Principal | None`
  to mount_ui (an LDAP/SSO bridge, a fixed user table ...); the tab is hidden otherwise.

The principal lives in a per-session gr.State (server side; the browser never holds it), so every page calls the
services as that principal and the services enforce the ACL. Failed logins are throttled per client address.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from assistant.services.access import Principal

PrincipalResolver = Callable[[str, str], "Principal | None"]
KeyAuthenticator = Callable[[str], Principal]

MAX_FAILURES = 5          # per client address within WINDOW_S, then locked for WINDOW_S
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
    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S):
        self.max_failures, self.window_s = max_failures, window_s
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if now - t < self.window_s]
            self._failures[client] = recent
            if len(recent) >= self.max_failures:
                wait = int(self.window_s - (now - recent[0])) + 1
                raise LoginError(f"登录失败次数过多，请 {wait} 秒后再试。")

    def failed(self, client: str) -> None:
        with self._lock:
            self._failures.setdefault(client, []).append(time.monotonic())

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
                 key_authenticator: KeyAuthenticator | None = None, recheck_s: float = RECHECK_S):
        self.container = container
        self.principal_resolver = principal_resolver
        self._key_authenticator = key_authenticator
        self.throttle = Throttle()
        self.recheck_s = recheck_s
        self._by_key: set[Principal] = set()              # principals that logged in with an API key
        self._active: tuple[float, dict[str, dict]] = (0.0, {})
        self._lock = threading.Lock()

    def still_valid(self, principal: Principal) -> bool:
        """A key login lasts while its key is active with the same role and knowledge bases (checked at most every
        `recheck_s` seconds); a password login is the resolver's business."""
        if principal not in self._by_key:
            return True
        store = find_key_store(self.container)
        if store is None or self._key_authenticator is not None:
            return True
        with self._lock:
            at, active = self._active
            if time.monotonic() - at > self.recheck_s:
                active = {k["name"]: k for k in store.list()}
                self._active = (time.monotonic(), active)
        rec = active.get(principal.name)
        return rec is not None and rec["role"] == principal.role and tuple(rec["kbs"]) == principal.kbs

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
        self._by_key.add(principal)
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
        return principal
