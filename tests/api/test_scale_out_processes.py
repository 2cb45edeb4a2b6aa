"""The scale-out topology for real (issue #18): PostgreSQL and a Chroma server on loopback, two API processes
(`gov-assistant serve`, as two hosts behind a load balancer would run) and an embedding worker process. What one
process does, the other sees: a job and its progress, documents, search results, keys (a revoke holds
everywhere at once), the shared rate limit, one audit log; `serve --workers 2` starts on the same engines and
refuses to start on the embedded store."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from assistant.settings import PROJECT_ROOT

ADMIN = "scale-out-admin-secret-0123456789"
PY = [sys.executable, "-m", "assistant.cli"]
pytestmark = pytest.mark.timeout(300)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.stdout.read().decode(errors="replace")[-1500:] if proc.poll() is not None else ""
            raise RuntimeError(f"{what} did not come up at {url}: {out}")
        time.sleep(0.3)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """PostgreSQL (a fresh database) and a Chroma server; → the environment every process of the app shares."""
    import pg_fixtures

    url = pg_fixtures.session_server().new_database()
    folder = tmp_path_factory.mktemp("chroma")
    port = _port()
    chroma = subprocess.Popen([str(Path(sys.executable).parent / "chroma"), "run", "--path", str(folder), "--host",
                               "127.0.0.1", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    _wait(f"http://127.0.0.1:{port}/api/v2/heartbeat", chroma, "chroma run")
    data = tmp_path_factory.mktemp("app") / "data"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GOV_ASSISTANT_")},
           "GOV_ASSISTANT_PROFILE": "unit", "GOV_ASSISTANT_DATA_DIR": str(data),
           "GOV_ASSISTANT_DATABASE__URL": url, "GOV_ASSISTANT_VECTORSTORE__MODE": "http",
           "GOV_ASSISTANT_VECTORSTORE__HTTP__PORT": str(port), "GOV_ASSISTANT_ADMIN_KEY": ADMIN,
           "GOV_ASSISTANT_API__RATE_LIMIT_PER_MINUTE": "40", "PYTHONPATH": str(PROJECT_ROOT)}
    yield env
    _stop(chroma)


def _serve(env: dict, *args: str) -> tuple[str, subprocess.Popen]:
    port = _port()
    proc = subprocess.Popen([*PY, "serve", "--no-ui", "--port", str(port), *args], env=env, cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    _wait(base + "/api/v1/healthz", proc, "gov-assistant serve")
    return base, proc


@pytest.fixture(scope="module")
def two_hosts(engines):
    a, pa = _serve(engines)
    b, pb = _serve(engines)
    yield a, b
    _stop(pa)
    _stop(pb)


def _h(key: str = ADMIN) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_what_one_process_does_the_other_sees(two_hosts, engines, tmp_path):
    a, b = two_hosts
    assert httpx.post(a + "/api/v1/kbs", json={"name": "shared", "description": "两台主机"}, headers=_h()).status_code == 201
    assert "shared" in [k["name"] for k in httpx.get(b + "/api/v1/kbs", headers=_h()).json()]
    doc = "上海市数据局关于公共数据开放的通知\n\n各区数据局：公共数据开放清单每季度更新一次，由市大数据中心负责发布。\n"
    r = httpx.post(a + "/api/v1/kbs/shared/documents", headers=_h(),
                   files=[("files", ("open-data.txt", doc.encode("utf-8"), "text/plain"))])
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 120
    while (job := httpx.get(f"{b}/api/v1/jobs/{job_id}", headers=_h()).json())["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    assert job["state"] == "done" and job["counts"] == {"added": 1}, job
    # the text stage is searchable from the other process at once (BM25 in PostgreSQL)
    hits = httpx.post(b + "/api/v1/search", json={"kb": "shared", "query": "公共数据开放清单多久更新", "mode": "bm25"},
                      headers=_h()).json()
    assert hits["hits"] and "每季度" in hits["hits"][0]["text"], hits
    # an embedding worker process fills the vectors into the Chroma server; then dense search works from a and b
    worker = subprocess.run([*PY, "worker", "--once"], env=engines, cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert worker.returncode == 0, worker.stderr[-1500:]
    for base in (a, b):
        dense = httpx.post(base + "/api/v1/search", json={"kb": "shared", "query": "公共数据开放清单", "mode": "dense"},
                           headers=_h()).json()
        assert dense["hits"], dense
    check = httpx.get(b + "/api/v1/kbs/shared/check", headers=_h()).json()
    assert check["consistent"], check


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PY, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


def test_a_key_revoked_once_is_refused_by_every_process_and_both_are_audited(two_hosts, engines):
    import json

    a, b = two_hosts
    made = _cli(engines, "keys", "create", "--name", "reader-1", "--role", "reader", "--kb", "*")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert [httpx.get(base + "/api/v1/kbs", headers=_h(key)).status_code for base in (a, b)] == [200, 200]
    assert _cli(engines, "keys", "revoke", "reader-1").returncode == 0
    assert [httpx.get(base + "/api/v1/kbs", headers=_h(key)).status_code for base in (a, b)] == [401, 401]
    tail = _cli(engines, "audit", "tail", "-n", "200", "--json")
    rows = [json.loads(line) for line in tail.stdout.splitlines() if line.strip()]
    key_id = json.loads(_cli(engines, "keys", "list", "--all", "--json").stdout)
    rid = next(k["id"] for k in key_id if k["name"] == "reader-1")
    assert sum(1 for r in rows if r["principal"] == rid and r["status"] == 200) == 2   # one per process, one log


def test_the_rate_limit_is_shared_by_both_processes(two_hosts):
    a, b = two_hosts
    codes = [httpx.get((a, b)[i % 2] + "/api/v1/kbs", headers=_h()).status_code for i in range(60)]
    assert codes.count(429) >= 15, codes          # 40 a minute in all, not 40 per process
    assert 200 in codes


def test_serve_with_two_workers_on_the_scale_out_engines(engines):
    base, proc = _serve(engines, "--workers", "2")
    try:
        r = httpx.get(base + "/api/v1/kbs", headers=_h())
        assert r.status_code in (200, 429)
    finally:
        _stop(proc)


def test_serve_with_workers_refuses_the_embedded_store(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GOV_ASSISTANT_")},
           "GOV_ASSISTANT_PROFILE": "unit", "GOV_ASSISTANT_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": str(PROJECT_ROOT)}
    r = subprocess.run([*PY, "serve", "--workers", "2"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "database.url" in r.stderr and "Traceback" not in r.stderr
