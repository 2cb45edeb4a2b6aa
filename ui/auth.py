"""Login for the UI: the same principals as the API.

- API key: the key the API accepts (assistant/services/auth.py ApiKeyStore.authenticate → Principal).
- Username and password: only where the deployment passes a resolver `(username, password) -> Principal | None`
  to mount_ui (an LDAP/SSO bridge, a fixed user table ...); the tab is hidden otherwise.

The principal lives in a per-session gr.State (server side; the browser never holds it), so every page calls the
services as that principal and the services enforce the ACL. Every handler re-checks the session (`still_valid`,
applied by UIContext.bind): a key session lasts while that key — by id, not by its reusable name — is active with
the same role and knowledge bases, at most RECHECK_S behind a revocation. An LDAP session's account is read
again from the directory at most `identity.ldap.recheck_s` apart (disabled, gone, less access, or the
directory down: the session ends). Failed logins are throttled per client address and, against many
addresses, in total.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from assistant.services.access import Principal
from ui.session import EXPIRED, SessionEnded, audit

# (username, password) -> a Principal, or an ExternalIdentity the directory maps (LDAP), or None
PrincipalResolver = Callable[[str, str], Any]
_log = logging.getLogger("ui.auth")
KeyAuthenticator = Callable[[str], Principal]

MAX_FAILURES = 5          # per client address within WINDOW_S, then locked for WINDOW_S
MAX_FAILURES_TOTAL = 100  # all addresses together within WINDOW_S (one guesser with many addresses)
WINDOW_S = 60.0
RECHECK_S = 10.0          # how stale the list of active keys may be when a logged-in session acts
LDAP_RECHECK_S = 300.0    # identity.ldap.recheck_s when the settings have none
DIRECTORY_DOWN = "目录服务不可用，无法确认您的账号状态，登录已结束，请稍后重新登录。"
ACCOUNT_GONE = "您的账号已在目录中停用或删除，登录已结束。"


@dataclass
class Session:
    kind: str                  # key | identity (OIDC, LDAP: re-checked against the directory) | password
    identity: Any              # the ExternalIdentity of an identity session
    started: float
    last_used: float
    checked: float = 0.0       # when the directory (LDAP) last confirmed the account


class LoginError(Exception):
    """A login that did not succeed; the message is shown to the user (Chinese, no detail that helps guessing)."""


def find_key_authenticator(container: Any) -> KeyAuthenticator | None:
    """The API's key login as the container exposes it (principals: the key plus the directory's grants; else a
    bare key store: api_keys / auth / keys), if this build has one."""
    try:
        principals = getattr(container, "principals")
        if callable(getattr(principals, "from_key", None)):
            return principals.from_key
    except Exception:  # noqa: BLE001 - a store that cannot open is reported at login, not at start
        pass
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
        self._sessions: dict[Principal, Session] = {}    # principals this process logged in
        identity = getattr(getattr(container, "settings", None), "identity", None)
        self.idle_s = float(getattr(identity, "session_idle_s", 1800))
        self.max_s = float(getattr(identity, "session_max_s", 28800))
        self.ldap_recheck_s = float(getattr(getattr(identity, "ldap", None), "recheck_s", LDAP_RECHECK_S))
        self._active: tuple[float, dict[str, dict]] = (float("-inf"), {})   # (as of, active key records by id)
        self._lock = threading.Lock()

    def still_valid(self, principal: Principal) -> bool:
        """A principal that this Login issued, used within `idle_s` and started within `max_s`; for a key login,
        while that key id is active and gives the same principal (role, KBs, departments, clearance, grants; seen
        at most `recheck_s` late); for a directory login (OIDC, LDAP), while the directory's mapping still gives
        the same principal, and for LDAP while the account, read again at most `ldap_recheck_s` apart, is
        enabled and gives no less. A password login from a bare resolver is the resolver's business. A session
        that fails once stays ended."""
        try:
            return self.check(principal)
        except SessionEnded:
            return False

    def check(self, principal: Principal) -> bool:
        """still_valid for the UI's handlers: True, False, or SessionEnded saying why the session ended."""
        with self._lock:
            session = self._sessions.get(principal) if isinstance(principal, Principal) else None
        if session is None:                  # forged, or ended
            return False
        now = self._clock()
        ok = now - session.last_used < self.idle_s and now - session.started < self.max_s
        if ok and session.kind == "identity":
            ok = self._same(principal, lambda p: p.from_identity(session.identity))
            message = self._recheck_directory(principal, session, now) if ok else None
            if message is not None:
                self.end(principal)
                raise SessionEnded(message)
        elif ok and session.kind == "key":
            store = find_key_store(self.container)
            if store is not None and self._key_authenticator is None:
                rec = self._active_key(store, principal.id)
                ok = rec is not None and self._same(principal, lambda p: p.for_key_record(rec), rec)
        with self._lock:
            if ok:
                session.last_used = now
            else:
                self._sessions.pop(principal, None)
        return ok

    def _recheck_directory(self, principal: Principal, session: Session, now: float) -> str | None:
        """An LDAP session whose last look at the directory is `ldap_recheck_s` old: the account read again by
        the search account. The message to end the session with, or None. A directory that cannot be asked
        ends it too (fail closed: a disabled account must not outlive an outage)."""
        ident = session.identity
        ldap = getattr(self.container, "ldap", None) if getattr(ident, "source", "") == "ldap" else None
        if ldap is None or not callable(getattr(ldap, "lookup", None)):
            return None
        with self._lock:
            if now - session.checked < self.ldap_recheck_s:
                return None
            session.checked = now            # claimed: the session's concurrent actions do not all ask
        try:
            fresh = ldap.lookup(ident.subject, (ident.claims or {}).get("username", ""))
        except ConnectionError:              # LdapUnavailable: unreachable, timed out, search account refused
            return self._ended(principal, "ldap_unavailable", DIRECTORY_DOWN)
        except Exception:  # noqa: BLE001 - whatever else kept the answer away: fail closed as well
            _log.exception("LDAP re-check of %s failed", principal.id)
            return self._ended(principal, "ldap_unavailable", DIRECTORY_DOWN)
        if fresh is None:
            return self._ended(principal, "ldap_gone", ACCOUNT_GONE)
        if not fresh.enabled:
            return self._ended(principal, "ldap_disabled", ACCOUNT_GONE)
        try:
            now_is = self.container.principals.from_identity(fresh)
        except PermissionError:
            return self._ended(principal, "ldap_disabled", ACCOUNT_GONE)
        if not now_is.covers(principal):     # its groups or departments now map to less
            return self._ended(principal, "ldap_less_access", EXPIRED)
        return None

    def _ended(self, principal: Principal, reason: str, message: str) -> str:
        """Audit a session the directory re-check ended (the principal's stable id, the reason; no secret)."""
        audit(self.container, principal, "ui.session.end", "ended", detail={"reason": reason})
        return message

    def _same(self, principal: Principal, now_is: Callable[[Any], Principal], rec: dict | None = None) -> bool:
        """Whether the principal is still what its credential gives (the directory read afresh)."""
        principals = getattr(self.container, "principals", None)
        if principals is None or not callable(getattr(principals, "from_identity", None)):
            if rec is None:
                return False
            return (rec["role"] == principal.role and tuple(rec["kbs"]) == principal.kbs   # a bare key store
                    and tuple(rec.get("departments") or ()) == principal.departments)
        try:
            return now_is(principals) == principal
        except PermissionError:              # disabled in the directory, key gone
            return False

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
        return self._start(principal, "key")

    def with_identity(self, ident: Any, client: str = "") -> Principal:
        """A person an identity provider vouched for (OIDC callback, LDAP bind): the directory's principal."""
        try:
            principal = self.container.principals.from_identity(ident)
        except PermissionError:
            raise LoginError("该账号不可用（已停用或缺少标识）。") from None
        return self._start(principal, "identity", ident)

    def _start(self, principal: Principal, kind: str, identity: Any = None) -> Principal:
        now = self._clock()
        with self._lock:
            self._sessions[principal] = Session(kind, identity, now, now, now)   # a login read the directory
        return principal

    def end(self, principal: Principal) -> None:
        """Logout: the session is gone for every handler at once."""
        with self._lock:
            self._sessions.pop(principal, None)

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
        except ConnectionError:              # the directory is down (LDAP): not a guess, not counted as one
            raise LoginError("目录服务不可用，请稍后再试。") from None
        if principal is None or not (isinstance(principal, Principal) or hasattr(principal, "principal_id")):
            self.throttle.failed(client)
            raise LoginError("用户名或密码错误。")
        self.throttle.succeeded(client)
        if isinstance(principal, Principal):
            return self._start(principal, "password")
        return self.with_identity(principal, client)   # an ExternalIdentity (LDAP bind)
