"""Background jobs (uploads, re-indexing, batch summaries): one worker thread runs them in order (the embedded
Chroma has one writer), each job keeps the pipeline's progress callback state and, when done, the per-file
results. Job records persist in <data_dir>/jobs.sqlite3, so GET /api/v1/jobs/{id} answers after a restart; a job
that was queued or running when the server stopped is reported as interrupted (what it stored stays: the
catalog is the source of truth, ingestion is atomic per document, and a re-submitted upload skips what is done).

A job is owned by its submitter's principal id (the API key's id), never by the key's name: names are labels that a
new key may reuse after a revoke. Rows written before owners were ids hold a name; they load as "name:<name>",
which no principal id equals, so only an admin sees them."""
from __future__ import annotations

import json
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from assistant.components.store.catalog import now_iso
from assistant.progress import Progress
from assistant.services.access import Principal
from assistant.db import Database

INTERRUPTED = "interrupted: the server stopped before this job finished; submit it again"
# shared database (replicas): a job runs on the replica that took its upload and saves its progress at most every
# SAVE_EVERY_S; another replica reads it from the table. One not saved for STALE_S lost its process.
SAVE_EVERY_S, STALE_S = 2.0, 600.0
OWNER_FORMAT = "id"           # stored with every row since owners are principal ids
LEGACY_OWNER = "name:"        # prefix for an older row's owner (a key name): matches no principal id


@dataclass
class Job:
    id: str
    kind: str                       # upload | reindex
    kb: str
    owner: str                      # the submitter's principal id
    state: str = "queued"           # queued | running | done | failed (the job itself crashed)
    created_at: str = field(default_factory=now_iso)
    finished_at: str | None = None
    progress: dict = field(default_factory=lambda: {"phase": "queued", "done": 0, "total": None, "detail": ""})
    files: list[str] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "done" and not self.counts.get("failed")

    def to_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "ok": self.ok}


