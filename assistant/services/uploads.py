"""Upload hygiene: names reduced to a safe basename, allowed suffixes only, a size limit, no duplicates in a batch.
Rejections carry the HTTP status a client should see (400 bad name, 413 too large, 415 wrong type)."""
from __future__ import annotations

import re
import shutil
import unicodedata
from pathlib import Path
from typing import BinaryIO

from ingest.loaders import SUPPORTED_SUFFIXES

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')
MAX_NAME_BYTES = 180


class UploadRejected(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def safe_filename(raw: str | None) -> str:
    """The basename only (either slash), control and reserved characters dropped, no leading dots."""
    name = unicodedata.normalize("NFC", (raw or "").replace("\\", "/").rsplit("/", 1)[-1])
    # format characters (bidi overrides, zero-width) and line/paragraph separators hide what a name says
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cf", "Zl", "Zp"))
    name = _UNSAFE.sub("", name).strip().lstrip(".").strip()
    if not name:
        raise UploadRejected(400, f"invalid file name {raw!r}")
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UploadRejected(415, f"{name}: unsupported file type {suffix or '(none)'}; allowed: "
                                  + " ".join(sorted(SUPPORTED_SUFFIXES)))
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + suffix


def save_uploads(files: list[tuple[str | None, BinaryIO]], dest: Path, max_bytes: int, max_files: int) -> list[Path]:
    """Check every file first, then write them under dest; nothing is kept when any file is rejected."""
    if not files:
        raise UploadRejected(400, "no files in the upload (multipart field 'files')")
    if len(files) > max_files:
        raise UploadRejected(413, f"{len(files)} files in one upload; at most {max_files}")
    names = [safe_filename(raw) for raw, _ in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UploadRejected(400, f"duplicate file names in one upload: {', '.join(dupes)}")
    for name, (_, fh) in zip(names, files):
        size = fh.seek(0, 2)
        fh.seek(0)
        if size > max_bytes:
            raise UploadRejected(413, f"{name} is {size / 2**20:.1f} MiB; the limit is {max_bytes // 2**20} MiB")
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for name, (_, fh) in zip(names, files):
            path = dest / name
            with open(path, "wb") as out:
                shutil.copyfileobj(fh, out, 1 << 20)
            paths.append(path)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return paths


def parse_upload_metadata(raw: str | None) -> dict:
    """The optional `metadata` form field: a JSON object of strings applied to every uploaded document."""
    import json

    from assistant.filters import STATUSES

    if not raw or not raw.strip():
        return {}
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"metadata is not valid JSON: {exc.msg}") from None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError('metadata must be a JSON object of strings, e.g. {"status": "已废止"}')
    bad = [k for k in meta if not re.fullmatch(r"[a-z_]{1,32}", k)]
    if bad:
        raise ValueError(f"invalid metadata field name(s): {', '.join(map(repr, bad))}")
    if "status" in meta and meta["status"] not in STATUSES:
        raise ValueError(f"metadata status must be one of {', '.join(STATUSES)}")
    return meta
