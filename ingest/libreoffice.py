"""Legacy Office and WPS files (.doc .xls .ppt, WPS Office's .wps .et .dps) converted to OOXML by LibreOffice, then
parsed as .docx .xlsx .pptx are. LibreOffice is optional: without it these files fail with the Debian package to
install. The conversion runs inside the bounded parse worker (ingest/isolation.py), with its own time limit, a
fresh profile (two conversions sharing one would hand each other their documents, or lock each other out) and its
own process group, so a hung soffice is killed with all its children."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from ingest.parsers import ParseError, file_blocks

CONVERT_TO = {".doc": "docx", ".wps": "docx", ".xls": "xlsx", ".et": "xlsx", ".ppt": "pptx", ".dps": "pptx"}
# an OLE file (the Office 97 formats, which WPS Office's .wps .et .dps share) is read with its filter named: left to
# detect, LibreOffice imports a damaged one as plain text, garbage and all; anything else (an RTF or HTML saved as
# .doc, as 政府网站 often serve) is left to its detection
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OLE_FILTER = {"docx": "MS Word 97", "xlsx": "MS Excel 97", "pptx": "MS PowerPoint 97"}
DEBIAN_PACKAGE = {"docx": "libreoffice-writer-nogui", "xlsx": "libreoffice-calc-nogui",
                  "pptx": "libreoffice-impress-nogui"}


def find_soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def missing_message(suffix: str) -> str:
    return (f"reading {suffix} files needs LibreOffice, which is not installed here "
            f"(apt-get install {DEBIAN_PACKAGE[CONVERT_TO[suffix]]})")


def convert(path: Path, out_dir: Path, soffice: str, timeout_s: float) -> Path:
    """path converted into out_dir; ParseError saying why not."""
    suffix = path.suffix.lower()
    target = CONVERT_TO[suffix]
    src = out_dir / f"source{suffix}"          # a plain name: the output's name follows it, whatever the upload's
    shutil.copyfile(path, src)
    with open(src, "rb") as f:
        ole = f.read(len(OLE_MAGIC)) == OLE_MAGIC
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        cmd = [soffice, f"-env:UserInstallation={Path(profile).as_uri()}", "--headless", "--norestore",
               "--nolockcheck", "--nologo", "--nodefault", *([f"--infilter={OLE_FILTER[target]}"] if ole else []),
               "--convert-to", target, "--outdir", str(out_dir), str(src)]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "HOME": profile})
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ParseError(f"LibreOffice did not convert the {suffix} file within {timeout_s:g} s "
                             "(ingest.parse_timeout_s); stopped") from None
        finally:
            try:                               # the whole group: oosplash's soffice.bin outlives its parent
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    out = out_dir / f"source.{target}"
    if not out.is_file() or out.stat().st_size == 0:
        said = next((ln for ln in output.decode("utf-8", "replace").splitlines()
                     if "error" in ln.lower()), "") if output else ""
        raise ParseError(f"LibreOffice could not convert the {suffix} file (damaged, or not a {suffix} file)"
                         + (f": {said.strip()[:160]}" if said else ""))
    return out


def converted_blocks(path: str, soffice: str, timeout_s: float) -> list:
    """Blocks of a legacy Office / WPS file, by way of its OOXML conversion; runs in the parse worker."""
    with tempfile.TemporaryDirectory(prefix="lo-convert-") as out:
        converted = convert(Path(path), Path(out), soffice, timeout_s)
        return file_blocks(str(converted))
