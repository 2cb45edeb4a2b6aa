"""Checks a file must pass before any parser reads it: its bytes match its extension, and a zip-based file
(.docx .xlsx .pptx, or anything whose bytes are a zip) declares sizes within the ingest limits, and an image's
header declares no more pixels than ingest.ocr_max_pixels. A password-protected .docx/.xlsx/.pptx (an OLE
container, not a zip) is named as such.

The zip check reads only the central directory, so a bomb is refused before one byte is inflated. The declared
sizes are enough because every parser here reads members through Python's zipfile (python-docx, openpyxl,
python-pptx), which never returns more than a member's declared size: a header that lies low ends in a CRC error
after that many bytes. The worker's memory and time limits (ingest/isolation.py) bound whatever gets past this.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from assistant.settings import IngestSettings

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"
RATIO_FLOOR = 1 << 20          # members smaller than this may compress as well as they like
ZIP_SUFFIXES = {".docx", ".xlsx", ".pptx", ".ofd"}
TEXT_LIKE = {".txt", ".md", ".markdown", ".jsonl", ".html", ".htm"}
# what a file that claims to be text may not start with (other binaries have NUL bytes near the start)
BINARY_MAGIC = {b"PK\x03\x04": "a zip archive (.docx .xlsx .pptx are zips)", b"%PDF-": "a PDF",
                OLE_MAGIC: "an OLE file (.doc .xls)", b"\x89PNG": "a PNG image",
                b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"\x1f\x8b": "gzip data"}


class ContentRejected(ValueError):
    """The reason, without the file name (the caller's LoadError names the file)."""


def check_content(path: Path, limits: IngestSettings) -> None:
    suffix = path.suffix.lower()
    with open(path, "rb") as f:
        head = f.read(8192)
    if suffix in TEXT_LIKE:
        kind = next((what for magic, what in BINARY_MAGIC.items() if head.startswith(magic)), None)
        if kind is None and b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
            kind = "binary data (NUL bytes)"
        if kind:
            raise ContentRejected(f"the file is {kind}, not text: its extension {suffix} does not match its content")
    if suffix in ZIP_SUFFIXES and not head.startswith(ZIP_MAGIC):
        if head.startswith(OLE_MAGIC) and _encrypted_ooxml(path):
            from ingest.parsers import PASSWORD_PROTECTED
            raise ContentRejected(PASSWORD_PROTECTED)
        raise ContentRejected(f"cannot parse {suffix} file: it is not a zip archive (a {suffix} file is one)")
    if suffix == ".pdf" and b"%PDF-" not in head[:1024]:
        raise ContentRejected("cannot parse .pdf file: it does not start with a PDF header (%PDF-)")
    if head.startswith(ZIP_MAGIC):
        check_archive(path, limits)
    from ingest.ocr import IMAGE_SUFFIXES, image_header
    if suffix in IMAGE_SUFFIXES:
        from ingest.parsers import ParseError
        try:
            image_header(path, limits.ocr_max_pixels)     # the header's size, before any pixel is decoded
        except ParseError as exc:
            raise ContentRejected(str(exc)) from None


def _encrypted_ooxml(path: Path) -> bool:
    """A password-protected .docx/.xlsx/.pptx is no zip: an OLE compound file holding EncryptionInfo and the
    encrypted package (MS-OFFCRYPTO). olefile (msoffcrypto-tool's, through unstructured[xlsx]) reads only its
    directory here."""
    try:
        import olefile
        with olefile.OleFileIO(str(path)) as ole:
            return ole.exists("EncryptionInfo") and ole.exists("EncryptedPackage")
    except Exception:  # noqa: BLE001 - not OLE (or no olefile): the plain "not a zip" message then
        return False


def check_archive(path: Path, limits: IngestSettings) -> None:
    """Entry count, each member's declared size and compression ratio, and the declared total."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ContentRejected(f"cannot parse {path.suffix} file: damaged zip archive ({exc})") from None
    if len(members) > limits.max_archive_entries:
        raise ContentRejected(f"the archive has {len(members)} entries; at most {limits.max_archive_entries} "
                              "(ingest.max_archive_entries)")
    total, cap = 0, limits.max_uncompressed_mb * 2**20
    for m in members:
        total += m.file_size
        if m.file_size > cap or total > cap:
            raise ContentRejected(f"its members would inflate to more than {limits.max_uncompressed_mb} MiB "
                                  f"({m.filename} alone declares {m.file_size / 2**20:,.0f} MiB; "
                                  "ingest.max_uncompressed_mb): a zip bomb or far too large")
        if m.file_size > RATIO_FLOOR and m.file_size > limits.max_compression_ratio * max(m.compress_size, 1):
            ratio = m.file_size / max(m.compress_size, 1)
            raise ContentRejected(f"member {m.filename} is compressed {ratio:,.0f}:1 "
                                  f"({m.compress_size:,} bytes inflating to {m.file_size / 2**20:,.0f} MiB); at most "
                                  f"{limits.max_compression_ratio}:1 (ingest.max_compression_ratio): a zip bomb")
