"""Which files the paths of one ingest name, under what name readers see each, and what was left out and why.

Named files are taken as they are (the caller chose them). Folders are walked without following symlinked
folders; inside a folder a hidden name (a leading dot, as .git or ..evil.txt), a symlink whose target leaves the
folder and anything that is not a regular file (a FIFO would block the reader) are skipped, each with its reason;
an unsupported type is a failure, as before. More than `max_files` files is refused before anything is read.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ingest.loaders import SUPPORTED_SUFFIXES, LoadError


class TooManyFiles(ValueError):
    pass


@dataclass
class Found:
    path: Path
    name: str            # shown to readers: relative to the named folder's parent, or the named file's own name


@dataclass
class Discovery:
    files: list[Found] = field(default_factory=list)
    problems: list[LoadError] = field(default_factory=list)   # failures: missing, unsupported type
    skipped: list[LoadError] = field(default_factory=list)    # left out on purpose, with the reason


def scan(paths: list[str | Path], max_files: int | None = None) -> Discovery:
    out = Discovery()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            _walk(p, out, max_files)
        elif p.is_file():
            _take(p, p.name, out, named=True)
        elif p.exists() or p.is_symlink():
            reason = "a symlink whose target does not exist" if p.is_symlink() and not p.exists() else \
                "not a regular file"
            out.problems.append(LoadError(str(p), reason))
        else:
            out.problems.append(LoadError(str(p), "no such file or directory"))
        _check_count(out, max_files, p)
    return out


def _walk(root: Path, out: Discovery, max_files: int | None) -> None:
    real_root = root.resolve()
    top = f"{real_root.name}/" if real_root.name else ""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for d in sorted(dirnames):
            if d.startswith("."):
                out.skipped.append(LoadError(str(here / d), "hidden folder (name starts with '.'): not read"))
            elif (here / d).is_symlink():
                out.skipped.append(LoadError(str(here / d), "symlinked folder: not followed"))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (here / d).is_symlink())
        for name in sorted(filenames):
            path = here / name
            reason = _skip_reason(path, name, real_root)
            if reason:
                out.skipped.append(LoadError(str(path), reason))
                continue
            _take(path, top + path.relative_to(root).as_posix(), out, named=False)
            _check_count(out, max_files, root)


def _skip_reason(path: Path, name: str, real_root: Path) -> str | None:
    if name.startswith("."):
        return "hidden file (name starts with '.')"
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a symlink whose target does not exist" if path.is_symlink() else "cannot be read"
    if path.is_symlink() and not path.resolve().is_relative_to(real_root):
        return "symlink to a file outside the folder"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None


def _take(path: Path, name: str, out: Discovery, named: bool) -> None:
    if path.suffix.lower() in SUPPORTED_SUFFIXES:
        out.files.append(Found(path, name))
        return
    message = f"unsupported file type {path.suffix or '(none)'}"
    if named:
        message += "; supported: " + " ".join(sorted(SUPPORTED_SUFFIXES))
    out.problems.append(LoadError(str(path), message))


def _check_count(out: Discovery, max_files: int | None, where: Path) -> None:
    """Every entry counts (a folder of 100,000 images is as slow to report as to ingest)."""
    if max_files is not None and len(out.files) + len(out.problems) + len(out.skipped) > max_files:
        raise TooManyFiles(f"{where} holds more than {max_files:,} files (ingest.max_files): ingest it in parts "
                           "or raise the limit")
