"""A StreamingResponse that closes its source when the response ends, however it ends.

Starlette stops iterating when the client goes away but leaves the generator suspended; it is closed only when the
garbage collector breaks the reference cycle its cancelled frames sit in, which can take minutes. Until then the
generation it drives (a llama.cpp slot, a vLLM request) is not released. Closing it runs its `finally` blocks now.
A client that stops reading without going away is held by TCP back-pressure: the generator is not advanced while
the socket's buffers are full, so nothing piles up in memory.
"""
from __future__ import annotations

import logging
from typing import Any

import anyio
from starlette.responses import StreamingResponse

log = logging.getLogger("assistant.api")


class ClosingStreamingResponse(StreamingResponse):
    def __init__(self, content: Any, *args: Any, **kwargs: Any):
        self._source = content
        super().__init__(content, *args, **kwargs)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):   # the request may be cancelled: closing must still happen
                await self._close_source()

    async def _close_source(self) -> None:
        try:
            if hasattr(self._source, "aclose"):
                await self._source.aclose()
            elif hasattr(self._source, "close"):
                await anyio.to_thread.run_sync(self._source.close)   # its finally blocks may block
        except Exception:  # noqa: BLE001 - the response is over; a failing cleanup is logged, not raised
            log.exception("closing a finished stream failed")
