"""How `gov-assistant serve` runs uvicorn (the transport tests run the same options):

- headers are bounded in size (api.max_header_kb: 431) and time (api.header_timeout_s: 408, or a silent close for
  a connection that sent nothing). uvicorn's default parser (httptools) buffers any header size and waits for
  headers forever, so one client could hold memory and connections with a trickle of bytes;
- at most api.max_connections connections and requests at once (uvicorn answers 503 beyond);
- logging redacts secrets (assistant.api.redact) on every record and on uvicorn's handlers.
"""
from __future__ import annotations

import asyncio
import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from assistant.api import redact

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class HeaderGuard:
    """Mixed into uvicorn's HTTP protocol. Counts the bytes a request's headers take and times them, from the
    connection (or the previous response) to the moment the request starts; the body has its own limits
    (body_guard.py)."""

    max_header_bytes = 32 * 1024
    header_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm()   # the next request on this keep-alive connection

    def _waiting_for_headers(self) -> bool:
        cycle = getattr(self, "cycle", None)
        return (cycle is None or cycle.response_complete) and not getattr(self, "pipeline", None)

    def _arm(self) -> None:
        self._disarm()
        self._header_bytes = 0
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)  # type: ignore

    def _disarm(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
        self._header_timer = None

    def data_received(self, data: bytes) -> None:
        waiting = self._waiting_for_headers()
        super().data_received(data)  # type: ignore[misc]
        if not waiting or self.transport.is_closing():  # type: ignore[attr-defined]
            return
        if not self._waiting_for_headers():   # the headers are complete: the request runs
            self._disarm()
            return
        self._header_bytes += len(data)
        if self._header_bytes > self.max_header_bytes:
            self._refuse(431, f"request line and headers over {self.max_header_bytes // 1024} KiB")

    def _header_timeout(self) -> None:
        self._header_timer = None
        transport = self.transport  # type: ignore[attr-defined]
        if transport.is_closing() or transport.get_protocol() is not self or not self._waiting_for_headers():
            return
        if self._header_bytes:
            self._refuse(408, f"request headers not received within {self.header_timeout_s:g} s")
        else:
            transport.close()   # nothing sent: an idle connection, nothing to answer

    def _refuse(self, status: int, reason: str) -> None:
        self._disarm()
        self.logger.warning("refused a request from %s: %s", self.client, reason)  # type: ignore[attr-defined]
        body = reason.encode()
        self.transport.write(  # type: ignore[attr-defined]
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (status, _REASONS[status], len(body), body))
        self.transport.close()  # type: ignore[attr-defined]


def http_protocol(max_header_bytes: int, header_timeout_s: float) -> type:
    """uvicorn's own HTTP protocol (httptools when installed, else h11) with the header guard."""
    return type(f"Guarded{AutoHTTPProtocol.__name__}", (HeaderGuard, AutoHTTPProtocol),
                {"max_header_bytes": max_header_bytes, "header_timeout_s": header_timeout_s})


def log_config() -> dict:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": redact.RedactSecrets}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    # the app's own loggers go through the same (redacting) handler instead of Python's last-resort one
    config["loggers"]["assistant"] = {"handlers": ["default"], "propagate": False}   # level: root's (WARNING)
    return config


def uvicorn_options(settings: Any) -> dict:
    """Keyword arguments for uvicorn.run / uvicorn.Config besides app, host and port; installs the redaction of
    every log record (uvicorn configures its loggers only when it starts)."""
    api = settings.api
    redact.install()
    return {"http": http_protocol(api.max_header_kb * 1024, api.header_timeout_s),
            "h11_max_incomplete_event_size": api.max_header_kb * 1024,
            "limit_concurrency": api.max_connections or None, "log_config": log_config()}


def check_ports_free(host: str, *ports: tuple[int, str]) -> None:
    """Each (port, the option that set it) can be bound on host, and no two are the same, before anything starts:
    with `--workers N` the web UI is a process of its own, and a taken port would stop only that process while the
    API went on redirecting /ui to it. Binds as uvicorn does (SO_REUSEADDR: a port in TIME_WAIT is free)."""
    import socket
    if len({port for port, _ in ports}) < len(ports):
        raise ValueError(f"{' and '.join(option for _, option in ports)} name the same port: give each its own")
    for port, option in ports:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                raise ValueError(f"cannot serve on {host}:{port} ({option}): {exc.strerror or exc}; "
                                 "stop what holds it or choose another port") from None