class JobManager:
    def __init__(self, keep: int = 200, path: Path | str | None = None):
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-job")
        self._finished: dict[str, threading.Event] = {}   # set once a job's record and cleanup are done
        self._saved_at: dict[str, float] = {}
        self._db = Database(path, "jobs") if path else None
        self._shared = self._db is not None and self._db.postgres
        if self._db is not None:
            self._load()

    def _load(self) -> None:
        rows = self._db.execute("SELECT data FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?",
                                (self.keep,)).fetchall()
        for row in reversed(rows):
            job, saved_at = _job(row["data"])
            # the process that ran it is gone (embedded: one server; shared: no progress saved for STALE_S)
            if job.state in ("queued", "running") and (not self._shared or time.time() - saved_at > STALE_S):
                job.state, job.error, job.finished_at = "failed", INTERRUPTED, now_iso()
                self._save(job)
            if not self._shared:
                self._jobs[job.id] = job
        self._db.execute("DELETE FROM jobs WHERE id NOT IN (SELECT id FROM jobs ORDER BY created_at DESC, rowid DESC "
                         "LIMIT ?)", (self.keep,))

    def _save(self, job: Job) -> None:
        if self._db is not None:
            job_saved = time.time()
            self._saved_at[job.id] = job_saved
            with self._lock:
                self._db.execute("INSERT INTO jobs(id, owner, created_at, data) VALUES (?,?,?,?) ON CONFLICT (id) "
                                 "DO UPDATE SET owner=excluded.owner, created_at=excluded.created_at, data=excluded.data",
                                 (job.id, job.owner, job.created_at,
                                  json.dumps({**job.to_dict(), "owner_format": OWNER_FORMAT, "saved_at": job_saved},
                                             ensure_ascii=False)))

    def submit(self, kind: str, kb: str, owner: Principal, work: Callable[[Progress], object],
               files: list[str] | None = None, cleanup: Callable[[], None] | None = None) -> Job:
        """work(progress) returns an IngestReport (or a list of them); it runs on the worker thread. The job
        belongs to `owner.id` (a Principal, not a name string, so a caller cannot key it by the reusable name)."""
        if not isinstance(owner, Principal):
            raise TypeError("a job's owner is the submitting Principal (its id owns the job)")
        job = Job("job_" + secrets.token_hex(8), kind, kb, owner.id, files=list(files or []))
        with self._lock:
            self._jobs[job.id] = job
            self._finished[job.id] = threading.Event()
            self._forget_old()
        self._save(job)
        self._worker.submit(self._run, job, work, cleanup)
        return job

    def _run(self, job: Job, work: Callable[[Progress], object], cleanup: Callable[[], None] | None) -> None:
        def progress(phase: str, done: int, total: int | None, detail: str = "") -> None:
            new_phase = phase != job.progress.get("phase")
            job.progress = {"phase": phase, "done": done, "total": total, "detail": detail[:200]}
            if self._shared and (new_phase or time.time() - self._saved_at.get(job.id, 0) >= SAVE_EVERY_S):
                self._save(job)     # other replicas read progress from the table

        t0 = time.perf_counter()
        job.state = "running"
        self._save(job)
        try:
            out = work(progress)
            for report in out if isinstance(out, list) else [out]:
                job.results += report.to_dict()["results"]
            for r in job.results:
                job.counts[r["status"]] = job.counts.get(r["status"], 0) + 1
            job.state = "done"   # per-file failures are in results/counts ("ok": false), not a failed job
        except Exception as exc:  # noqa: BLE001 - the job reports it; the worker thread must survive
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"[:500]
        finally:
            job.seconds = round(time.perf_counter() - t0, 2)
            job.finished_at = now_iso()
            self._save(job)
            if cleanup:
                cleanup()
            self._finished[job.id].set()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None and self._shared:       # another replica's job
            row = self._db.execute("SELECT data FROM jobs WHERE id=?", (job_id,)).fetchone()
            job = _job(row["data"])[0] if row else None
        return job

    def list(self, owner: str | None = None) -> list[Job]:
        """The jobs of one principal id (None: all)."""
        with self._lock:
            mine = [j for j in self._jobs.values() if owner is None or j.owner == owner]
        if not self._shared:
            return mine
        where, args = ("WHERE owner=?", (owner,)) if owner is not None else ("", ())
        rows = self._db.execute(f"SELECT data FROM jobs {where} ORDER BY created_at, rowid", (*args,)).fetchall()
        fresh = {j.id: j for j in mine}       # this replica's own jobs: their live progress
        return [fresh.get(j.id, j) for j in (_job(r["data"])[0] for r in rows[-self.keep:])]

    def wait(self, job_id: str, timeout_s: float = 60) -> Job:
        """For tests and scripts: block until the job has finished (its record saved, its files cleaned up)."""
        with self._lock:
            job, finished = self._jobs.get(job_id), self._finished.get(job_id)
        if job is None:
            raise KeyError(job_id)
        if finished is not None and not finished.wait(timeout_s):
            raise TimeoutError(f"job {job_id} still {job.state} after {timeout_s} s")
        return job

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in ("done", "failed")]
        for job_id in finished[:max(len(self._jobs) - self.keep, 0)]:
            del self._jobs[job_id]
            self._finished.pop(job_id, None)
            if self._db is not None:
                self._db.execute("DELETE FROM jobs WHERE id=?", (job_id,))


def _job(data_text: str) -> tuple[Job, float]:
    """A stored row → (its Job, when it was saved: epoch seconds, 0 for rows from before that was kept)."""
    data = json.loads(data_text)
    data.pop("ok", None)
    saved_at = float(data.pop("saved_at", 0) or 0)
    legacy = data.pop("owner_format", None) != OWNER_FORMAT
    job = Job(**{k: v for k, v in data.items() if k in Job.__dataclass_fields__})
    if legacy and not job.owner.startswith(LEGACY_OWNER):
        job.owner = LEGACY_OWNER + job.owner   # fail closed: a new key with that name is someone else
    return job, saved_at
