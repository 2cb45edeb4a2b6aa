"""Loaders: files and folders → SourceDocument, parsed by unstructured offline; JSONL records as documents.

Text files are decoded here (UTF-8, GB18030 ⊇ GBK, else detected) because unstructured assumes UTF-8.
Every failure is a LoadError naming the file; callers report it and go on with the next file.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from assistant.settings import IngestSettings
from ingest.chunking import Block, Chunk
from ingest.content_checks import ContentRejected, check_content
from ingest.isolation import WorkerFailed, run_bounded
from ingest import libreoffice
from ingest.metadata import parse_cn_date
from ingest.ocr import IMAGE_SUFFIXES
from ingest.ofd import read_ofd
from ingest.parsers import MARKDOWN_SUFFIXES, file_blocks, text_blocks
from ingest.scanned import OnPage, ScanError, read_image, read_pdf
from ingest.tables import table_count

os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXT_SUFFIXES = {".txt"} | MARKDOWN_SUFFIXES
UNSTRUCTURED_SUFFIXES = {".html", ".htm", ".docx", ".pdf", ".xlsx", ".pptx"}
CONVERTED_SUFFIXES = set(libreoffice.CONVERT_TO)          # .doc .xls .ppt .wps .et .dps, by LibreOffice
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | UNSTRUCTURED_SUFFIXES | CONVERTED_SUFFIXES | IMAGE_SUFFIXES | {".ofd", ".jsonl"}


class LoadError(Exception):
    def __init__(self, source: str, message: str):
        super().__init__(f"{source}: {message}")
        self.source, self.message = source, message


@dataclass
class SourceDocument:
    doc_id: str
    title: str
    source: str
    text: str
    blocks: list[Block] | None = None
    chunks: list[Chunk] | None = None      # given by structured sources (law articles)
    metadata: dict = field(default_factory=dict)
    extract_metadata: bool = True           # structured sources state their metadata; no 公文 heuristics
    path: str | None = None                 # where it was read on the server: shown to admins only
    file: str | None = None                 # the file it was parsed from: the pipeline keeps a copy (its original)
    hints: dict = field(default_factory=dict)  # what the file's properties say (an OFD's DocInfo): used where the
                                               # text itself gives no 发文机关 / 日期
    how: list[str] = field(default_factory=list)   # how it was read, for its result line ("OFD", "OCR 3 pages")

    @property
    def content_hash(self) -> str:
        fields = [self.title, self.text, self.metadata] + ([self.hints] if self.hints else [])
        payload = json.dumps(fields, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def slug(text: str, limit: int = 40) -> str:
    """Readable id part: keeps CJK, letters and digits."""
    s = re.sub(r"[^\w\u4e00-\u9fff]+", "_", text).strip("_")
    return s[:limit] or "doc"


def derive_doc_id(source_name: str) -> str:
    """Stable id from where a document came from: the same file re-ingested replaces itself."""
    return f"{slug(Path(source_name).stem)}-{hashlib.sha1(source_name.encode('utf-8')).hexdigest()[:10]}"


def decode_text(data: bytes, source: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError(source, "cannot detect the text encoding (tried UTF-8, GB18030/GBK)")
    return str(best)


def discover(paths: list[str | Path]) -> tuple[list[Path], list[LoadError]]:
    """Files under paths (folders recursively, sorted) and the failures found; ingest.discovery.scan also gives
    each file's display name and what was skipped on purpose."""
    from ingest.discovery import scan
    found = scan(paths)
    return [f.path for f in found.files], found.problems


def display_name(name: str) -> str:
    """A name as readers see it: NFC, without control, format (bidi overrides, zero-width) or line-separator
    characters, which could make one name look like another."""
    name = unicodedata.normalize("NFC", name)
    return "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")) or "document"


