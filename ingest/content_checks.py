"""Checks a file must pass before any parser reads it: its bytes match its extension, and a zip-based file
(.docx .xlsx .pptx, or anything whose bytes are a zip) declares sizes within the ingest limits, and an image's
header declares no more pixels than ingest.ocr_max_pixels. A password-protected .docx/.xlsx/.pptx (an OLE
container, not a zip) or legacy .doc .xls .ppt (and WPS's .wps .et .dps, the same formats) is named as such,
before LibreOffice starts on it (it would answer "source file could not be loaded", or wait for a password).

The zip check reads only the central directory, so a bomb is refused before one byte is inflated. The declared
sizes are enough because every parser here reads members through Python's zipfile (python-docx, openpyxl,
python-pptx), which never returns more than a member's declared size: a header that lies low ends in a CRC error
after that many bytes. The worker's memory and time limits (ingest/isolation.py) bound whatever gets past this.
"""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from assistant.settings import IngestSettings

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"
RATIO_FLOOR = 1 << 20          # members smaller than this may compress as well as they like
ZIP_SUFFIXES = {".docx", ".xlsx", ".pptx", ".ofd"}
TEXT_LIKE = {".txt", ".md", ".markdown", ".jsonl", ".html", ".htm"}
LEGACY_SUFFIXES = {".doc", ".xls", ".ppt", ".wps", ".et", ".dps"}     # ingest/libreoffice.py converts these
STREAM_HEAD = 4096             # bytes of a stream read for its encryption flags
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
    if suffix in LEGACY_SUFFIXES and head.startswith(OLE_MAGIC) and _encrypted_legacy(path):
        from ingest.parsers import PASSWORD_PROTECTED
        raise ContentRejected(PASSWORD_PROTECTED)
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


def _encrypted_legacy(path: Path) -> bool:
    """An Office 97 file (or WPS's) that opens only with its password, told by the streams it holds: Word's
    FIB fEncrypted, an Excel workbook's FILEPASS record (unless it is Excel's default password), PowerPoint's
    Current User token. False for anything unreadable: LibreOffice then says what is wrong."""
    try:
        import olefile
        with olefile.OleFileIO(str(path)) as ole:
            if (word := _stream_head(ole, "WordDocument")) is not None:
                # FibBase: wIdent (Word 97+, or Word 6/95 whose FIB starts alike), flags word at 0x0A whose
                # bit 0x0100 is fEncrypted (MS-DOC 2.5.2; set for XOR obfuscation too)
                ident, flags = struct.unpack_from("<H8xH", word)
                return ident in (0xA5EC, 0xA5DC) and bool(flags & 0x0100)
            for name in ("Workbook", "Book"):           # BIFF8; BIFF5 (Excel 95)
                if (book := _stream_head(ole, name)) is not None:
                    return _filepass_locked(book, biff8=name == "Workbook")
            if (user := _stream_head(ole, "Current User")) is not None:
                # CurrentUserAtom after its 8-byte record header: size, then headerToken (MS-PPT 2.3.2)
                return struct.unpack_from("<I", user, 12)[0] == 0xF3D1C4DF
    except Exception:  # noqa: BLE001 - not OLE, a stream cut short (or no olefile): left to LibreOffice
        return False
    return False


def _stream_head(ole, name: str) -> bytes | None:
    """A top-level stream's first STREAM_HEAD bytes (None: there is none); olefile's openstream would read
    all of it, which may be most of a large file, in the calling process."""
    import olefile
    entry = ole.root.kids_dict.get(name.lower())
    if entry is None or entry.entry_type != olefile.STGTY_STREAM:
        return None
    return ole._open(entry.isectStart, min(entry.size, STREAM_HEAD),
                     force_FAT=entry.size >= ole.minisectorcutoff).read()


def _filepass_locked(book: bytes, biff8: bool) -> bool:
    """The workbook's globals substream (its first records: FILEPASS comes right after BOF, or after
    WRITEPROTECT, MS-XLS 2.1.7.20.3) holds a FILEPASS record whose password is not Excel's default."""
    kind, size = struct.unpack_from("<HH", book)
    if kind != 0x0809:                                  # BOF
        return False
    at = 4 + size
    while at + 4 <= len(book):
        kind, size = struct.unpack_from("<HH", book, at)
        if kind == 0x000A:                              # EOF of the globals: no FILEPASS
            return False
        if kind == 0x002F:
            return not (biff8 and _default_password_opens(book[at + 4:at + 4 + size]))
        at += 4 + size
    return False


XLS_DEFAULT_PASSWORD = "VelvetSweatshop"


def _default_password_opens(filepass: bytes) -> bool:
    """Excel encrypts some workbooks that have no password to open (write-protected ones) with its default
    password VelvetSweatshop (MS-XLS, Encryption), which LibreOffice tries on its own: such a file opens
    without asking. The FILEPASS record's verifier is checked with msoffcrypto-tool's methods (through
    unstructured[xlsx]); a record of another kind, or a cut one, is taken as a real password."""
    pw = XLS_DEFAULT_PASSWORD
    try:
        kind, = struct.unpack_from("<H", filepass)
        if kind == 0:                                   # XOR obfuscation: key, verification bytes
            from msoffcrypto.method.xor_obfuscation import DocumentXOR
            return DocumentXOR.verifypw(pw, struct.unpack_from("<H", filepass, 4)[0])
        major, minor = struct.unpack_from("<HH", filepass, 2)
        if (major, minor) == (1, 1):                    # RC4: salt, verifier, verifier hash
            from msoffcrypto.method.rc4 import DocumentRC4
            return DocumentRC4.verifypw(pw, filepass[6:22], filepass[22:38], filepass[38:54])
        if minor == 2 and major in (2, 3, 4):           # RC4 CryptoAPI: flags, header size, header, verifier
            from msoffcrypto.method.rc4_cryptoapi import DocumentRC4CryptoAPI
            header_size, = struct.unpack_from("<I", filepass, 10)
            key_bits = struct.unpack_from("<I", filepass, 14 + 16)[0] or 40     # 0: 40-bit (MS-OFFCRYPTO)
            v = 14 + header_size                        # salt size, salt, verifier, hash size, hash
            if len(filepass) < v + 60:
                return False
            salt, verifier, digest = filepass[v + 4:v + 20], filepass[v + 20:v + 36], filepass[v + 40:v + 60]
            return DocumentRC4CryptoAPI.verifypw(pw, salt, key_bits, verifier, digest)
    except Exception:  # noqa: BLE001 - a short record, or no msoffcrypto: a password it is
        return False
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
