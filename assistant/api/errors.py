"""Service exceptions → HTTP status with a clear message; never a traceback to the client.

/v1 (OpenAI-compatible) routes answer in OpenAI's error shape {"error": {"message", "type", "param", "code"}},
so the official clients raise their usual exception classes; /api routes answer {"detail": "..."}.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.components.registry import ComponentError
from assistant.components.store.catalog import CatalogError
from assistant.filters import FilterError
from assistant.services.access import AccessDenied
from assistant.services.auth import AuthError
from assistant.services.rate_limit import RateLimited
from assistant.services.uploads import UploadRejected

log = logging.getLogger("assistant.api")
OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 409: "conflict_error", 413: "invalid_request_error",
                415: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
                503: "service_unavailable", 500: "server_error"}


def error_payload(path: str, status: int, message: str) -> dict:
    """The error body for a path: OpenAI's shape under /v1, {"detail"} elsewhere (the middleware uses it too)."""
    if path.startswith("/v1/"):
        return {"error": {"message": message, "type": OPENAI_TYPES.get(status, "invalid_request_error"),
                          "param": None, "code": status}}
    return {"detail": message}


def error_response(request: Request, status: int, message: str, headers: dict | None = None,
                   errors: list | None = None) -> JSONResponse:
    body = error_payload(request.url.path, status, message)
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def _unparsable_body(exc: StarletteHTTPException) -> str | None:
    """FastAPI answers 400 "There was an error parsing the body" for any parser failure; a JSON body that is nested
    too deeply or is not UTF-8 is malformed input like any other: 422 with a message saying which."""
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    if isinstance(cause, RecursionError):
        return "malformed JSON body: nested too deeply"
    if isinstance(cause, UnicodeDecodeError):
        return f"malformed JSON body: not UTF-8 (invalid byte at position {cause.start})"
    return None


def catalog_status(exc: CatalogError) -> int:
    # the catalog raises one exception type; its messages say which case it is
    text = str(exc)
    if "does not exist" in text or "not found" in text:
        return 404
    if "already exists" in text:
        return 409
    if "only an admin" in text:
        return 403
    return 422


def backend_errors() -> tuple[type[Exception], ...]:
    """A model that cannot load or an LLM server that does not answer: 503, the request itself was fine."""
    import httpx
    import openai

    from assistant.components.llm.local import LLMError
    from assistant.models import ModelError
    # httpx.TransportError: a server the app calls (the Chroma server) timed out or dropped the connection
    return ComponentError, LLMError, ModelError, openai.APIError, httpx.TransportError


def _validation_message(errors: list[dict]) -> str:
    parts = []
    for e in errors[:5]:
        if e.get("type") == "json_invalid":
            return f"malformed JSON body (near character {e.get('loc', ('', '?'))[-1]}): {e.get('msg', '')}"
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid').removeprefix('Value error, ')}")
    return "invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), exclude={"input", "ctx", "url"})
        return error_response(request, 422, _validation_message(exc.errors()), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        unparsable = _unparsable_body(exc)
        if unparsable:
            return error_response(request, 422, unparsable)
        return error_response(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        return error_response(request, 401, str(exc), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(AccessDenied)
    async def _denied(request: Request, exc: AccessDenied) -> JSONResponse:
        return error_response(request, 403, str(exc))

    @app.exception_handler(RateLimited)
    async def _limited(request: Request, exc: RateLimited) -> JSONResponse:
        return error_response(request, 429, str(exc), headers={"Retry-After": str(max(1, round(exc.retry_after_s)))})

    @app.exception_handler(UploadRejected)
    async def _upload(request: Request, exc: UploadRejected) -> JSONResponse:
        return error_response(request, exc.status, str(exc))

    @app.exception_handler(CatalogError)
    async def _catalog(request: Request, exc: CatalogError) -> JSONResponse:
        return error_response(request, catalog_status(exc), str(exc))

    @app.exception_handler(FilterError)
    async def _filter(request: Request, exc: FilterError) -> JSONResponse:
        return error_response(request, 422, str(exc))

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError) -> JSONResponse:
        # services raise ValueError for input they refuse (empty question, bad role, unknown doc type ...)
        return error_response(request, 422, str(exc))

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("backend unavailable on %s: %s: %s", request.url.path, type(exc).__name__, exc)
        return error_response(request, 503, f"the model backend is unavailable: {type(exc).__name__}: {exc}"[:500])

    for exc_type in backend_errors():
        app.add_exception_handler(exc_type, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal error; the server log has the details")
