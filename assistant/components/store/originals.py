"""What documents were made from, kept so a citation can be shown where it stands: each ingested file's bytes and
each document's extracted text (the text chunk offsets point into), content-addressed by sha256 under
<data_dir>/originals/<2 hex>/<sha256>.

A blob is staged (copied into a temporary file while hashed) before the document's commit and published (renamed
to its name) after it, both under one lock (threads and processes) that release() also takes to check the catalog
and unlink: a blob a committed document names is never removed, and one being staged is in its own file until
then. Publishing after the commit means a crash between the two leaves a document whose original is missing
(served as 404), never a blob that nothing names for long: release() of its last user removes it.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from assistant.components.store.locks import WriteLocks

SHA256 = re.compile(r"^[0-9a-f]{64}$")


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
        with self.locks.hold("originals"):
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

    def read_text(self, sha: str | None) -> str | None:
        p = self.path(sha)
        return p.read_text(encoding="utf-8") if p else None

    def release(self, shas: Iterable[str | None], in_use: Callable[[str], bool]) -> int:
        """Remove the blobs no document names any more (in_use asks the catalog); how many went."""
        removed = 0
        with self.locks.hold("originals"):
            for sha in {s for s in shas if s}:
                if not in_use(sha):
                    final = self._final(sha)
                    if final.is_file():
                        final.unlink()
                        removed += 1
        return removed
