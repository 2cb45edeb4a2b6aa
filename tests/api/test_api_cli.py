"""`gov-assistant keys | audit | serve` (typer's CliRunner, unit profile)."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assistant.cli.main import app


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("GOV_ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GOV_ASSISTANT_ADMIN_KEY", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["-p", "unit", *args], catch_exceptions=False)
    return invoke


def test_keys_create_list_revoke(run):
    r = run("keys", "create", "--name", "窗口系统", "--role", "reader", "--kb", "samples", "--department", "公安局")
    assert r.exit_code == 0
    secret = r.stdout.strip().splitlines()[-1]
    assert secret.startswith("gak_") and len(secret) > 40
    listed = json.loads(run("keys", "list", "--json").stdout)
    assert listed[0]["name"] == "窗口系统" and listed[0]["kbs"] == ["samples"] and listed[0]["departments"] == ["公安局"]
    assert "key_hash" not in listed[0] and secret not in run("keys", "list", "--json").stdout
    assert run("keys", "create", "--name", "窗口系统").exit_code == 2          # names are unique
    assert run("keys", "create", "--name", "x", "--role", "root").exit_code == 2
    assert run("keys", "revoke", "窗口系统").exit_code == 0
    assert json.loads(run("keys", "list", "--json").stdout) == []
    assert len(json.loads(run("keys", "list", "--all", "--json").stdout)) == 1
    assert run("keys", "revoke", "窗口系统").exit_code == 1


def test_audit_tail_and_export(run, tmp_path):
    from assistant.container import Container
    from assistant.settings import load_settings
    Container(load_settings("unit")).audit.record(principal="p", operation="ask", outcome="answered", kb="samples",
                                                  question="新生儿落户需要哪些材料？", sources=["c1"])
    r = run("audit", "tail", "-n", "5", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout.splitlines()[-1])["question"] == "新生儿落户需要哪些材料？"
    assert run("audit", "tail").exit_code == 0
    out = tmp_path / "audit.jsonl"
    assert run("audit", "export", "--out", str(out)).exit_code == 0
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[0])["sources"] == ["c1"]


def test_serve_explains_how_to_create_a_key(run, monkeypatch):
    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, **kw: seen.update(app=app, host=host, port=port))
    r = run("serve", "--no-ui", "--port", "8123")
    assert r.exit_code == 0
    assert "gov-assistant keys create --name admin --role admin" in r.stderr
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert "/v1/chat/completions" in seen["app"].openapi()["paths"]
    run("keys", "create", "--name", "a", "--role", "admin")
    assert "No API key" not in run("serve", "--no-ui").stderr


def test_serve_on_a_port_in_use_says_which_and_starts_nothing(run, monkeypatch):
    import socket
    started = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **kw: started.append(a))
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        r = run("serve", "--no-ui", "--port", str(port))
    assert r.exit_code == 2 and not started
    assert f"127.0.0.1:{port} (--port / server.port)" in r.stderr and "Traceback" not in r.stderr


def test_the_ports_are_checked_before_the_web_ui_process_starts():
    """`serve --workers N` starts the UI as a process of its own: its port taken, or the API's, is an error before
    anything starts (before, the UI process exited alone and /ui redirected to nothing)."""
    import socket

    from assistant.api.server import check_ports_free
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        with socket.socket() as probe:          # a port free a moment ago
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        with pytest.raises(ValueError, match=f"127.0.0.1:{taken} \\(--ui-port / server.ui_port\\)"):
            check_ports_free("127.0.0.1", (free, "--port / server.port"), (taken, "--ui-port / server.ui_port"))
    with pytest.raises(ValueError, match="same port"):
        check_ports_free("127.0.0.1", (free, "--port / server.port"), (free, "--ui-port / server.ui_port"))
    check_ports_free("127.0.0.1", (free, "--port / server.port"))
