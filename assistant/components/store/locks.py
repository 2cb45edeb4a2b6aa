"""Who may write a knowledge base now: one writer thread per process (the embedded Chroma is not written
concurrently), and one process per knowledge base, on every host that shares its catalog.

Two kinds with one interface (`hold(kb, on_wait)`, `thread_lock`), chosen by the store's construction:
- WriteLocks (the embedded default): an exclusive flock on <data_dir>/locks/<kb>.lock, released by the
  kernel when a writer dies (kill -9 included). Only processes that share the data_dir share the lock.
- PgWriteLocks (database.url is PostgreSQL, the scale-out profile): a session-level advisory lock
  (pg_advisory_lock) on a 64-bit key derived from the lock's kind and the knowledge base's name (lock_key;
  advisory keys are per database), taken on a connection of its own that lives as long as the hold. A
  writer that dies ends its session and PostgreSQL lets the lock go: at once for a killed process (its
  socket closes), for a host that vanished when the server's TCP keepalive gives up on it
  (tcp_keepalives_idle and friends, server side). The connection turns statement, lock and idle-session
  timeouts off for itself: a hold idles for as long as one document is written.

A writer holds it for one document, from the duplicate check to the commit, and lets go between documents:
two ingests into one knowledge base interleave document by document, and neither can pass a duplicate check
that the other's commit would make false. Re-entrant in the thread that holds it; on_wait() is called once,
before waiting, when another process holds it.

The embedding worker takes a second set (store.embed_locks: <kb>.embed.lock, or kind "embed"; a thread lock
of its own): one worker per knowledge base fills its vectors, embedding outside the write lock and taking it
only to write a batch.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from assistant.db import pg_connect

log = logging.getLogger(__name__)


class _ReentrantLocks:
    """One lock per name, re-entrant in the thread that holds it; subclasses take and give back the real lock
    (_acquire returns the handle _release needs)."""

    def __init__(self):
        self.thread_lock = threading.RLock()
        self._held: dict[str, tuple[int, object]] = {}   # kb -> (depth, handle); touched only under thread_lock

    @contextmanager
    def hold(self, kb: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """on_wait() is called once when another process holds the lock (before waiting for it)."""
        with self.thread_lock:
            depth, handle = self._held.get(kb, (0, None))
            if depth == 0:
                handle = self._acquire(kb, on_wait)
            self._held[kb] = (depth + 1, handle)
            try:
                yield
            finally:
                depth, handle = self._held.pop(kb)
                if depth > 1:
                    self._held[kb] = (depth - 1, handle)
                else:
                    self._release(kb, handle)

    def _acquire(self, kb: str, on_wait: Callable[[], None] | None):
        raise NotImplementedError

    def _release(self, kb: str, handle) -> None:
        raise NotImplementedError


class WriteLocks(_ReentrantLocks):
    def __init__(self, directory: Path, suffix: str = ".lock"):
        super().__init__()
        self.dir = directory
        self.suffix = suffix
        self.dir.mkdir(parents=True, exist_ok=True)

    def _acquire(self, kb: str, on_wait: Callable[[], None] | None) -> int:
        fd = os.open(self.dir / f"{kb}{self.suffix}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait:
                    on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _release(self, kb: str, fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def lock_key(kind: str, name: str) -> int:
    """The advisory lock's key: the first 8 bytes of sha256("gov-assistant/<kind>/<name>") as a signed bigint
    (stable across processes, hosts and releases; kinds: write, embed, originals)."""
    digest = hashlib.sha256(f"gov-assistant/{kind}/{name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PgWriteLocks(_ReentrantLocks):
    """WriteLocks through PostgreSQL: a session advisory lock per held name, on a connection of its own."""

    IDLE = 1      # connections kept open between holds (a new one per document costs a login)

    def __init__(self, url: str, kind: str = "write", connect_timeout_s: int = 5):
        self.url = url
        self.kind = kind
        self.connect_timeout_s = connect_timeout_s
        super().__init__()
        self._idle: list = []

    def _connect(self):
        conn = pg_connect(self.url, self.connect_timeout_s,
                          application_name=f"gov-assistant {self.kind} lock")
        try:
            # a hold idles while its document is written; waiting for the lock is no statement to cut short
            for setting in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout") + \
                    (("idle_session_timeout",) if conn.info.server_version >= 140000 else ()):
                conn.execute(f"SET {setting} = 0")
        except BaseException:
            conn.close()
            raise
        return conn

    def _acquire(self, kb: str, on_wait: Callable[[], None] | None):
        import psycopg

        key = lock_key(self.kind, kb)
        conn = None
        while self._idle and conn is None:
            conn = self._idle.pop()
            try:                                       # a kept connection may have died with the server
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
            except psycopg.Error:
                conn.close()
                conn = None
        if conn is None:
            conn = self._connect()
            got = None
        try:
            if got is None:
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
            if not got:
                if on_wait:
                    on_wait()
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        except BaseException:
            conn.close()        # the session ends: a lock granted meanwhile goes with it
            raise
        return conn

    def _release(self, kb: str, conn) -> None:
        import psycopg

        key = lock_key(self.kind, kb)
        try:
            if not conn.execute("SELECT pg_advisory_unlock(%s)", (key,)).fetchone()[0]:
                raise RuntimeError("not held")
        except (psycopg.Error, RuntimeError) as exc:
            # the session (and the lock with it) was lost while held: nothing left to release
            log.warning("advisory lock %s/%s was lost while held: %s", self.kind, key, exc)
            conn.close()
            return
        if len(self._idle) < self.IDLE:
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        with self.thread_lock:
            while self._idle:
                self._idle.pop().close()
