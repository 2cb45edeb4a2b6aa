"""Dependencies shared by the routers: the container, the authenticated principal (API key → Principal, then the
per-key rate limit keyed by the key id; see AuthMiddleware), role checks, and `note` for what a route adds to its
audit record (whose principal is the key id: names are labels and may be reused)."""
from __future__ import annotations

from typing import Any, Callable

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from assistant.api.middleware import SCOPE_PRINCIPAL, authenticate_scope
from assistant.container import Container
from assistant.services.access import Principal, require_role

bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                    description="API key from `gov-assistant keys create`: `Authorization: Bearer gak_…`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey",
                              description="The same API key in an X-API-Key header.")


def get_container(request: Request) -> Container:
    return request.app.state.container


def note(request: Request, **fields: Any) -> None:
    """Add to this request's audit record (written by the middleware when the response ends)."""
    request.scope.setdefault("state", {}).setdefault("audit", {}).update(
        {k: v for k, v in fields.items() if v is not None})


def current_principal(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer),
                      header_key: str | None = Depends(api_key_header)) -> Principal:
    # AuthMiddleware authenticated /api and /v1 requests before their body was read; a route outside those
    # prefixes authenticates here, from the same headers (the parameters above document them in OpenAPI)
    principal = request.scope.get(SCOPE_PRINCIPAL)
    if principal is None:
        principal = authenticate_scope(get_container(request), request.scope)
    note(request, principal=principal.id)
    return principal


def role(name: str) -> Callable[..., Principal]:
    """A dependency: the principal, who must have at least this role (403 otherwise)."""
    def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        require_role(principal, name)
        return principal
    return dependency


Reader = Depends(current_principal)
Editor = Depends(role("editor"))
Admin = Depends(role("admin"))
