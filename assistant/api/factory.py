"""`gov-assistant serve --workers N`: uvicorn starts N processes and each imports the app by name, so each builds
its own container from the settings file the parent resolved (api/server.py's options apply to all). Only the
scale-out profile may do this: SQLite files and embedded Chroma have one writer process (checked in
`check_workers`)."""
from __future__ import annotations

import os
from pathlib import Path

ENV_SETTINGS = "GOV_ASSISTANT_SERVE_SETTINGS"
ENV_UI = "GOV_ASSISTANT_SERVE_UI"


def check_workers(settings, workers: int) -> None:
    if workers <= 1:
        return
    missing = [what for what, ok in (("database.url (PostgreSQL)", bool(settings.database.url)),
                                     ("vectorstore.mode: http (a Chroma server)", settings.vectorstore.mode == "http"))
               if not ok]
    if missing:
        raise ValueError(f"--workers {workers} needs the scale-out engines: set {' and '.join(missing)} "
                         "(configs/scale-out.yaml); the embedded SQLite + Chroma store has one server process")


def _settings():
    from assistant.settings import load_settings
    return load_settings([], Path(os.environ[ENV_SETTINGS]))


def app():
    """The ASGI app of one worker process (uvicorn factory)."""
    from assistant.api.app import create_app
    from assistant.container import Container

    return create_app(Container(_settings()), with_ui=os.environ.get(ENV_UI, "1") == "1")


def __getattr__(name: str):
    # uvicorn imports "assistant.api.factory:GuardedProtocol" in each worker: server.py's header guard with the
    # limits of the settings file (built on first use, so importing this module needs no settings)
    if name == "GuardedProtocol":
        from assistant.api import redact
        from assistant.api.server import http_protocol

        api = _settings().api
        redact.install()
        proto = http_protocol(api.max_header_kb * 1024, api.header_timeout_s)
        globals()[name] = proto
        return proto
    raise AttributeError(name)
