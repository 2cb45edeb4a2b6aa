"""#14 (found by the transport campaign): Gradio's own upload route under the UI mount took files from clients
without a UI login. A login's ticket (a cookie the browser sets) is needed now, and ends with the key."""
from __future__ import annotations

from fastapi.testclient import TestClient

from assistant.api.app import create_app
from conftest import make_container
from ui.app import mount_ui
from ui.auth import Login
from ui.upload_gate import COOKIE

UPLOAD = "/ui/gradio_api/upload"


def test_gradio_uploads_need_a_live_login_ticket(tmp_path):
    c = make_container(tmp_path / "data", GOV_ASSISTANT_API__WARMUP="false")
    secret, rec = c.api_keys.create("uploader", "editor", ["kb"])
    login = Login(c, recheck_s=0.0)
    app = mount_ui(create_app(c, with_ui=False), c, login=login)
    files = {"files": ("通知.txt", "第一条 内容。".encode(), "text/plain")}
    with TestClient(app) as client:
        r = client.post(UPLOAD, files=files)
        assert r.status_code == 401 and "登录" in r.text                    # was 200: stored under /tmp/gradio
        client.cookies.set(COOKIE, "made-up")
        assert client.post(UPLOAD, files=files).status_code == 401
        client.cookies.set(COOKIE, app.state.ui_upload_tickets.issue(login.with_key(secret, "127.0.0.1")))
        ok = client.post(UPLOAD, files=files)
        assert ok.status_code == 200 and ok.json()[0].endswith("通知.txt")
        other = app.state.ui_upload_tickets.issue(login.with_key(secret, "127.0.0.1"))
        app.state.ui_upload_tickets.revoke(other)                              # a logout ends its own ticket only
        assert client.post(UPLOAD, files=files).status_code == 200
        c.api_keys.revoke(rec["id"])
        assert client.post(UPLOAD, files=files).status_code == 401
        assert client.get("/ui/").status_code == 200                           # the page itself stays public
