"""The server's background embedding worker: chunks ingested without vectors are filled by a lower-priority child
process started with the app, reading the server's own settings; nothing is started when nothing is pending."""
from __future__ import annotations

import os
import time

from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.services.access import LOCAL_ADMIN
from conftest import make_container
from ingest.loaders import SourceDocument

DOCS = [SourceDocument(f"d{i}", f"示范市第{i}号通知", f"d{i}.txt", f"第一条 示范市第{i}号通知的内容。\n第二条 自发布之日起施行。")
        for i in range(6)]


def test_pending_vectors_are_filled_beside_the_server_at_low_priority(tmp_path):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_API__FILL_VECTORS_IN_BACKGROUND="true",
                       GOV_ASSISTANT_API__WARMUP="false")
    assert c.knowledge_bases.ingest_documents("kb", DOCS, principal=LOCAL_ADMIN, wait=False).ok
    assert c.knowledge_bases.pending_kbs() == ["kb"]
    app = create_app(c, with_ui=False)
    with TestClient(app):
        worker = app.state.background_vectors
        assert worker.running
        assert os.getpriority(os.PRIO_PROCESS, worker.proc.pid) >= os.getpriority(os.PRIO_PROCESS, 0) + 1
        settings_file = worker._settings_file
        assert settings_file.stat().st_mode & 0o777 == 0o600
        deadline = time.monotonic() + 90
        while worker.running and time.monotonic() < deadline:
            time.sleep(0.5)
        assert worker.proc.returncode == 0, (tmp_path / "data" / "run" / "vectors.log").read_text()
    info = c.knowledge_bases.info("kb", principal=LOCAL_ADMIN)
    assert info["pending_vectors"] == 0 and info["vectors"] == info["chunks"] > 0
    assert not settings_file.exists()
    # a second start finds nothing to do
    with TestClient(app):
        assert not app.state.background_vectors.running and app.state.background_vectors.proc is None


def test_the_worker_is_off_when_configured_so(tmp_path):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_API__WARMUP="false")     # the unit profile turns it off
    assert c.knowledge_bases.ingest_documents("kb", DOCS[:2], principal=LOCAL_ADMIN, wait=False).ok
    app = create_app(c, with_ui=False)
    with TestClient(app):
        assert app.state.background_vectors.proc is None
    assert c.knowledge_bases.pending_kbs() == ["kb"]
