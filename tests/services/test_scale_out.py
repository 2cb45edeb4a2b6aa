"""Several processes on one PostgreSQL (issue #18): jobs readable from any replica, a restarting replica leaves
another's running job alone, embedding workers split the backlog with FOR UPDATE SKIP LOCKED and a dead
worker's batch goes back to the others."""
from __future__ import annotations

import threading
import time

import pytest

from assistant.components.store.catalog import Catalog, ChunkRecord
from assistant.services.access import LOCAL_ADMIN
from assistant.services.jobs import JobManager
from conftest import make_container


@pytest.fixture(scope="module")
def pg():
    import pg_fixtures
    return pg_fixtures.session_server()


class _Report:
    def to_dict(self):
        return {"results": [{"status": "added", "doc_id": "d"}]}


def test_a_job_is_seen_from_another_replica_with_its_progress(pg):
    url = pg.new_database()
    a, b = JobManager(path=url), JobManager(path=url)
    release = threading.Event()

    def work(progress):
        progress("parse", 1, 3, "a.txt")
        release.wait(10)
        return _Report()

    job = a.submit("upload", "kb", LOCAL_ADMIN, work)
    deadline = time.monotonic() + 10
    while (seen := b.get(job.id)) is None or seen.progress["phase"] != "parse":
        assert time.monotonic() < deadline, "replica b never saw the job's progress"
        time.sleep(0.1)
    assert seen.state == "running" and seen.owner == LOCAL_ADMIN.id
    JobManager(path=url)                     # a third replica starting: a fresh running job is not "interrupted"
    assert b.get(job.id).state == "running"
    assert [j.id for j in b.list(LOCAL_ADMIN.id)] == [job.id] and b.list("k_other") == []
    release.set()
    a.wait(job.id)
    done = b.get(job.id)
    assert done.state == "done" and done.counts == {"added": 1}


def test_a_job_whose_replica_died_is_reported_interrupted(pg, monkeypatch):
    import assistant.services.jobs as jobs

    url = pg.new_database()
    a = JobManager(path=url)
    job = a.submit("upload", "kb", LOCAL_ADMIN, lambda progress: threading.Event().wait(3) and None)
    time.sleep(0.3)
    monkeypatch.setattr(jobs, "STALE_S", 0.1)     # its replica saved nothing for longer than STALE_S
    b = JobManager(path=url)
    assert b.get(job.id).state == "failed" and "interrupted" in b.get(job.id).error


def _commit(catalog: Catalog, kb: str, n: int) -> None:
    for i in range(n):
        doc = f"d{i}"
        catalog.mark_pending(kb, doc, f"h{i}", doc, doc, {"sensitivity": "内部"})
        catalog.stage_chunks(kb, doc, [ChunkRecord(f"{doc}-{j}", doc, j, f"文本 {i} {j}", ["文本", str(i)],
                                                   {"sensitivity": "内部"}) for j in range(5)])
        catalog.commit_document(kb, doc, f"h{i}", doc, doc, {"sensitivity": "内部"})


def test_workers_claim_disjoint_batches_and_a_dead_workers_batch_returns(pg):
    url = pg.new_database()
    first, second = Catalog(url), Catalog(url)
    first.create_kb("kb", "hash")
    _commit(first, "kb", 4)                      # 20 chunks without vectors
    with first.claim_unembedded("kb", 8) as mine:
        with second.claim_unembedded("kb", 100) as theirs:
            assert len(mine) == 8 and len(theirs) == 12
            assert not {r["chunk_id"] for r in mine} & {r["chunk_id"] for r in theirs}
            second.set_embedded("kb", [r["chunk_id"] for r in theirs])
    with pytest.raises(RuntimeError):            # a worker dies mid-batch: its claim rolls back
        with first.claim_unembedded("kb", 8) as batch:
            assert len(batch) == 8
            first.set_embedded("kb", [r["chunk_id"] for r in batch])
            raise RuntimeError("killed")
    assert first.vector_counts("kb") == (20, 8)
    with second.claim_unembedded("kb", 100) as rest:
        assert len(rest) == 8


def test_two_worker_containers_fill_every_vector_once(tmp_path, pg):
    """Two worker 'processes' (containers with their own connections) against one catalog: all vectors are
    written, none is claimed twice, the KB's check is clean afterwards."""
    url = pg.new_database()
    env = {"GOV_ASSISTANT_DATABASE__URL": url, "GOV_ASSISTANT_INGEST__WRITE_BATCH": "4"}
    owner = make_container(tmp_path / "data", **env)
    owner.knowledge_bases.create("kb", principal=LOCAL_ADMIN)
    _commit(owner.store.catalog, "kb", 10)      # committed text, 50 chunks waiting for vectors
    workers = [make_container(tmp_path / "data", **env) for _ in range(2)]
    reports: list = [None, None]

    def run(i: int) -> None:
        reports[i] = workers[i].knowledge_bases.run_worker(principal=LOCAL_ADMIN, once=True)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    written = [sum(r.written for r in rep) for rep in reports]
    assert sum(written) == 50
    assert owner.store.catalog.vector_counts("kb") == (50, 0)
    assert owner.store.vectors.count("kb") == 50
