"""Pure ASGI middleware (no BaseHTTPMiddleware, so streaming responses pass through untouched):

- ObservabilityMiddleware: when the last byte of a response is sent (streams included) it records the request
  in the metrics and, for /api and /v1 routes, one audit row. Routers add what only they know (knowledge base,
  question, returned source ids, model, answer id) to `request.state.audit` (see deps.note).
- AuthMiddleware: authenticates /api and /v1 requests from their headers (and takes the per-key rate-limit token)
  before any byte of the body is read, so an unauthenticated client can neither make the server read, parse or
  store a body nor learn anything from validation errors; the Principal goes into the scope for deps.
- the body limits and timeouts are in body_guard.py.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any

from starlette.responses import JSONResponse

from assistant.api.errors import error_payload
from assistant.api.metrics import Metrics
from assistant.services.access import Principal
from assistant.services.auth import AuthError
from assistant.services.rate_limit import RateLimited

log = logging.getLogger("assistant.api")
AUDITED_PREFIXES = ("/api/", "/v1/")
PROTECTED_PREFIXES = AUDITED_PREFIXES   # every route under these needs a key; health, docs and /ui are public
SCOPE_PRINCIPAL = "gov_assistant.principal"


def outcome_of(status: int) -> str:
    if status in (401, 403):
        return "denied"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "error"
    return "rejected" if status >= 400 else "ok"


class ObservabilityMiddleware:
    def __init__(self, app: Any, metrics: Metrics, audit: Any):
        self.app, self.metrics, self.audit = app, metrics, audit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        context: dict = {}
        scope.setdefault("state", {})["audit"] = context
        status = {"code": 500}
        finished = False

        def finish() -> None:
            nonlocal finished
            if not finished:
                finished = True
                self._record(scope, status["code"], time.perf_counter() - start, context)

        async def send_and_watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finish()

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            finish()   # errors and client disconnects mid-stream are recorded too

    def _record(self, scope: dict, status: int, seconds: float, context: dict) -> None:
        route = scope.get("route")
        label = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        self.metrics.observe_request(method, label, status, seconds)
        path = scope.get("path", "")
        if not route_path(scope).startswith(AUDITED_PREFIXES) or method == "OPTIONS":   # CORS preflights carry no request
            return
        client = scope.get("client")
        outcome = context.get("outcome") if status < 400 and context.get("outcome") else outcome_of(status)
        try:
            self.audit.record(
                principal=context.get("principal", "anonymous"), operation=getattr(route, "name", None) or "unmatched",
                outcome=outcome, client_ip=client[0] if client else None, method=method, path=path, status=status,
                kb=context.get("kb"), question=context.get("question"), sources=context.get("sources"),
                model=context.get("model"), answer_id=context.get("answer_id"), latency_ms=seconds * 1000)
        except Exception:  # noqa: BLE001 - a full disk must not turn every response into an error; it is logged
            log.exception("audit record failed for %s %s", method, path)


def route_path(scope: dict) -> str:
    """The path the router matches (without the root_path a proxy mounts the app under), as Starlette does."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root):len(root) + 1] in ("", "/"):
        return path[len(root):]
    return path


class RouteTable:
    """Which route a request goes to, before the router runs (for the body limit of that route and to name the
    operation of a request refused early). The app's routes flattened once (FastAPI nests included routers);
    rebuilt when routes are added (the UI is mounted after the middleware is configured)."""

    def __init__(self, router: Any):
        self.router, self._entries, self._size = router, [], -1

    def _build(self) -> None:
        try:
            from fastapi.routing import iter_route_contexts
            contexts = [(c, c.original_route) for c in iter_route_contexts(self.router.routes)]
        except ImportError:   # older FastAPI: the routes are flat already
            contexts = [(r, r) for r in self.router.routes]
        self._entries = [(regex, getattr(c, "methods", None), route) for c, route in contexts
                         if (regex := getattr(c, "path_regex", None)) is not None]
        self._size = len(self.router.routes)

    def match(self, scope: dict) -> Any:
        """The route (a method mismatch counts: it answers 405), or None."""
        if len(self.router.routes) != self._size:
            self._build()
        path, method, partial = route_path(scope), scope.get("method"), None
        for regex, methods, route in self._entries:
            if regex.match(path):
                if not methods or method in methods:
                    return route
                partial = partial or route
        return partial


def request_credentials(headers: list[tuple[bytes, bytes]]) -> str | None:
    """`Authorization: Bearer <key>`, else `X-API-Key: <key>`. Never the query string: URLs end up in logs,
    browser history and proxies."""
    bearer = header_key = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
        elif name == b"x-api-key":
            header_key = value.decode("latin-1").strip() or None
    return bearer or header_key


def authenticate_scope(container: Any, scope: dict) -> Principal:
    """The key's Principal (AuthError: 401), after taking its rate-limit token (RateLimited: 429); the audit
    record names the key id from here on, whatever happens to the request later."""
    principal = container.principals.authenticate(request_credentials(scope.get("headers") or []))
    scope.setdefault("state", {}).setdefault("audit", {})["principal"] = principal.id
    container.rate_limiter.check(principal.id)
    scope[SCOPE_PRINCIPAL] = principal
    return principal


def has_body(scope: dict) -> bool:
    headers = dict(scope.get("headers") or [])
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0").strip() not in (b"", b"0")


async def reject(routes: RouteTable, scope: dict, send: Any, status: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
    """Answer without reading the body. The connection is closed after the answer when a body was announced:
    uvicorn would otherwise read (and discard) the rest of it to keep the connection alive."""
    route = routes.match(scope)
    if route is not None:
        scope.setdefault("route", route)   # the audit record and metrics name the operation
    headers = dict(headers or {})
    if has_body(scope):
        headers["Connection"] = "close"
    response = JSONResponse(error_payload(route_path(scope), status, message), status_code=status, headers=headers)

    async def no_body() -> dict:   # a response never needs the request body; nothing is read
        return {"type": "http.disconnect"}
    await response(scope, no_body, send)


class AuthMiddleware:
    def __init__(self, app: Any, container: Any, routes: RouteTable):
        self.app, self.container, self.routes = app, container, routes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not route_path(scope).startswith(PROTECTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        try:
            authenticate_scope(self.container, scope)
        except AuthError as exc:
            await reject(self.routes, scope, send, 401, str(exc), {"WWW-Authenticate": "Bearer"})
            return
        except RateLimited as exc:
            await reject(self.routes, scope, send, 429, str(exc),
                         {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))})
            return
        await self.app(scope, receive, send)

