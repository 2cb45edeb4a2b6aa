"""Gradio's own upload route (`<mount>/gradio_api/upload`) knows nothing of this UI's login: it took files from
anyone (#14). A login now issues an upload ticket, set as a cookie by the browser (SameSite=Strict, the UI's path
only); the gate lets an upload through only with a ticket whose session is still valid (the key not revoked), and
answers 401 before reading the body otherwise."""
from __future__ import annotations

import secrets
import threading
from http.cookies import SimpleCookie
from typing import Any, Callable

from assistant.services.access import Principal

COOKIE = "gov_ui_upload"
# the browser sets it right after a login (Gradio event js): no server round trip, no Set-Cookie from a websocket
SET_COOKIE_JS = ("(t) => { if (t) { document.cookie = '" + COOKIE + "=' + t + '; path=/; SameSite=Strict'; } "
                 "return t; }")
CLEAR_COOKIE_JS = "document.cookie = '" + COOKIE + "=; path=/; max-age=0; SameSite=Strict';"


class UploadTickets:
    def __init__(self, still_valid: Callable[[Principal], bool]):
        self.still_valid = still_valid
        self._by_token: dict[str, Principal] = {}
        self._lock = threading.Lock()

    def issue(self, principal: Principal) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._by_token[token] = principal
        return token

    def revoke(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)

    def principal(self, token: str | None) -> Principal | None:
        with self._lock:
            p = self._by_token.get(token or "")
        if p is not None and not self.still_valid(p):
            with self._lock:
                self._by_token.pop(token, None)     # a revoked key's ticket ends with its session
            return None
        return p


class UploadGate:
    """Pure ASGI: POST <prefix>/…/upload needs a live ticket cookie."""

    def __init__(self, app: Any, tickets: UploadTickets, prefix: str):
        self.app, self.tickets, self.prefix = app, tickets, prefix.rstrip("/")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        upload = scope["type"] == "http" and scope.get("method") == "POST" \
            and path.startswith(self.prefix + "/") and path.rstrip("/").endswith("/upload")
        if upload and await _live(self.tickets, _ticket(scope)) is None:
            body = "请先登录：上传文件需要有效的登录会话。".encode()
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


async def _live(tickets: UploadTickets, token: str | None) -> Principal | None:
    # in a worker thread: the session check may ask the database or the directory (LDAP re-check), which must
    # not stall the event loop every other request of this process waits on
    from starlette.concurrency import run_in_threadpool
    return await run_in_threadpool(tickets.principal, token)


def _ticket(scope: dict) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no ticket
                return None
            if COOKIE in jar:
                return jar[COOKIE].value
    return None
