"""Pure ASGI middleware (no BaseHTTPMiddleware, so streaming responses pass through untouched):

- ObservabilityMiddleware: when the last byte of a response is sent (streams included) it records the request
  in the metrics and, for /api and /v1 routes, one audit row. Routers add what only they know (knowledge base,
  question, returned source ids, model, answer id) to `request.state.audit` (see deps.note).
- BodyLimitMiddleware: refuses an upload whose declared length is over the limit before it is read.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from assistant.api.metrics import Metrics

log = logging.getLogger("assistant.api")
AUDITED_PREFIXES = ("/api/", "/v1/")


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
        if not path.startswith(AUDITED_PREFIXES) or method == "OPTIONS":   # CORS preflights carry no request
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


class BodyLimitMiddleware:
    def __init__(self, app: Any, max_bytes: int, prefix: str = "/api/"):
        self.app, self.max_bytes, self.prefix = app, max_bytes, prefix

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith(self.prefix):
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length and length.isdigit() and int(length) > self.max_bytes:
                body = json.dumps({"detail": f"request body is {int(length) / 2**20:.1f} MiB; the limit is "
                                             f"{self.max_bytes // 2**20} MiB"}).encode()
                await send({"type": "http.response.start", "status": 413,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
