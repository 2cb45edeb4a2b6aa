"""API fixtures: a unit-profile container (scripted LLM, hashing embedder) with two knowledge bases —
`samples` (the project's sample documents) and `secret` (one document no reader key may see) — and keys for
each role. The API app is built by the same factory `gov-assistant serve` uses."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.container import Container
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import PROJECT_ROOT, load_settings
from ingest.loaders import SourceDocument

MODELS_DIR = Path(os.environ.get("GOV_ASSISTANT_MODELS_DIR", PROJECT_ROOT / "data" / "models"))
SECRET_MARKERS = ("三千万元", "王五", "数据中心建设")   # only in the secret document, never in a question
SECRET_TEXT = ("示范市星河计划实施方案\n"
               "第一条 星河计划专项经费为三千万元，由示范市财政局拨付，用于星河计划数据中心建设。\n"
               "第二条 星河计划的联络人为王五，负责星河计划的日常协调工作。\n")
SECRET_QUESTION = "星河计划专项经费是多少？联络人是谁？"


def make_container(data_dir: Path, profile: str = "unit", **env: str) -> Container:
    environ = {"GOV_ASSISTANT_DATA_DIR": str(data_dir), "GOV_ASSISTANT_MODELS_DIR": str(MODELS_DIR), **env}
    return Container(load_settings(profile, environ=environ))


def secret_document() -> SourceDocument:
    return SourceDocument(doc_id="xinghe", title="示范市星河计划实施方案", source="secret/xinghe.md", text=SECRET_TEXT,
                          metadata={"status": "现行有效", "doc_type": "实施方案", "agency": "示范市财政局"})


def build_knowledge_bases(c: Container) -> None:
    from assistant.demo import sample_documents
    assert c.knowledge_bases.ingest_documents("samples", sample_documents(), principal=LOCAL_ADMIN).ok
    assert c.knowledge_bases.ingest_documents("secret", [secret_document()], principal=LOCAL_ADMIN).ok


@dataclass
class Api:
    container: Container
    client: TestClient
    keys: dict[str, str]

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def wait_job(self, job_id: str, who: str = "admin", timeout_s: float = 60) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.client.get(f"/api/v1/jobs/{job_id}", headers=self.h(who)).json()
            if job["state"] in ("done", "failed") or time.monotonic() > deadline:
                return job
            time.sleep(0.05)


def make_keys(c: Container) -> dict[str, str]:
    store = c.api_keys
    return {"admin": store.create("admin", "admin", ["*"])[0],
            "editor": store.create("editor", "editor", ["samples", "drafts"])[0],
            "reader": store.create("reader", "reader", ["samples"], ["示范市公安局"])[0],
            "outsider": store.create("outsider", "reader", [])[0]}


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Api:
    # small limits so the size checks are testable; no rate limit (tested on its own container)
    c = make_container(tmp_path_factory.mktemp("api") / "data", GOV_ASSISTANT_API__RATE_LIMIT_PER_MINUTE="0",
                       GOV_ASSISTANT_API__MAX_UPLOAD_MB="1", GOV_ASSISTANT_API__MAX_FILES_PER_UPLOAD="3")
    build_knowledge_bases(c)
    keys = make_keys(c)
    with TestClient(create_app(c, with_ui=False)) as client:
        yield Api(c, client, keys)
