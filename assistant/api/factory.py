"""`gov-assistant serve --workers N`: uvicorn starts N processes and each imports the app by name, so each builds
its own container from the settings file the parent resolved (api/server.py's options apply to all). Only the
scale-out profile may do this: SQLite files and embedded Chroma have one writer process (checked in
`check_workers`). The web UI is never one of the N: Gradio keeps a session's queue and state in the process that
serves it, and the kernel spreads a browser's connections over the N, so the UI gets one process of its own
(`python -m assistant.api.factory HOST PORT`, started by `serve`) and the N redirect /ui to it."""
from __future__ import annotations

import os
from pathlib import Path

ENV_SETTINGS = "GOV_ASSISTANT_SERVE_SETTINGS"
ENV_UI = "GOV_ASSISTANT_SERVE_UI"
ENV_UI_PORT = "GOV_ASSISTANT_SERVE_UI_PORT"      # the N API processes: /ui redirects there


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

    return create_app(Container(_settings()), with_ui=os.environ.get(ENV_UI, "1") == "1",
                      ui_port=int(os.environ.get(ENV_UI_PORT) or 0) or None)


def ui_process_args(host: str, port: int) -> list[str]:
    """The command of the web UI's one process (the settings file in ENV_SETTINGS)."""
    import sys
    return [sys.executable, "-m", "assistant.api.factory", host, str(port)]


def _serve_ui(host: str, port: int) -> None:
    import uvicorn

    from assistant.api.app import create_app
    from assistant.api.server import uvicorn_options
    from assistant.container import Container

    settings = _settings()
    uvicorn.run(create_app(Container(settings), with_ui=True), host=host, port=port, log_level="info",
                **uvicorn_options(settings))


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


if __name__ == "__main__":
    import sys
    _serve_ui(sys.argv[1], int(sys.argv[2]))
