"""Who may write a knowledge base now: one writer thread per process (the embedded Chroma is not written
concurrently), and one process per knowledge base through an exclusive flock on
<data_dir>/locks/<kb>.lock (released by the kernel when a writer dies, kill -9 included).

A writer holds it for one document, from the duplicate check to the commit, and lets go between documents: two
ingests into one knowledge base interleave document by document, and neither can pass a duplicate check that the
other's commit would make false. Re-entrant in the thread that holds it.

The embedding worker takes a second set (store.embed_locks, <kb>.embed.lock, a thread lock of its own): one worker
per knowledge base fills its vectors, embedding outside the write lock and taking it only to write a batch.
"""
from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


class WriteLocks:
    def __init__(self, directory: Path, suffix: str = ".lock"):
        self.dir = directory
        self.suffix = suffix
        self.dir.mkdir(parents=True, exist_ok=True)
        self.thread_lock = threading.RLock()
        self._held: dict[str, tuple[int, int]] = {}     # kb -> (depth, fd); touched only under thread_lock

    @contextmanager
    def hold(self, kb: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """on_wait() is called once when another process holds the lock (before waiting for it)."""
        with self.thread_lock:
            depth, fd = self._held.get(kb, (0, -1))
            if depth == 0:
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
            self._held[kb] = (depth + 1, fd)
            try:
                yield
            finally:
                depth, fd = self._held.pop(kb)
                if depth > 1:
                    self._held[kb] = (depth - 1, fd)
                else:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
