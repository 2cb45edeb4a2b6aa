"""Request bodies are counted as they stream (chunked ones included; Content-Length is only a first check) against
the limit of the route they go to, and must arrive in time:

- a file-upload route (any route with a File parameter): the whole upload at most api.max_upload_request_mb, each
  file at most api.max_upload_mb (watched in the multipart stream, so a 1.5 GB file stops at the limit, not after
  it was spooled to disk), and at most api.max_concurrent_uploads such requests at once (503 beyond);
- a mounted app (the UI under /ui): the upload limits, but no upload slot (an anonymous client must not be able
  to take the API's slots);
- every other route: api.max_json_mb;
- a body must arrive within api.body_timeout_s plus 1 s per api.body_min_kb_per_s KiB received (408): a client
  that trickles bytes (slowloris) is cut off, a large upload over a slow line is not;
- the request line and headers: at most api.max_header_kb (431). `serve` also counts them as they arrive
  (server.py); this check covers what came in one read and any other server.

Refusals are 413 / 408 / 503 in the route's error shape with `Connection: close` (the rest of the body is never
read). Inside FastAPI they are raised from `receive` as HTTPException, which FastAPI's body parsing re-raises, so the
app's handler answers them; anything else that lets one escape is answered here.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.routing import Mount

from assistant.api.middleware import RouteTable, reject

MiB = 2**20


class BodyRejected(HTTPException):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(status, detail, headers={"Connection": "close", **(headers or {})})


@dataclass(frozen=True)
class BodyLimits:
    json_bytes: int
    upload_bytes: int
    file_bytes: int
    concurrent_uploads: int
    timeout_s: float
    min_bytes_per_s: float
    header_bytes: int

    @classmethod
    def from_settings(cls, api: Any) -> "BodyLimits":
        return cls(api.max_json_mb * MiB, api.max_upload_request_mb * MiB, api.max_upload_mb * MiB,
                   api.max_concurrent_uploads, api.body_timeout_s, api.body_min_kb_per_s * 1024,
                   api.max_header_kb * 1024)


def body_kind(route: Any) -> str:
    """upload (a route with a File parameter), mounted (a sub-application such as the UI) or json."""
    if isinstance(route, APIRoute):
        takes_files = any(isinstance(f.field_info, params.File) for f in route.dependant.body_params)
        return "upload" if takes_files else "json"
    return "mounted" if isinstance(route, Mount) else "json"


def _mib(n: int) -> str:
    return f"{n / MiB:g} MiB"


class FileSizeWatch:
    """Follows a multipart stream (a second, observing parser) and refuses a file part over the per-file limit
    the moment it gets there. A stream it cannot parse is left to the app's parser to report."""

    def __init__(self, boundary: bytes, max_bytes: int):
        self.max_bytes, self.size, self.filename, self.broken = max_bytes, 0, None, False
        self._header, self._value = b"", b""
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._begin, "on_part_data": self._data, "on_header_field": self._field,
            "on_header_value": self._val, "on_header_end": self._header_end})

    def feed(self, chunk: bytes) -> None:
        if self.broken or not chunk:
            return
        try:
            self._parser.write(chunk)
        except MultipartParseError:
            self.broken = True

    def _begin(self) -> None:
        self.size, self.filename, self._header, self._value = 0, None, b"", b""

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _val(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            _, options = parse_options_header(self._value)
            if b"filename" in options:
                self.filename = options[b"filename"].decode("utf-8", "replace") or "(unnamed)"
        self._header, self._value = b"", b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.size += end - start
        if self.filename is not None and self.size > self.max_bytes:
            raise BodyRejected(413, f"{self.filename}: file too large; the limit is {_mib(self.max_bytes)} per file")


class BodyReader:
    """`receive` for the app: counts, times and (for uploads) watches the body; after its last byte it passes
    messages through untouched (a streaming response waits on receive for the client's disconnect)."""

    def __init__(self, receive: Any, limit: int, limits: BodyLimits, watch: FileSizeWatch | None):
        self._receive, self.limit, self.limits, self.watch = receive, limit, limits, watch
        self.received, self.done, self.started = 0, False, time.monotonic()

    def _seconds_left(self) -> float:
        allowed = self.limits.timeout_s + self.received / max(self.limits.min_bytes_per_s, 1)
        return allowed - (time.monotonic() - self.started)

    async def receive(self) -> dict:
        if self.done:
            return await self._receive()
        try:
            async with asyncio.timeout(max(self._seconds_left(), 0.001)):
                message = await self._receive()
        except TimeoutError:
            self.done = True
            raise BodyRejected(408, f"the request body did not arrive in time ({self.received} bytes in "
                                    f"{time.monotonic() - self.started:.0f} s)") from None
        if message["type"] != "http.request":
            self.done = True
            return message
        body = message.get("body", b"")
        self.received += len(body)
        if self.received > self.limit:
            self.done = True
            raise BodyRejected(413, f"request body too large; the limit is {_mib(self.limit)}")
        if self.watch is not None:
            self.watch.feed(body)
        if not message.get("more_body", False):
            self.done = True
        return message


def _content_length(headers: dict[bytes, bytes]) -> int | None:
    raw = headers.get(b"content-length", b"").strip()
    return int(raw) if raw.isdigit() else None


def _boundary(headers: dict[bytes, bytes]) -> bytes | None:
    ctype, options = parse_options_header(headers.get(b"content-type", b""))
    return options.get(b"boundary") if ctype == b"multipart/form-data" else None


class BodyGuardMiddleware:
    def __init__(self, app: Any, limits: BodyLimits, routes: RouteTable):
        self.app, self.limits, self.routes = app, limits, routes
        self.uploads_in_flight = 0   # one event loop: a plain counter is enough

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head_bytes = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + sum(
            len(k) + len(v) + 4 for k, v in scope.get("headers") or [])
        if head_bytes > self.limits.header_bytes:
            await reject(self.routes, scope, send, 431, f"request line and headers over "
                                                        f"{self.limits.header_bytes // 1024} KiB")
            return
        kind = body_kind(self.routes.match(scope))
        limit = self.limits.json_bytes if kind == "json" else self.limits.upload_bytes
        headers = dict(scope.get("headers") or [])
        declared = _content_length(headers)
        if declared is not None and declared > limit:
            await reject(self.routes, scope, send, 413, f"request body is {declared / MiB:.1f} MiB; the limit is "
                                                        f"{_mib(limit)}")
            return
        if kind == "upload" and self.uploads_in_flight >= self.limits.concurrent_uploads:
            await reject(self.routes, scope, send, 503, f"{self.uploads_in_flight} uploads are in progress, the "
                                                        "most this server takes at once; retry shortly",
                         {"Retry-After": "5"})
            return
        boundary = _boundary(headers) if kind != "json" else None   # the UI's uploads: per file too
        watch = FileSizeWatch(boundary, self.limits.file_bytes) if boundary else None
        reader = BodyReader(receive, limit, self.limits, watch)
        started = False

        async def watch_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        if kind == "upload":
            self.uploads_in_flight += 1
        try:
            await self.app(scope, reader.receive, watch_send)
        except BodyRejected as exc:
            if started:
                raise
            await reject(self.routes, scope, send, exc.status_code, exc.detail, exc.headers)
        finally:
            if kind == "upload":
                self.uploads_in_flight -= 1
