"""Every UI handler that acts as the logged-in principal runs through `session_handler` (UIContext.bind applies it
where events are registered): the session is re-checked on each call (ui/auth.py Login.still_valid: a session this
process started, its key still active under the same id, role and knowledge bases) and the call is written to the
audit log as one row — principal id, operation ui.<page>.<handler>, outcome ok / denied / rejected / error — with
what the handler adds through `note` (knowledge base, question, source ids, answer id)."""
from __future__ import annotations

import functools
import inspect
import logging
import time
from contextvars import ContextVar
from typing import Any, Callable

import gradio as gr

from assistant.services.access import Principal

_log = logging.getLogger("ui")
SessionCheck = Callable[[Principal], bool]   # False, or SessionEnded with the reason to show
NOT_LOGGED_IN = "请先登录。"
EXPIRED = "登录已失效（密钥已被吊销或权限已变更），请刷新页面重新登录。"


class SessionEnded(Exception):
    """A session check that ended the session says why (the message is shown to the user)."""
# the audit row of the handler call now running: gradio may run a generator's steps on different threads, so the
# wrapper sets it around each step
_CALL: ContextVar[dict | None] = ContextVar("ui_audit_call", default=None)


def note(**fields: Any) -> None:
    """Add to the running handler's audit row (kb, question, sources, model, answer_id, or its outcome)."""
    call = _CALL.get()
    if call is not None:
        call.update({k: v for k, v in fields.items() if v is not None})


def client_ip(request: Any) -> str | None:
    try:
        return request.client.host if request is not None and request.client else None
    except Exception:  # noqa: BLE001
        return None


def audit(container: Any, principal: Principal | str | None, operation: str, outcome: str, request: Any = None,
          **fields: Any) -> None:
    """One row in the API's append-only audit log (container.audit), keyed by the principal's id (names are
    reused after a revoke). Auditing never breaks the page: a failure to write is logged."""
    try:
        log = getattr(container, "audit")
    except Exception:  # noqa: BLE001 - a build without an audit log
        return
    if not callable(getattr(log, "record", None)):
        return
    who = principal.id if isinstance(principal, Principal) else str(principal or "-")[:64]
    try:
        log.record(principal=who, operation=operation, outcome=outcome, client_ip=client_ip(request),
                   method="UI", path="/ui", **fields)
    except Exception:  # noqa: BLE001 - a full disk must not break the page; it is logged
        _log.exception("audit record failed for %s", operation)


def operation_name(fn: Callable) -> str:
    """ui.<page>.<handler>: ui.pages.chat's `ask` → ui.chat.ask (a do_ prefix dropped)."""
    page = (fn.__module__ or "ui").rsplit(".", 1)[-1]
    name = fn.__name__[3:] if fn.__name__.startswith("do_") else fn.__name__
    return f"ui.{page}.{name}"


def _request(args: tuple) -> Any:
    for a in args:
        if isinstance(a, gr.Request):
            return a
    from gradio.context import LocalContext   # the request of the event being processed (set by gradio per call)
    return LocalContext.request.get(None)


def session_handler(fn: Callable, container: Any, check: SessionCheck) -> Callable:
    """fn(principal, *rest) → the same handler, run only for a live session and audited. A refused call raises
    gr.Error (a toast, outputs unchanged) before fn runs."""
    operation = operation_name(fn)

    def admit(principal: Any, args: tuple) -> tuple[dict, Any]:
        request = _request(args)
        message = EXPIRED
        try:
            live = isinstance(principal, Principal) and check(principal)
        except SessionEnded as exc:
            live, message = False, str(exc)
        if not live:
            audit(container, principal, operation, "denied", request)
            if principal is None:
                raise gr.Error(NOT_LOGGED_IN, title="未登录")
            raise gr.Error(message, title="登录已失效")
        return {}, request

    def finish(principal: Principal, call: dict, request: Any, outcome: str, t0: float) -> None:
        outcome = call.pop("outcome", outcome)
        audit(container, principal, operation, outcome, request, latency_ms=(time.perf_counter() - t0) * 1000,
              **call)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(principal, *args, **kwargs):
            call, request = admit(principal, args)
            t0, outcome = time.perf_counter(), "error"
            steps = fn(principal, *args, **kwargs)
            try:
                while True:
                    token = _CALL.set(call)
                    try:
                        item = next(steps)
                    except StopIteration:
                        break
                    finally:
                        _CALL.reset(token)
                    yield item
                outcome = "ok"
            except gr.Error:
                outcome = "rejected"
                raise
            except GeneratorExit:            # the browser went away mid-stream
                outcome = "cancelled"
                raise
            finally:
                steps.close()
                finish(principal, call, request, outcome, t0)
        wrapper = gen
    else:
        @functools.wraps(fn)
        def wrapper(principal, *args, **kwargs):
            call, request = admit(principal, args)
            t0, outcome = time.perf_counter(), "error"
            token = _CALL.set(call)
            try:
                result = fn(principal, *args, **kwargs)
                outcome = "ok"
                return result
            except gr.Error:
                outcome = "rejected"
                raise
            finally:
                _CALL.reset(token)
                finish(principal, call, request, outcome, t0)
    wrapper.ui_session = True          # tests enumerate the registered handlers and look for this
    wrapper.ui_operation = operation
    return wrapper