def load_file(path: Path, source_name: str | None = None, limits: IngestSettings | None = None,
              shown_as: str | None = None, on_page: OnPage | None = None) -> Iterator[SourceDocument | LoadError]:
    """One document per file; one per line for .jsonl, where a bad line is yielded as a LoadError and the
    rest go on. source_name is the document's stable name, its id derives from it (default: the absolute path;
    uploads give the uploaded name, which is then also what readers see and no server path is kept); shown_as
    is what readers see instead (a folder ingest: the path relative to the folder's parent). Text formats parse
    in-process; every other format after the content checks, in a bounded worker (limits: ingest settings); scanned
    PDF pages and images by OCR a page per worker call, on_page(pages done, pages to OCR) after each."""
    limits = limits or IngestSettings()
    source = source_name or str(path.resolve())
    shown = display_name(shown_as or source)
    server_path = None if source_name else source
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(str(path), f"cannot read: {exc.strerror}") from None
    if size == 0:
        raise LoadError(str(path), "the file is empty")
    if size > limits.max_file_mb * 2**20:
        raise LoadError(str(path), f"the file is {size / 2**20:,.1f} MiB; at most {limits.max_file_mb} MiB "
                                   "(ingest.max_file_mb)")
    suffix = path.suffix.lower()
    try:
        check_content(path, limits)
    except ContentRejected as exc:
        raise LoadError(str(path), str(exc)) from None
    if suffix == ".jsonl":
        for item in load_jsonl(path, display_name(shown_as) if shown_as else None):
            if isinstance(item, SourceDocument) and server_path:
                item.path = f"{server_path}:{item.source.rsplit(':', 1)[-1]}"
            yield item
        return
    title, stated, hints, how = "", {}, {}, []
    if suffix in TEXT_SUFFIXES:
        text = decode_text(path.read_bytes(), str(path))
        try:
            blocks = text_blocks(text, suffix)
        except Exception as exc:  # noqa: BLE001 - unstructured raises many types
            raise LoadError(str(path), f"cannot parse {suffix} file: {str(exc)[:200] or type(exc).__name__}") from None
    elif suffix == ".ofd":
        ofd = _bounded(path, read_ofd, (str(path.resolve()),), limits)
        blocks, (title, stated, hints) = ofd.blocks, _ofd_metadata(ofd.info)
        how.append(f"OFD, {ofd.pages} page{'s' * (ofd.pages != 1)}")
    elif suffix in CONVERTED_SUFFIXES:
        soffice = libreoffice.find_soffice()
        if not soffice:
            raise LoadError(str(path), libreoffice.missing_message(suffix))
        # the worker's limit covers the conversion and the parse of its output, each bounded by parse_timeout_s
        blocks = _bounded(path, libreoffice.converted_blocks, (str(path.resolve()), soffice, limits.parse_timeout_s),
                          limits, timeout_s=2 * limits.parse_timeout_s)
        how.append(f"converted by LibreOffice to .{libreoffice.CONVERT_TO[suffix]}")
    elif suffix == ".pdf" or suffix in IMAGE_SUFFIXES:
        try:
            read = (read_pdf if suffix == ".pdf" else read_image)(path, limits, on_page)
        except ScanError as exc:
            raise LoadError(str(path), str(exc)) from None
        blocks = read.blocks
        how.append(read.note or "text layer")
    else:
        blocks = _bounded(path, file_blocks, (str(path.resolve()),), limits)
    if not blocks:
        raise LoadError(str(path), f"no text found{f' ({how[-1]})' if how else ''}")
    if tables := table_count(b.text for b in blocks):
        how.append(f"{tables} table{'s' * (tables != 1)}")
    full = "\n".join(b.text for b in blocks)
    yield SourceDocument(doc_id=derive_doc_id(source), title=title, source=shown, text=full, blocks=blocks,
                         metadata=stated, path=server_path, hints=hints, how=how, file=str(path))


def _bounded(path: Path, fn, args: tuple, limits: IngestSettings, timeout_s: float | None = None):
    try:
        return run_bounded(fn, args, timeout_s or limits.parse_timeout_s, limits.parse_memory_mb)
    except WorkerFailed as exc:
        raise LoadError(str(path), str(exc)) from None


# GB/T 33476 公文 OFDs state their fields in CustomData: they are the document's metadata; DocInfo's Author and
# CreationDate are the file's, so they only fill in what the text does not say
_OFD_CUSTOM = {"文号": "doc_number", "发文字号": "doc_number", "发文机关": "agency", "发文机关名称": "agency",
               "成文日期": "date", "印发日期": "date", "文种": "doc_type"}


def _ofd_metadata(info: dict[str, str]) -> tuple[str, dict, dict]:
    """(title, stated metadata, hints) from an OFD's DocInfo."""
    stated = {_OFD_CUSTOM[k]: v for k, v in info.items() if k in _OFD_CUSTOM}
    hints = {"agency": info.get("Author"), "date": info.get("CreationDate")}
    for fields in (stated, hints):
        if fields.get("date"):
            fields["date"] = parse_cn_date(fields["date"])     # a date that does not parse is left out, not an error
    title = (info.get("标题") or info.get("Title") or "").strip()
    clean = lambda d: {k: v.strip()[:200] for k, v in d.items() if v and v.strip()}  # noqa: E731
    return title[:200], clean(stated), clean(hints)


def load_jsonl(path: Path, shown: str | None = None) -> Iterator[SourceDocument | LoadError]:
    """Each line {"id"?, "title"?, "text", "metadata"?}; a given id is the document id (NCP's "docid" too).
    A line's source is "<shown>:<line>" (default: the file's name)."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if raw.strip():
                try:
                    yield _jsonl_record(path, lineno, raw, shown or path.name)
                except LoadError as exc:
                    yield exc


def _jsonl_record(path: Path, lineno: int, raw: bytes, shown: str) -> SourceDocument:
    where = f"{path}:{lineno}"
    try:
        rec = json.loads(decode_text(raw, where))
    except json.JSONDecodeError as exc:
        raise LoadError(where, f"invalid JSON: {exc.msg}") from None
    if not isinstance(rec, dict):
        raise LoadError(where, "each line must be a JSON object")
    text = rec.get("text")
    if not isinstance(text, str) or not text.strip():
        raise LoadError(where, "field 'text' is missing or empty")
    meta = rec.get("metadata") or {}
    if not isinstance(meta, dict):
        raise LoadError(where, "field 'metadata' must be an object")
    doc_id = str(rec.get("id") or rec.get("docid") or derive_doc_id(f"{path.resolve()}:{lineno}"))
    if not re.fullmatch(r"[\w\u4e00-\u9fff.:#@-]{1,128}", doc_id):
        raise LoadError(where, f"field 'id' {doc_id!r} has characters outside letters, digits, . : # @ - _")
    return SourceDocument(doc_id=doc_id, title=str(rec.get("title") or ""), source=f"{shown}:{lineno}",
                          text=text, metadata={k: v for k, v in meta.items() if v is not None})
