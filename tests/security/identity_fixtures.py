"""Fixtures for the identity and session tests: a unit-profile container (scripted LLM, hashing embedder) with two
small knowledge bases, `open` and `closed`, its API app, and helpers to make keys and drive the UI's handlers
without a browser."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.container import Container
from assistant.services.access import LOCAL_ADMIN, Principal
from assistant.settings import PROJECT_ROOT, load_settings
from ingest.loaders import SourceDocument

MODELS_DIR = Path(os.environ.get("GOV_ASSISTANT_MODELS_DIR", PROJECT_ROOT / "data" / "models"))
OPEN_TEXT = "示范市公共数据开放办法\n第一条 公共数据开放由示范市数据局统筹，开放目录每年更新一次。\n"
CLOSED_TEXT = "示范市北斗计划内部方案\n第一条 北斗计划预算为八百万元，由示范市财政局拨付。\n"
QUESTION = "公共数据开放目录多久更新一次？"


def make_container(data_dir: Path, **env: str) -> Container:
    environ = {"GOV_ASSISTANT_DATA_DIR": str(data_dir), "GOV_ASSISTANT_MODELS_DIR": str(MODELS_DIR),
               "GOV_ASSISTANT_API__RATE_LIMIT_PER_MINUTE": "0", **env}
    return Container(load_settings("unit", environ=environ))


def document(doc_id: str, title: str, text: str) -> SourceDocument:
    return SourceDocument(doc_id=doc_id, title=title, source=f"{doc_id}.md", text=text,
                          metadata={"status": "现行有效", "doc_type": "办法", "agency": "示范市数据局"})


def fill(c: Container) -> None:
    assert c.knowledge_bases.ingest_documents("open", [document("open-1", "示范市公共数据开放办法", OPEN_TEXT)],
                                              principal=LOCAL_ADMIN).ok
    assert c.knowledge_bases.ingest_documents("closed", [document("closed-1", "示范市北斗计划内部方案",
                                                                  CLOSED_TEXT)], principal=LOCAL_ADMIN).ok


@dataclass
class Api:
    container: Container
    client: TestClient

    def key(self, name: str, role: str = "reader", kbs: tuple[str, ...] = ("open",)) -> tuple[str, dict]:
        """A new key (secret, record); any active key of that name is revoked first."""
        self.container.api_keys.revoke(name)
        return self.container.api_keys.create(name, role, list(kbs))

    @staticmethod
    def h(secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    def wait_job(self, job_id: str, secret: str, timeout_s: float = 30) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.client.get(f"/api/v1/jobs/{job_id}", headers=self.h(secret)).json()
            if job.get("state") in ("done", "failed") or time.monotonic() > deadline:
                return job
            time.sleep(0.05)


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Api:
    from assistant.api.app import create_app
    c = make_container(tmp_path_factory.mktemp("identity") / "data")
    fill(c)
    with TestClient(create_app(c, with_ui=False)) as client:
        yield Api(c, client)


def principal_of(c: Container, secret: str) -> Principal:
    return c.api_keys.authenticate(secret)


class Clock:
    """time.monotonic for Login, moved by hand (no sleeping through the recheck interval)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class UI:
    """The UI's registered handlers, called as gradio would (the principal from the session state first)."""
    blocks: object
    login: object
    clock: Clock

    def handlers(self) -> dict[str, object]:
        """Registered handlers that act as the session principal, by audit operation (ui.<page>.<handler>)."""
        return {getattr(f.fn, "ui_operation"): f for f in self.blocks.fns.values()
                if getattr(f.fn, "ui_session", False)}

    def call(self, operation: str, principal, *args):
        fn = self.handlers()[operation].fn
        out = fn(principal, *args)
        return list(out) if hasattr(out, "__next__") else out

    def log_in(self, secret: str) -> Principal:
        do_key = next(f for f in self.blocks.fns.values() if f.name == "do_key")
        principal = do_key.fn(secret, None)[0]
        assert isinstance(principal, Principal), principal
        return principal


def build(container: Container, recheck_s: float = 10.0) -> UI:
    from ui.app import build_ui
    from ui.auth import Login
    clock = Clock()
    login = Login(container, recheck_s=recheck_s, clock=clock)
    return UI(build_ui(container, login=login), login, clock)


def refused(out) -> bool:
    """What a refused handler returns: every output skipped (gr.skip()), nothing rendered."""
    import gradio as gr
    steps = out if isinstance(out, list) else [out]
    values = [v for step in steps for v in (step if isinstance(step, tuple) else (step,))]
    return bool(values) and all(v == gr.skip() for v in values)
