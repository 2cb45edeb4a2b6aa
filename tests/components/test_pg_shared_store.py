"""The write lock and the originals shared through PostgreSQL (issue #18, scale-out profile) on a real server:
a second process waits for a knowledge base's lock (on_wait called once) and gets it when the holder is
killed with SIGKILL; originals written by one container are read by another with its own data_dir (through
the API's source route too); release removes an unreferenced blob and keeps a referenced one."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.components.store import originals as originals_module
from assistant.components.store.locks import PgWriteLocks, WriteLocks, lock_key
from assistant.components.store.originals import Originals, PgOriginals
from assistant.services.access import LOCAL_ADMIN
from assistant.settings import PROJECT_ROOT
from conftest import make_container

HOLDER = """
import sys, time
from assistant.components.store.locks import PgWriteLocks
locks = PgWriteLocks(sys.argv[1], sys.argv[2])
with locks.hold(sys.argv[3]):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture(scope="module")
def pg():
    import pg_fixtures
    return pg_fixtures.session_server()


def _holder(url: str, kb: str, kind: str = "write") -> subprocess.Popen:
    """Another process holding the knowledge base's lock (it says so on stdout)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url, kind, kb], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=PROJECT_ROOT)
    assert proc.stdout.readline().strip() == "held", proc.poll()
    return proc


def _lock_holders(pg, url: str, key: int) -> int:
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        hi, lo = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
        return conn.execute("SELECT count(*) FROM pg_locks WHERE locktype='advisory' AND granted"
                            " AND classid=%s::bigint::oid AND objid=%s::bigint::oid", (hi, lo)).fetchone()[0]


def test_the_store_takes_postgres_locks_and_blobs_only_with_a_postgres_catalog(tmp_path, pg):
    lite = make_container(tmp_path / "lite", GOV_ASSISTANT_DATABASE__URL="").store
    assert type(lite.locks) is WriteLocks and type(lite.originals) is Originals
    post = make_container(tmp_path / "pg", GOV_ASSISTANT_DATABASE__URL=pg.new_database()).store
    assert isinstance(post.locks, PgWriteLocks) and isinstance(post.embed_locks, PgWriteLocks)
    assert (post.locks.kind, post.embed_locks.kind) == ("write", "embed")
    assert isinstance(post.originals, PgOriginals)
    assert lock_key("write", "kb") == lock_key("write", "kb") != lock_key("embed", "kb")
    assert lock_key("write", "kb") != lock_key("write", "kc")


def test_a_second_process_waits_for_the_lock_and_gets_it_when_the_holder_is_killed(pg):
    url = pg.new_database()
    holder = _holder(url, "shared")
    try:
        assert _lock_holders(pg, url, lock_key("write", "shared")) == 1
        locks, waits, got = PgWriteLocks(url, "write"), [], threading.Event()
        # other knowledge bases, and the embed lock of this one, are free meanwhile
        embed = PgWriteLocks(url, "embed")
        with locks.hold("other"), embed.hold("shared", on_wait=lambda: waits.append("embed")):
            pass
        assert waits == []

        def second():
            with locks.hold("shared", on_wait=lambda: waits.append(time.monotonic())):
                with locks.hold("shared", on_wait=lambda: waits.append("re-entered")):   # re-entrant
                    got.set()

        t = threading.Thread(target=second, daemon=True)
        t.start()
        assert not got.wait(1.5)                     # it waits while the other process holds the lock
        assert len(waits) == 1                       # on_wait, once
        killed_at = time.monotonic()
        os.kill(holder.pid, signal.SIGKILL)          # the holder's session ends: PostgreSQL lets the lock go
        assert got.wait(15), "the lock of a killed holder was not released"
        t.join(5)
        assert waits == [waits[0]] and time.monotonic() - killed_at < 15
        assert _lock_holders(pg, url, lock_key("write", "shared")) == 0   # released; its connection kept
        with locks.hold("shared", on_wait=lambda: waits.append("again")):
            pass
        assert len(waits) == 1
        locks.close()
    finally:
        holder.kill()
        holder.wait()


def test_a_writer_process_waits_for_an_ingest_holding_the_lock(tmp_path, pg):
    """Through the store: a container's ingest into a knowledge base another process holds waits for it."""
    url = pg.new_database()
    c = make_container(tmp_path / "data", GOV_ASSISTANT_DATABASE__URL=url)
    holder = _holder(url, "kb")
    try:
        seen, done = [], threading.Event()
        f = tmp_path / "a.txt"
        f.write_text("示范市关于数据共享的通知\n各区：请于6月底前完成数据目录编制工作。\n", encoding="utf-8")

        def ingest():
            report = c.knowledge_bases.ingest_paths("kb", [f], principal=LOCAL_ADMIN, wait=False)
            seen.append(report.counts)
            done.set()
        t = threading.Thread(target=ingest, daemon=True)
        t.start()
        assert not done.wait(2) and seen == []
        holder.send_signal(signal.SIGKILL)
        assert done.wait(30) and seen == [{"added": 1}]
    finally:
        holder.kill()
        holder.wait()


