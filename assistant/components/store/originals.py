"""What documents were made from, kept so a citation can be shown where it stands: each ingested file's bytes
and each document's extracted text (the text chunk offsets point into), content-addressed by sha256.

Where they live, per profile (chosen by the store's construction; one interface):
- Originals (the embedded default): files <data_dir>/originals/<2 hex>/<sha256>.
- PgOriginals (database.url is PostgreSQL, the scale-out profile): rows of the database every replica
  shares (Alembic 0005: `originals` sha256 → size, parts; `original_parts` the bytes in parts of PART_BYTES,
  so a file up to ingest.max_file_mb (200 MiB by default; uploads: min(that, api.max_upload_mb)) is written
  and read with flat memory). <data_dir>/originals is then this replica's cache of the blobs it read or
  published, checked against the database on every read (a blob released elsewhere is gone here too), safe to
  delete at any time and bounded (database.originals_cache_mb: the least recently read go first).

A blob is staged (copied into a temporary file under <data_dir>/originals while hashed) before the document's
commit and published after it (renamed to its name, or inserted into the database in one transaction), both
under one lock (threads and processes: the flock <data_dir>/locks/.originals.lock, or PostgreSQL's
transaction-level advisory lock on lock_key("originals", "originals")) that release() also takes to check the
catalog and remove: a blob a committed document names is never removed, and one being staged is in its own
file until then. Publishing after the commit means a crash between the two leaves a document whose original
is missing (served as 404), never a blob that nothing names for long: release() of its last user removes it.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from assistant.components.store.locks import WriteLocks, lock_key

SHA256 = re.compile(r"^[0-9a-f]{64}$")
LOCK = ".originals"      # the flock's name: no knowledge base's (their names begin with a letter or digit)
PART_BYTES = 1 << 20     # PostgreSQL: one original_parts row
TRIM_GRACE_S = 60        # PostgreSQL: a cached copy read this recently is not trimmed


@dataclass
class Staged:
    sha256: str
    size: int
    tmp: Path


class Originals:
    def __init__(self, root: Path, locks: WriteLocks):
        self.root = root
        self.locks = locks

    def _final(self, sha: str) -> Path:
        if not SHA256.fullmatch(sha or ""):      # names come from the catalog; never a path from a request
            raise ValueError(f"not a sha256: {sha!r}")
        return self.root / sha[:2] / sha

    def stage_file(self, path: str | Path, max_bytes: int) -> Staged | None:
        """A copy of the file (None when it is larger than max_bytes or cannot be read)."""
        try:
            if os.path.getsize(path) > max_bytes:
                return None
            with open(path, "rb") as f:
                return self._stage(f, max_bytes)
        except OSError:
            return None

    def stage_text(self, text: str) -> Staged:
        import io
        staged = self._stage(io.BytesIO(text.encode("utf-8")), None)
        assert staged is not None
        return staged

    def _stage(self, src: BinaryIO, max_bytes: int | None) -> Staged | None:
        self.root.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, name = tempfile.mkstemp(prefix=".staged-", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out:
                while block := src.read(1 << 20):
                    size += len(block)
                    if max_bytes is not None and size > max_bytes:   # it grew since it was measured
                        raise OverflowError
                    digest.update(block)
                    out.write(block)
        except BaseException as exc:
            Path(name).unlink(missing_ok=True)
            if isinstance(exc, OverflowError):
                return None
            raise
        return Staged(digest.hexdigest(), size, Path(name))

    def publish(self, staged: Iterable[Staged | None]) -> None:
        with self.locks.hold(LOCK):
            for s in staged:
                if s is None:
                    continue
                final = self._final(s.sha256)
                if final.exists():
                    s.tmp.unlink(missing_ok=True)
                else:
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(s.tmp, final)

    @staticmethod
    def discard(staged: Iterable[Staged | None]) -> None:
        for s in staged:
            if s is not None:
                s.tmp.unlink(missing_ok=True)

    def path(self, sha: str | None) -> Path | None:
        if not sha:
            return None
        final = self._final(sha)
        return final if final.is_file() else None

    def exists(self, sha: str | None) -> bool:
        """Whether the blob is kept (without reading it)."""
        return self.path(sha) is not None

    def read_text(self, sha: str | None) -> str | None:
        p = self.path(sha)
        return p.read_text(encoding="utf-8") if p else None

    def release(self, shas: Iterable[str | None], in_use: Callable[[str], bool]) -> int:
        """Remove the blobs no document names any more (in_use asks the catalog); how many went."""
        removed = 0
        with self.locks.hold(LOCK):
            for sha in {s for s in shas if s}:
                if not in_use(sha):
                    final = self._final(sha)
                    if final.is_file():
                        final.unlink()
                        removed += 1
        return removed


class PgOriginals(Originals):
    """The blobs in the PostgreSQL database (tables originals, original_parts); `root` stages them and caches
    those read here. in_use (the catalog's origin_in_use) lets a blob kept only as a file here, from before
    Alembic 0005, be taken into the table when a document names it (adopt_local; `gov-assistant db
    import-originals` for all at once) instead of being dropped as a stale cached copy."""

    def __init__(self, root: Path, url: str, in_use: Callable[[str], bool] | None = None,
                 cache_bytes: int | None = None):
        super().__init__(root, locks=None)    # type: ignore[arg-type]  # the lock is the database's
        self.url = url
        self.in_use = in_use
        self.cache_bytes = cache_bytes        # None: the cache is not bounded
        self._db = None
        self._lock = threading.Lock()

    @property
    def db(self):
        """A connection of its own (opened on first use), so a large blob does not hold up the catalog's."""
        with self._lock:
            if self._db is None:
                from assistant.db import Database
                self._db = Database(self.url)
            return self._db

    def _exclusive(self, db) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (lock_key("originals", "originals"),))

    def publish(self, staged: Iterable[Staged | None], only_in_use: bool = False) -> None:
        """only_in_use: publish those a committed document names (checked under the lock), discard others."""
        staged = [s for s in staged if s is not None]
        if not staged:
            return
        db = self.db
        with db.transaction():
            self._exclusive(db)
            if only_in_use:
                unused = [s for s in staged if not (self.in_use and self.in_use(s.sha256))]
                self.discard(unused)
                staged = [s for s in staged if s not in unused]
            for s in staged:
                parts = max(1, -(-s.size // PART_BYTES))
                at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                new = db.execute("INSERT INTO originals (sha256, size, parts, created_at) "
                                 "VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
                                 (s.sha256, s.size, parts, at)).rowcount
                if new:
                    with open(s.tmp, "rb") as f:
                        for n in range(parts):
                            db.execute("INSERT INTO original_parts (sha256, n, data) VALUES (?, ?, ?)",
                                       (s.sha256, n, f.read(PART_BYTES)))
        for s in staged:      # committed: the staged copy becomes this replica's cached one
            final = self._final(s.sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(s.tmp, final)
        self.trim_cache()

    def _stored(self, sha: str) -> tuple[int, int] | None:
        row = self.db.execute("SELECT size, parts FROM originals WHERE sha256=?", (sha,)).fetchone()
        return (int(row["size"]), int(row["parts"])) if row else None

    def exists(self, sha: str | None) -> bool:
        """Whether the database keeps the blob (nothing fetched)."""
        if not sha:
            return False
        self._final(sha)                     # a sha256, or ValueError
        return self._stored(sha) is not None

    def path(self, sha: str | None) -> Path | None:
        """The blob as a local file: the cached copy, fetched from the database when this replica has none."""
        if not sha:
            return None
        final = self._final(sha)
        stored = self._stored(sha)
        if stored is None:       # released (perhaps on another replica), or kept here from before 0005
            return final if final.is_file() and self.adopt_local(sha) else None
        size, parts = stored
        if final.is_file() and final.stat().st_size == size:
            os.utime(final)                  # recently read: the last to be trimmed
            return final
        self.root.mkdir(parents=True, exist_ok=True)
        digest, got = hashlib.sha256(), 0
        fd, name = tempfile.mkstemp(prefix=".fetched-", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out:
                for n in range(parts):       # a part at a time: memory stays flat however large the file
                    row = self.db.execute("SELECT data FROM original_parts WHERE sha256=? AND n=?",
                                          (sha, n)).fetchone()
                    if row is None:          # released while it was read
                        raise FileNotFoundError(sha)
                    block = bytes(row["data"])
                    digest.update(block)
                    got += len(block)
                    out.write(block)
            if got != size or digest.hexdigest() != sha:
                raise FileNotFoundError(f"{sha}: stored parts do not match the blob's hash")
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(name, final)
            self.trim_cache()
        except FileNotFoundError:
            Path(name).unlink(missing_ok=True)
            return None
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return final

    def trim_cache(self, now: float | None = None) -> int:
        """Remove the least recently read cached blobs until the cache holds at most cache_bytes → how many went.
        A copy read or written in the last TRIM_GRACE_S seconds stays (a request may be about to open it), so the
        cache can briefly exceed the bound by what is in flight; a removed copy is fetched again when read."""
        if self.cache_bytes is None or not self.root.is_dir():
            return 0
        files = []
        for f in self.root.glob("??/*"):
            try:
                st = f.stat()
            except FileNotFoundError:        # trimmed or released by another thread meanwhile
                continue
            if SHA256.fullmatch(f.name):
                files.append((st.st_mtime, st.st_size, f))
        total = sum(size for _, size, _ in files)
        now = time.time() if now is None else now
        removed = 0
        for mtime, size, f in sorted(files, key=lambda t: t[0]):
            if total <= self.cache_bytes:
                break
            if now - mtime < TRIM_GRACE_S:
                continue
            f.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed

    def adopt_local(self, sha: str) -> bool:
        """The local file of a blob the table lacks: into the table when a document names it and its bytes
        hash to its name (kept here before Alembic 0005), else removed (a cached copy of a blob released
        elsewhere)."""
        final = self._final(sha)
        staged = None
        if self.in_use is not None and self.in_use(sha):
            try:
                with open(final, "rb") as f:
                    staged = self._stage(f, None)
            except FileNotFoundError:
                return False
        if staged is None or staged.sha256 != sha:
            self.discard([staged])
            final.unlink(missing_ok=True)
            return False
        self.publish([staged], only_in_use=True)
        return self._stored(sha) is not None

    def import_local(self) -> tuple[int, int]:
        """adopt_local for every blob file under root the table lacks → (taken into the table, removed)."""
        adopted = removed = 0
        for f in sorted(self.root.glob("??/*")) if self.root.is_dir() else []:
            if SHA256.fullmatch(f.name) and f.parent.name == f.name[:2] and self._stored(f.name) is None:
                if self.adopt_local(f.name):
                    adopted += 1
                else:
                    removed += 1
        return adopted, removed

    def release(self, shas: Iterable[str | None], in_use: Callable[[str], bool]) -> int:
        removed = 0
        db = self.db
        with db.transaction():
            self._exclusive(db)
            for sha in {s for s in shas if s}:
                if not in_use(sha):
                    self._final(sha).unlink(missing_ok=True)
                    removed += db.execute("DELETE FROM originals WHERE sha256=?", (sha,)).rowcount
        return removed

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
