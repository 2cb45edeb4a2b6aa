"""A real `gov-assistant serve` stack for transport tests: the app from create_app, run by uvicorn with the options
serve uses (assistant/api/server.py), on 127.0.0.1 and a free port, in a thread; plus raw-socket clients that can
send what well-behaved HTTP clients never do (chunked bodies that never end, trickled bytes, lying lengths)."""
from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import uvicorn

from assistant.api.app import create_app
from assistant.api.server import uvicorn_options
from assistant.container import Container

MiB = 2**20


class CountingApp:
    """Wraps the whole ASGI app: how many body bytes anything in the app stack received from uvicorn."""

    def __init__(self, app: Any):
        self.app, self.body_bytes = app, 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        async def counted() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                self.body_bytes += len(message.get("body", b""))
            return message
        await self.app(scope, counted, send)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    container: Container
    port: int
    counter: CountingApp
    server: uvicorn.Server
    thread: threading.Thread
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def key_id(self, who: str) -> str:
        return self.container.api_keys.authenticate(self.keys[who]).id

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def start_server(container: Container, log_level: str = "warning") -> LiveServer:
    counter = CountingApp(create_app(container, with_ui=False))
    port = free_port()
    options = uvicorn_options(container.settings)
    server = uvicorn.Server(uvicorn.Config(counter, host="127.0.0.1", port=port, log_level=log_level,
                                           lifespan="on", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return LiveServer(container, port, counter, server, thread)


# ---------------------------------------------------------------- raw HTTP/1.1

@dataclass
class RawResponse:
    status: int | None
    headers: dict[str, str]
    body: bytes
    sent: int           # body bytes the client got out before the answer (or the close)
    seconds: float

    def json(self) -> Any:
        import json
        return json.loads(self.body)


def head(method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(parts: Iterable[bytes]) -> Iterator[bytes]:
    """Chunked transfer encoding of parts; no terminating chunk unless parts end."""
    for part in parts:
        if part:
            yield b"%x\r\n%s\r\n" % (len(part), part)
    yield b"0\r\n\r\n"


def endless(piece: bytes, total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)


def _parse(raw: bytes) -> tuple[int | None, dict[str, str], bytes]:
    header, _, body = raw.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, {}, raw
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return status, headers, body


def _read_response(sock: socket.socket, timeout: float) -> bytes:
    """Until one whole response (by Content-Length) is in, the peer closes, or the timeout."""
    data = b""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        data += chunk
        status, headers, body = _parse(data)
        if status is not None and "content-length" in headers and len(body) >= int(headers["content-length"]):
            break
    return data


def answered(sock: socket.socket) -> bool:
    """The server has sent something (or hung up). poll, not select: a long test session holds more than
    FD_SETSIZE (1024) descriptors, which select() refuses."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(0))


def _send(sock: socket.socket, pieces: Iterable[bytes], pause_s: float = 0.0,
          deadline: float | None = None) -> tuple[int, bool]:
    """Send pieces until the server answers or hangs up → (bytes sent, whether it stopped before the end)."""
    sent = 0
    for piece in pieces:
        if answered(sock):
            return sent, True
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            return sent, True
        sent += len(piece)
        if pause_s:
            time.sleep(pause_s)
        if deadline is not None and time.monotonic() > deadline:
            return sent, True
    return sent, False


def exchange(port: int, request_head: bytes, body: Iterable[bytes] = (), pause_s: float = 0.0,
             timeout: float = 10.0) -> RawResponse:
    """Send the head, then body pieces (pause_s between them) until the server answers or hangs up; read the
    answer. `sent` is how much body got out before that, which bounds what the server could have read."""
    start = time.monotonic()
    sent = 0
    pieces = [request_head[i:i + 65536] for i in range(0, len(request_head), 65536)]   # the head may be huge too
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        stopped = _send(sock, pieces)[1]
        if not stopped:
            sent = _send(sock, body, pause_s, start + timeout)[0]
        raw = _read_response(sock, timeout)
    status, headers, payload = _parse(raw)
    return RawResponse(status, headers, payload, sent, time.monotonic() - start)


def multipart_head(path: str, boundary: str, headers: dict[str, str] | None = None) -> bytes:
    return head("POST", path, {"Content-Type": f"multipart/form-data; boundary={boundary}",
                               "Transfer-Encoding": "chunked", **(headers or {})})


def file_part(boundary: str, name: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()