def _blob_rows(url: str) -> dict[str, int]:
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        return {sha: n for sha, n in conn.execute(
            "SELECT o.sha256, count(p.n) FROM originals o LEFT JOIN original_parts p USING (sha256)"
            " GROUP BY 1")}


def test_originals_written_by_one_container_are_read_by_another_with_its_own_data_dir(tmp_path, pg,
                                                                                        monkeypatch):
    monkeypatch.setattr(originals_module, "PART_BYTES", 1000)     # several parts for a small file
    url = pg.new_database()
    a = make_container(tmp_path / "a", GOV_ASSISTANT_DATABASE__URL=url)
    b = make_container(tmp_path / "b", GOV_ASSISTANT_DATABASE__URL=url)
    f = tmp_path / "notice.txt"
    body = "".join(f"第{i}条 示范市各区应当于每季度末完成第{i}类公共数据目录的更新和发布工作。\n"
                   for i in range(1, 80))
    f.write_text("示范市关于公共数据目录更新的通知\n" + body, encoding="utf-8")
    assert len(f.read_bytes()) > 5000
    assert a.knowledge_bases.ingest_paths("kb", [f], principal=LOCAL_ADMIN).ok
    doc = a.knowledge_bases.documents("kb", principal=LOCAL_ADMIN)[0]
    origin = doc["origin"]
    rows = _blob_rows(url)
    assert rows[origin["file"]] == -(-len(f.read_bytes()) // 1000) and origin["text"] in rows

    assert not (tmp_path / "b" / "originals").exists()
    passage = b.originals.passage("kb", doc["doc_id"], principal=LOCAL_ADMIN)
    assert passage["text"].startswith("示范市关于公共数据目录更新的通知") and passage["original"]
    assert not b.store.originals._final(origin["file"]).exists()     # the text view fetched the text only
    got = b.originals.original("kb", doc["doc_id"], principal=LOCAL_ADMIN)
    assert got.path.read_bytes() == f.read_bytes() and got.size == len(f.read_bytes())
    assert str(got.path).startswith(str(tmp_path / "b"))            # b's cache, not a's file

    # the API's source route on the other container: the bytes as ingested
    key = b.api_keys.create("admin", "admin", ["*"])[0]
    with TestClient(create_app(b, with_ui=False)) as client:
        r = client.get(f"/api/v1/kbs/kb/documents/{doc['doc_id']}/source",
                       headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.content == f.read_bytes(), r.text

    # a cached copy that went bad (another size) is fetched again
    got.path.write_bytes(b"x")
    assert b.store.originals.path(origin["file"]).read_bytes() == f.read_bytes()
    assert not list((tmp_path / "a" / "originals").rglob(".staged-*"))
    assert not list((tmp_path / "b" / "originals").rglob(".fetched-*"))


def test_release_removes_an_unreferenced_blob_and_keeps_a_referenced_one(tmp_path, pg):
    url = pg.new_database()
    a = make_container(tmp_path / "a", GOV_ASSISTANT_DATABASE__URL=url)
    b = make_container(tmp_path / "b", GOV_ASSISTANT_DATABASE__URL=url)
    f = tmp_path / "a.txt"
    f.write_text("示范市关于开展数据共享工作的通知\n各区：请于6月底前完成数据目录编制工作。\n",
                 encoding="utf-8")
    for kb in ("one", "two"):               # the same file in two knowledge bases: one blob
        assert a.knowledge_bases.ingest_paths(kb, [f], principal=LOCAL_ADMIN).ok
    origin = a.knowledge_bases.documents("one", principal=LOCAL_ADMIN)[0]["origin"]
    assert a.knowledge_bases.documents("two", principal=LOCAL_ADMIN)[0]["origin"]["file"] == origin["file"]
    assert {origin["file"], origin["text"]} <= set(_blob_rows(url))
    cached = b.store.originals.path(origin["file"])     # b reads (and caches) it
    assert cached and cached.read_bytes() == f.read_bytes()

    # released by b while a's other document still names it: kept
    one = b.knowledge_bases.documents("one", principal=LOCAL_ADMIN)[0]["doc_id"]
    b.knowledge_bases.delete_document("one", one, principal=LOCAL_ADMIN)
    assert {origin["file"], origin["text"]} <= set(_blob_rows(url))
    assert a.store.originals.path(origin["file"]).read_bytes() == f.read_bytes()

    # the last user gone (deleted through a): gone from the database, and from b's cache at b's next read
    a.knowledge_bases.delete("two", principal=LOCAL_ADMIN)
    assert _blob_rows(url) == {}
    assert b.store.originals.path(origin["file"]) is None and not cached.exists()
    assert b.store.originals.read_text(origin["text"]) is None

    # a release that finds the blob in use (a committed document names it) keeps it, whatever the caller says
    staged = a.store.originals.stage_text("示范市")
    a.store.originals.publish([staged])
    assert a.store.originals.release([staged.sha256], lambda sha: True) == 0
    assert staged.sha256 in _blob_rows(url)
    assert a.store.originals.release([staged.sha256], lambda sha: False) == 1 and _blob_rows(url) == {}


def test_originals_kept_as_files_before_0005_are_taken_into_the_table(tmp_path, pg):
    """A deployment that ingested before Alembic 0005 has its blobs as files on the ingesting host: a read
    there takes a named one into the table, `db import-originals` all of them; an unnamed file goes."""
    import psycopg
    url = pg.new_database()
    a = make_container(tmp_path / "a", GOV_ASSISTANT_DATABASE__URL=url)
    b = make_container(tmp_path / "b", GOV_ASSISTANT_DATABASE__URL=url)
    f = tmp_path / "a.txt"
    f.write_text("示范市关于开展数据共享工作的通知\n各区：请于6月底前完成数据目录编制工作。\n", encoding="utf-8")
    assert a.knowledge_bases.ingest_paths("kb", [f], principal=LOCAL_ADMIN).ok
    origin = a.knowledge_bases.documents("kb", principal=LOCAL_ADMIN)[0]["origin"]

    def forget():     # as before 0005: files on a's disk, no rows
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM originals")
    forget()
    assert b.store.originals.path(origin["file"]) is None and not b.store.originals.exists(origin["file"])
    assert a.store.originals.path(origin["file"]).read_bytes() == f.read_bytes()      # taken in on read
    assert b.store.originals.path(origin["file"]).read_bytes() == f.read_bytes()

    forget()
    stale = a.store.originals.stage_text("没有文件使用的内容")
    a.store.originals.publish([stale])
    forget()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GOV_ASSISTANT_")},
           "PYTHONPATH": str(PROJECT_ROOT), "GOV_ASSISTANT_PROFILE": "unit",
           "GOV_ASSISTANT_DATA_DIR": str(tmp_path / "a"), "GOV_ASSISTANT_DATABASE__URL": url}
    run = subprocess.run([sys.executable, "-m", "assistant.cli", "db", "import-originals"], env=env,
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-1500:]
    assert "2 originals taken into the database, 1 files" in run.stdout, run.stdout
    assert set(_blob_rows(url)) == {origin["file"], origin["text"]}
    assert not a.store.originals._final(stale.sha256).exists()
    assert b.store.originals.read_text(origin["text"]).startswith("示范市关于开展数据共享工作的通知")


def test_a_replicas_cache_of_originals_is_bounded_least_recently_read_first(tmp_path, pg):
    """database.originals_cache_mb: b's local copies beyond the bound go, oldest read first; a copy read within
    the grace period stays (a request may be about to open it); a trimmed copy is fetched again when read."""
    import os
    import time

    url = pg.new_database()
    a = make_container(tmp_path / "a", GOV_ASSISTANT_DATABASE__URL=url)
    b = make_container(tmp_path / "b", GOV_ASSISTANT_DATABASE__URL=url, GOV_ASSISTANT_DATABASE__ORIGINALS_CACHE_MB="0")
    assert b.store.originals.cache_bytes == 0 and a.store.originals.cache_bytes == 1024 << 20
    shas = []
    for i in range(3):
        staged = a.store.originals.stage_text(f"示范市第{i}号通知" * 100)
        a.store.originals.publish([staged])
        shas.append(staged.sha256)
    paths = [b.store.originals.path(sha) for sha in shas]
    assert all(p and p.exists() for p in paths)       # just read: inside the grace period, none trimmed
    old = time.time() - 3600
    for n, p in enumerate(paths):                     # read an hour ago, the first longest ago
        os.utime(p, (old + n, old + n))
    b.store.originals.cache_bytes = paths[0].stat().st_size * 2
    assert b.store.originals.trim_cache() == 1
    assert [p.exists() for p in paths] == [False, True, True]
    assert b.store.originals.path(shas[0]).read_text(encoding="utf-8").startswith("示范市第0号通知")   # fetched again
    assert not paths[1].exists() and paths[2].exists()   # that fetch trimmed the oldest read left, the 2nd
    b.store.originals.cache_bytes = None                                      # unbounded: nothing trimmed
    os.utime(paths[2], (old, old))
    assert b.store.originals.trim_cache() == 0 and paths[2].exists()
