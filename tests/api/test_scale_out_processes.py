"""The scale-out topology for real (issue #18): PostgreSQL and a Chroma server on loopback, two API processes
(`gov-assistant serve`, as two hosts behind a load balancer would run) and an embedding worker process. What one
process does, the other sees: a job and its progress, documents, search results, an original's file and text
(on a host with a data_dir of its own), keys (a revoke holds everywhere at once), the shared rate limit, one
audit log; `serve --workers 2` starts on the same engines and
refuses to start on the embedded store."""
from __future__ import annotations

import os
import subprocess
import time

import httpx
import pytest

from assistant.settings import PROJECT_ROOT
from scale_out_engines import PY, app_env, cli, serve, start_chroma, stop_process

ADMIN = "scale-out-admin-secret-0123456789"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """PostgreSQL (a fresh database) and a Chroma server; → the environment every process of the app shares."""
    import pg_fixtures

    url = pg_fixtures.session_server().new_database()
    port, chroma = start_chroma(tmp_path_factory.mktemp("chroma"))
    data = tmp_path_factory.mktemp("app") / "data"
    yield app_env(data, url, port, GOV_ASSISTANT_ADMIN_KEY=ADMIN, GOV_ASSISTANT_API__RATE_LIMIT_PER_MINUTE="40")
    stop_process(chroma)


@pytest.fixture(scope="module")
def two_hosts(engines):
    a, pa = serve(engines)
    b, pb = serve(engines)
    yield a, b
    stop_process(pa)
    stop_process(pb)


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


def test_a_source_uploaded_on_one_host_is_read_on_a_host_with_its_own_data_dir(two_hosts, engines, tmp_path):
    """The originals are rows of the shared database: a host sharing no data_dir serves the file and text."""
    a, _ = two_hosts
    doc = "示范市人社局关于社保卡补办的通知\n\n社保卡遗失后可在线申请补办，补办的新卡邮寄到家。\n".encode("utf-8")
    assert httpx.post(a + "/api/v1/kbs", json={"name": "sources"}, headers=_h()).status_code == 201
    r = httpx.post(a + "/api/v1/kbs/sources/documents", headers=_h(),
                   files=[("files", ("social-card.txt", doc, "text/plain"))])
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 120
    while (job := httpx.get(f"{a}/api/v1/jobs/{r.json()['job_id']}", headers=_h()).json())["state"] not in (
            "done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["state"] == "done" and job["counts"] == {"added": 1}, job
    c, pc = serve({**engines, "GOV_ASSISTANT_DATA_DIR": str(tmp_path / "elsewhere")})
    try:
        (listed,) = httpx.get(c + "/api/v1/kbs/sources/documents", headers=_h()).json()
        source = httpx.get(f"{c}/api/v1/kbs/sources/documents/{listed['doc_id']}/source", headers=_h())
        assert source.status_code == 200 and source.content == doc, source.text
        text = httpx.get(f"{c}/api/v1/kbs/sources/documents/{listed['doc_id']}/text", headers=_h()).json()
        assert "在线申请补办" in text["text"] and text["original"], text
    finally:
        stop_process(pc)


def test_a_key_revoked_once_is_refused_by_every_process_and_both_are_audited(two_hosts, engines):
    import json

    a, b = two_hosts
    made = cli(engines, "keys", "create", "--name", "reader-1", "--role", "reader", "--kb", "*")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert [httpx.get(base + "/api/v1/kbs", headers=_h(key)).status_code for base in (a, b)] == [200, 200]
    assert cli(engines, "keys", "revoke", "reader-1").returncode == 0
    assert [httpx.get(base + "/api/v1/kbs", headers=_h(key)).status_code for base in (a, b)] == [401, 401]
    tail = cli(engines, "audit", "tail", "-n", "200", "--json")
    rows = [json.loads(line) for line in tail.stdout.splitlines() if line.strip()]
    key_id = json.loads(cli(engines, "keys", "list", "--all", "--json").stdout)
    rid = next(k["id"] for k in key_id if k["name"] == "reader-1")
    assert sum(1 for r in rows if r["principal"] == rid and r["status"] == 200) == 2   # one per process, one log


def test_the_rate_limit_is_shared_by_both_processes(two_hosts):
    a, b = two_hosts
    codes = [httpx.get((a, b)[i % 2] + "/api/v1/kbs", headers=_h()).status_code for i in range(60)]
    assert codes.count(429) >= 15, codes          # 40 a minute in all, not 40 per process
    assert 200 in codes


def test_serve_with_two_workers_on_the_scale_out_engines(engines):
    base, proc = serve(engines, "--workers", "2")
    try:
        r = httpx.get(base + "/api/v1/kbs", headers=_h())
        assert r.status_code in (200, 429)
    finally:
        stop_process(proc)


def test_serve_with_two_workers_gives_the_web_ui_one_process_of_its_own(engines):
    """Gradio keeps a session's queue in the process serving it: with the UI in both of 2 workers, 9 of 12 fresh
    sessions failed here (the event joined one process's queue, its stream the other's). The UI now runs in one
    process on --ui-port; /ui on the API port redirects there; every session works; it stops with serve."""
    from gradio_client import Client

    from scale_out_engines import free_port, wait_http
    ui_port = free_port()
    base, proc = serve(engines, "--workers", "2", "--ui-port", str(ui_port), ui=True)
    ui = f"http://127.0.0.1:{ui_port}"
    try:
        wait_http(ui + "/ui/", proc, "the web UI's process")
        r = httpx.get(base + "/ui/", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == ui + "/ui/"
        assert httpx.get(base + "/api/v1/kbs", headers=_h()).status_code in (200, 429)   # the API stays on port

        def session(_) -> str:
            try:
                client = Client(ui + "/ui/", verbose=False)
                (event, *_) = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
                client.predict(api_name=event)            # the page's load event (it takes no input)
                return "ok"
            except Exception as e:              # noqa: BLE001 — counted, shown on failure
                return f"{type(e).__name__}: {e}"
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(session, range(12)))
        assert outcomes == ["ok"] * 12, outcomes
    finally:
        stop_process(proc)
    with pytest.raises(httpx.ConnectError):
        httpx.get(ui + "/ui/", timeout=5)


def test_serve_with_workers_and_the_ui_port_taken_starts_nothing(engines):
    import socket

    from scale_out_engines import free_port
    port = free_port()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        r = subprocess.run([*PY, "serve", "--port", str(port), "--workers", "2", "--ui-port", str(taken)],
                           env=engines, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and f":{taken} (--ui-port / server.ui_port)" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(httpx.ConnectError):             # the API did not start either
        httpx.get(f"http://127.0.0.1:{port}/api/v1/healthz", timeout=5)


def test_serve_with_workers_refuses_the_embedded_store(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GOV_ASSISTANT_")},
           "GOV_ASSISTANT_PROFILE": "unit", "GOV_ASSISTANT_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": str(PROJECT_ROOT)}
    r = subprocess.run([*PY, "serve", "--workers", "2"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "database.url" in r.stderr and "Traceback" not in r.stderr
