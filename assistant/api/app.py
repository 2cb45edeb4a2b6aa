"""The app factory: one FastAPI app over the container's services — every router module in
assistant/api/routers, error handlers, metrics + audit, authentication before the body, body limits, optional
CORS, and the Gradio UI at /ui when the `ui` package is importable."""
from __future__ import annotations

import importlib
import logging
import os
import pkgutil
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from assistant.api import routers
from assistant.api.errors import install_error_handlers
from assistant.api.metrics import Metrics
from assistant.api.body_guard import BodyGuardMiddleware, BodyLimits
from assistant.api.background_vectors import BackgroundVectors
from assistant.api.middleware import AuthMiddleware, ObservabilityMiddleware, RouteTable
from assistant.container import Container
from assistant.services.auth import ENV_ADMIN_KEY
from assistant.services.health import readiness

log = logging.getLogger("assistant.api")

DESCRIPTION = """政务大模型助手 API: cited answers over government knowledge bases from a self-hosted LLM.

Authenticate with an API key (`gov-assistant keys create`): `Authorization: Bearer <key>` or `X-API-Key: <key>`.
Every generated answer carries `ai_generated: true` (人工智能生成合成内容标识).
`/v1/chat/completions` is OpenAI-compatible: `model` is a knowledge base name, or `llm` for the plain model."""


# the order of the sections in /docs; any other module of the package follows, alphabetically
DOCS_ORDER = ("qa", "openai_compat", "knowledge_bases", "documents", "jobs", "office", "feedback", "health")


def _router_modules() -> list:
    # every module of the routers package: a feature adds its router file without touching this factory
    names = sorted((m.name for m in pkgutil.iter_modules(routers.__path__)),
                   key=lambda n: (DOCS_ORDER.index(n) if n in DOCS_ORDER else len(DOCS_ORDER), n))
    return [importlib.import_module(f"{routers.__name__}.{name}") for name in names]


def create_app(container: Container, with_ui: bool = True, ui_port: int | None = None) -> FastAPI:
    """The API, with the web UI at /ui (with_ui), or with /ui redirected to the UI's own process on ui_port (`serve
    --workers N`: Gradio keeps each session's queue and state in the process serving it, so the UI runs in one)."""
    api = container.settings.api

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if api.warmup:   # uvicorn binds its socket only after startup: the first request meets loaded models
            checks = await run_in_threadpool(readiness, container)
            if not checks["ready"]:
                log.warning("not ready: %s", {k: v.get("error") for k, v in checks["checks"].items() if not v["ok"]})
        vectors = BackgroundVectors(container)
        app.state.background_vectors = vectors
        if api.fill_vectors_in_background:
            await run_in_threadpool(vectors.start)
        try:
            yield
        finally:
            vectors.stop()

    app = FastAPI(title="政务大模型助手 API", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.container = container
    app.state.metrics = Metrics()
    container.api_keys.seed_admin(os.environ.get(ENV_ADMIN_KEY))
    install_error_handlers(app)
    for module in _router_modules():
        app.include_router(module.router)

    # added innermost first: the audit/metrics layer sees everything, including refused keys and bodies; the key
    # is checked before the body guard lets a byte of the body in, and CORS headers reach browsers on a 401 too
    routes = RouteTable(app.router)
    app.add_middleware(BodyGuardMiddleware, limits=BodyLimits.from_settings(api), routes=routes)
    app.add_middleware(AuthMiddleware, container=container, routes=routes)
    if api.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware
        app.add_middleware(CORSMiddleware, allow_origins=api.cors_origins, allow_methods=["*"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.metrics, audit=container.audit)

    if with_ui:
        try:
            from ui.app import mount_ui
        except ImportError:
            mount_ui = None
            log.warning("the web UI (ui.app) is not importable: serving the API only")
        if mount_ui is not None:
            ldap = getattr(container, "ldap", None)   # identity.ldap.enabled: the 用户名密码登录 tab binds against it
            mount_ui(app, container, principal_resolver=ldap.authenticate if ldap is not None else None)
    elif ui_port:
        _redirect_ui(app, ui_port)
    return app


def _redirect_ui(app: FastAPI, port: int) -> None:
    @app.get("/ui", include_in_schema=False)
    @app.get("/ui/{rest:path}", include_in_schema=False)
    def ui_elsewhere(request: Request, rest: str = "") -> RedirectResponse:
        url = request.url.replace(port=port, path="/ui/" + rest)
        return RedirectResponse(str(url), status_code=307)
