"""Job records survive a restart; a job cut off by the restart is reported as interrupted, not as running."""
from __future__ import annotations

import threading

import pytest

from assistant.services.access import Principal
from assistant.services.jobs import INTERRUPTED, JobManager

EDITOR = Principal("editor", "editor", ("samples",), id="k_0000e1e1", levels=("公开", "内部"))
ADMIN = Principal("admin", "admin", ("*",), id="k_0000a1a1", levels=("*",))


class Report:
    def __init__(self, *statuses: str):
        self.statuses = statuses

    def to_dict(self) -> dict:
        return {"results": [{"source": f"f{i}.txt", "status": s} for i, s in enumerate(self.statuses)]}


def test_finished_jobs_are_remembered_across_a_restart(tmp_path):
    db = tmp_path / "jobs.sqlite3"
    jobs = JobManager(path=db)
    job = jobs.submit("upload", "samples", EDITOR, lambda progress: Report("added", "failed"), files=["a", "b"])
    jobs.wait(job.id)

    again = JobManager(path=db).get(job.id)
    assert again is not None and again.state == "done" and not again.ok
    assert again.counts == {"added": 1, "failed": 1} and again.files == ["a", "b"] and again.owner == EDITOR.id
    assert [j.id for j in JobManager(path=db).list(EDITOR.id)] == [job.id]
    assert JobManager(path=db).list("editor") == []           # owned by the key's id, not its name


def test_a_job_running_when_the_server_stopped_is_interrupted(tmp_path):
    db = tmp_path / "jobs.sqlite3"
    release = threading.Event()
    jobs = JobManager(path=db)
    job = jobs.submit("reindex", "samples", ADMIN, lambda progress: release.wait(30) and Report("replaced"))
    while jobs.get(job.id).state != "running":
        threading.Event().wait(0.01)
    restarted = JobManager(path=db)           # a new process over the same data directory
    cut = restarted.get(job.id)
    assert cut.state == "failed" and cut.error == INTERRUPTED and cut.finished_at
    release.set()
    jobs.wait(job.id)


def test_only_the_last_jobs_are_kept(tmp_path):
    db = tmp_path / "jobs.sqlite3"
    jobs = JobManager(keep=2, path=db)
    ids = []
    for _ in range(4):
        ids.append(jobs.submit("upload", "kb", EDITOR, lambda progress: Report("added")).id)
        jobs.wait(ids[-1])
    assert [j.id for j in jobs.list()] == ids[-2:]
    assert [j.id for j in JobManager(keep=2, path=db).list()] == ids[-2:]


def test_without_a_path_jobs_live_in_memory():
    jobs = JobManager()
    job = jobs.submit("upload", "kb", EDITOR, lambda progress: Report("added"))
    assert jobs.wait(job.id).ok


def test_a_job_owner_is_a_principal_not_a_name():
    with pytest.raises(TypeError):
        JobManager().submit("upload", "kb", "editor", lambda progress: Report("added"))
