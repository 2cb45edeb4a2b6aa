""".doc / WPS .wps / .et converted by LibreOffice, then parsed as .docx / .xlsx (inputs made by LibreOffice itself
from a .docx and an .xlsx); without LibreOffice, or when it hangs, a clear failure naming the file; a
password-protected one fails as such before LibreOffice starts (crafted files, and LibreOffice's own)."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from assistant.services.access import LOCAL_ADMIN
from assistant.settings import IngestSettings
from conftest import make_container
from ingest import libreoffice
from ingest.loaders import LoadError, load_file

needs_soffice = pytest.mark.skipif(libreoffice.find_soffice() is None, reason="LibreOffice (soffice) is not installed: "
                                   "apt-get install libreoffice-writer-nogui libreoffice-calc-nogui")


def _export(src, fmt, out_dir):
    """src converted by soffice to fmt (the legacy format) in out_dir, with a throwaway profile."""
    profile = out_dir / "profile"
    subprocess.run([libreoffice.find_soffice(), f"-env:UserInstallation={profile.as_uri()}", "--headless",
                    "--convert-to", fmt, "--outdir", str(out_dir), str(src)], check=True, capture_output=True,
                   timeout=120)
    return out_dir / f"{src.stem}.{fmt}"


@pytest.fixture(scope="module")
def legacy_files(tmp_path_factory):
    import docx
    import openpyxl
    root = tmp_path_factory.mktemp("legacy")
    d = docx.Document()
    d.add_paragraph("示范市居住证办理指南")
    d.add_paragraph("一、申请材料")
    t = d.add_table(rows=3, cols=2)
    for i, row in enumerate([["材料名称", "要求"], ["居民身份证", "原件"], ["居住登记凭证", "原件"]]):
        for j, v in enumerate(row):
            t.cell(i, j).text = v
    d.add_paragraph("二、办理时限")
    d.add_paragraph("居住证自受理之日起十五日内制发。")
    d.save(root / "guide.docx")
    wb = openpyxl.Workbook()
    for row in (["事项", "责任单位", "完成时限"], ["公共数据开放", "市数据局", "2025年6月"]):
        wb.active.append(row)
    wb.save(root / "tasks.xlsx")
    doc = _export(root / "guide.docx", "doc", root)
    xls = _export(root / "tasks.xlsx", "xls", root)
    shutil.copy(doc, root / "guide.wps")           # WPS Writer's .wps is the Word 97 format LibreOffice reads
    shutil.copy(xls, root / "tasks.et")
    return root


@needs_soffice
def test_wps_et_doc_are_converted_and_parsed(legacy_files, tmp_path):
    c = make_container(tmp_path / "data")
    t0 = time.perf_counter()
    report = c.knowledge_bases.ingest_paths("legacy", [legacy_files / n for n in ("guide.wps", "tasks.et")],
                                            principal=LOCAL_ADMIN)
    seconds = time.perf_counter() - t0
    results = {r.source: r for r in report.results}
    assert report.ok, report.to_dict()
    assert results["guide.wps"].how == ["converted by LibreOffice to .docx", "1 table"]
    assert results["tasks.et"].how == ["converted by LibreOffice to .xlsx", "1 table"]
    chunks = c.knowledge_bases.document("legacy", results["guide.wps"].doc_id, with_chunks=True,
                                        principal=LOCAL_ADMIN)["chunks"]
    assert any(ch["text"] == "| 材料名称 | 要求 |\n| --- | --- |\n| 居民身份证 | 原件 |\n| 居住登记凭证 | 原件 |"
               for ch in chunks)
    hits = c.search.search("公共数据开放 责任单位", ["legacy"], mode="bm25", principal=LOCAL_ADMIN).hits
    assert hits[0].doc_id == results["tasks.et"].doc_id and "市数据局" in hits[0].text
    doc = next(load_file(legacy_files / "guide.doc"))
    assert "居住证自受理之日起十五日内制发。" in doc.text
    print(f"two conversions + parses: {seconds:.1f} s")


@needs_soffice
def test_a_damaged_legacy_file_fails_naming_it(tmp_path):
    bad = tmp_path / "broken.doc"
    bad.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00garbage" * 500)
    with pytest.raises(LoadError) as exc:
        list(load_file(bad))
    assert str(bad) in str(exc.value) and "LibreOffice could not convert the .doc file" in exc.value.message


def test_without_libreoffice_the_message_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(libreoffice, "find_soffice", lambda: None)
    for name, package in (("a.wps", "libreoffice-writer-nogui"), ("b.et", "libreoffice-calc-nogui"),
                          ("c.dps", "libreoffice-impress-nogui")):
        (tmp_path / name).write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 100)
        with pytest.raises(LoadError) as exc:
            list(load_file(tmp_path / name))
        assert exc.value.source == str(tmp_path / name) and package in exc.value.message


def test_a_hung_conversion_is_stopped_with_its_children(tmp_path, monkeypatch):
    """A stand-in soffice that never finishes (and leaves a child behind): stopped at the limit, a clear error."""
    fake = tmp_path / "soffice"
    marker = tmp_path / "child.pid"
    fake.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {marker}\nwait\n")
    fake.chmod(0o755)
    monkeypatch.setattr(libreoffice, "find_soffice", lambda: str(fake))
    (tmp_path / "slow.wps").write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 100)
    t0 = time.perf_counter()
    with pytest.raises(LoadError) as exc:
        list(load_file(tmp_path / "slow.wps", limits=IngestSettings(parse_timeout_s=1)))
    assert time.perf_counter() - t0 < 120   # stopped, not waited out (generous: a loaded 2-core machine is slow)
    assert exc.value.source == str(tmp_path / "slow.wps")
    assert "LibreOffice did not convert the .wps file within 1 s" in exc.value.message
    pid = int(marker.read_text())
    for _ in range(50):                              # the whole process group was killed
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split()[2] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"soffice's child {pid} outlived the timeout")


def test_cli_result_line_shows_how_as_text(capsys):
    from assistant.cli import knowledge
    from assistant.pipeline import DocResult, IngestReport
    report = IngestReport("k", [DocResult("通知[red].wps", "d", "added", 2, how=["converted by LibreOffice to .docx",
                                                                                "1 table"])])
    with knowledge.console.capture() as captured:
        knowledge._print_report(report, as_json=False)
    said = " ".join(captured.get().split())                                   # the console wraps at its width
    assert "added 通知[red].wps (2 chunks) [converted by LibreOffice to .docx; 1 table]" in said


# --- password-protected legacy files (#16, bad input): refused before LibreOffice starts ------------------

def _uno_python() -> str | None:
    """A Python that imports LibreOffice's uno (python3-uno), to save files with a password."""
    if libreoffice.find_soffice() is None:
        return None
    for python in dict.fromkeys(p for p in ("/usr/bin/python3", shutil.which("python3")) if p):
        if subprocess.run([python, "-c", "import uno"], capture_output=True).returncode == 0:
            return python
    return None


UNO_PYTHON = _uno_python()
needs_uno = pytest.mark.skipif(UNO_PYTHON is None, reason="saving with a password needs LibreOffice and its "
                               "Python bridge: apt-get install libreoffice-writer-nogui "
                               "libreoffice-calc-nogui python3-uno")


def word_stream(encrypted: bool) -> bytes:
    """A FibBase: wIdent (Word 97), nFib, unused, lid, pnNext, the flags word with fEncrypted (0x0100)."""
    import struct
    return struct.pack("<HHHHHH", 0xA5EC, 0x00C1, 0, 0x0804, 0, 0x0100 if encrypted else 0)


def workbook_stream(filepass: bytes | None) -> bytes:
    """A BIFF8 globals substream: BOF, WRITEPROTECT, FILEPASS (when given), INTERFACEHDR, EOF."""
    import struct

    def record(kind, data=b""):
        return struct.pack("<HH", kind, len(data)) + data
    bof = record(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 6))
    return bof + record(0x0086) + (record(0x002F, filepass) if filepass is not None else b"") + \
        record(0x00E1, b"\xb0\x04") + record(0x000A)


def rc4_filepass(password: str) -> bytes:
    """FILEPASS, RC4 (version 1.1, as LibreOffice writes it): salt, then verifier and its MD5 encrypted."""
    import hashlib
    import struct

    from msoffcrypto.method.rc4 import ARC4, Cipher, _makekey
    salt, verifier = os.urandom(16), os.urandom(16)
    enc = Cipher(ARC4(_makekey(password, salt, 0)), mode=None).encryptor()
    return (struct.pack("<HHH", 1, 1, 1) + salt + enc.update(verifier)
            + enc.update(hashlib.md5(verifier).digest()))


def cryptoapi_filepass(password: str, key_bits: int = 128) -> bytes:
    """FILEPASS, RC4 CryptoAPI (version 4.2, as Excel 2003 and later write it): header, then verifier;
    key_bits 0 in the header stands for 40."""
    import hashlib
    import struct

    from msoffcrypto.method.rc4_cryptoapi import ARC4, Cipher, _makekey
    csp = "Microsoft Enhanced Cryptographic Provider v1.0\0".encode("utf-16-le")
    header = struct.pack("<IIIIIIII", 0x04, 0, 0x6801, 0x8004, key_bits, 1, 0, 0) + csp
    salt, verifier = os.urandom(16), os.urandom(16)
    enc = Cipher(ARC4(_makekey(password, salt, key_bits or 40, 0)), mode=None).encryptor()
    return (struct.pack("<HHHII", 1, 4, 2, 0x04, len(header)) + header + struct.pack("<I", 16) + salt
            + enc.update(verifier) + struct.pack("<I", 20) + enc.update(hashlib.sha1(verifier).digest()))


def xor_filepass(verification: int) -> bytes:
    import struct
    return struct.pack("<HHH", 0, 0x1234, verification)


def current_user_stream(encrypted: bool) -> bytes:
    """CurrentUserAtom: record header, size 0x14, headerToken (0xF3D1C4DF: the presentation is encrypted)."""
    import struct
    return struct.pack("<HHIII", 0, 0x0FF6, 0x24, 0x14, 0xF3D1C4DF if encrypted else 0xE391C05F) + b"\0" * 24


def crafted_legacy(root):
    """Legacy Office files of just the streams that say whether they are encrypted: (locked, unlocked)."""
    from ole_writer import ole_bytes
    root.mkdir(parents=True, exist_ok=True)
    locked = {"locked.doc": {"WordDocument": word_stream(True), "1Table": b"\0" * 64},
              "locked.xls": {"Workbook": workbook_stream(rc4_filepass("secret"))},
              "cryptoapi.xls": {"Workbook": workbook_stream(cryptoapi_filepass("secret"))},
              "xor.xls": {"Workbook": workbook_stream(xor_filepass(0x1234))},
              "locked.ppt": {"Current User": current_user_stream(True), "PowerPoint Document": b"\0" * 64},
              "locked.wps": {"WordDocument": word_stream(True)},
              "locked.et": {"Book": workbook_stream(b"\0" * 4)}}                  # BIFF5: XOR only
    # Excel's default password (a workbook only write-protected) opens without asking: LibreOffice reads it
    unlocked = {"plain.doc": {"WordDocument": word_stream(False), "1Table": b"\0" * 64},
                "plain.xls": {"Workbook": workbook_stream(None)},
                "default_rc4.xls": {"Workbook": workbook_stream(rc4_filepass("VelvetSweatshop"))},
                "default_cryptoapi.xls": {"Workbook": workbook_stream(cryptoapi_filepass("VelvetSweatshop",
                                                                                           0))},
                "default_xor.xls": {"Workbook": workbook_stream(xor_filepass(0x9A0A))},
                "plain.ppt": {"Current User": current_user_stream(False), "PowerPoint Document": b"\0" * 64}}
    for name, streams in {**locked, **unlocked}.items():
        (root / name).write_bytes(ole_bytes(streams))
    return [root / n for n in locked], [root / n for n in unlocked]


def test_password_protected_legacy_files_fail_before_libreoffice_starts(tmp_path, monkeypatch):
    """A stand-in soffice that notes each call: a locked .doc .xls .ppt .wps .et fails naming the file and
    never reaches it; the unlocked ones (Excel's default password among them) do, and the batch goes on."""
    from ingest.parsers import PASSWORD_PROTECTED
    calls = tmp_path / "calls"
    fake = tmp_path / "soffice"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    monkeypatch.setattr(libreoffice, "find_soffice", lambda: str(fake))
    locked, unlocked = crafted_legacy(tmp_path / "src")
    for path in locked:
        with pytest.raises(LoadError) as exc:
            list(load_file(path))
        assert (exc.value.source, exc.value.message) == (str(path), PASSWORD_PROTECTED)
    assert not calls.exists()
    for path in unlocked:
        with pytest.raises(LoadError) as exc:                       # the stand-in converts nothing
            list(load_file(path))
        assert "LibreOffice could not convert" in exc.value.message, (path.name, exc.value.message)
    assert len(calls.read_text().splitlines()) == len(unlocked)
    (tmp_path / "src" / "notice.txt").write_text("示范市居住证办理通知：居住证自受理之日起十五日内制发。", encoding="utf-8")
    c = make_container(tmp_path / "data")
    report = c.knowledge_bases.ingest_paths("legacy", [*locked, tmp_path / "src" / "notice.txt"],
                                            principal=LOCAL_ADMIN)
    status = {r.source.rsplit("/", 1)[-1]: (r.status, r.message) for r in report.results}
    assert all(status[p.name] == ("failed", PASSWORD_PROTECTED) for p in locked), status
    assert status["notice.txt"][0] == "added"


@needs_uno
def test_libreoffice_made_locked_doc_and_xls_fail_and_the_stored_version_stays(legacy_files, tmp_path):
    """Real files: LibreOffice's own .doc/.xls saved with a password fail as password-protected (the stored
    guide.doc stays as it was); its plain .xls and an .xls under Excel's default password are read."""
    import openpyxl

    from ingest.parsers import PASSWORD_PROTECTED
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(legacy_files / "guide.doc", src / "guide.doc")
    wb = openpyxl.Workbook()                    # a workbook of its own: the same text would be a duplicate
    for row in (["项目", "预算单位", "金额（万元）"], ["政务云扩容", "市大数据中心", "320"]):
        wb.active.append(row)
    wb.save(tmp_path / "budget.xlsx")
    locked = tmp_path / "locked"
    locked.mkdir()
    script = str(Path(__file__).with_name("lo_save_password.py"))
    for password, triples in (("secret", [legacy_files / "guide.docx", locked / "guide.doc", "MS Word 97",
                                          legacy_files / "tasks.xlsx", locked / "tasks.xls", "MS Excel 97"]),
                              ("VelvetSweatshop", [tmp_path / "budget.xlsx", src / "protected.xls",
                                                   "MS Excel 97"])):
        subprocess.run([UNO_PYTHON, script, libreoffice.find_soffice(), password, *map(str, triples)],
                       check=True, capture_output=True, timeout=180)
    c = make_container(tmp_path / "data")
    kbs = c.knowledge_bases
    assert kbs.ingest_paths("legacy", [src / "guide.doc"], principal=LOCAL_ADMIN).ok
    (doc,) = kbs.documents("legacy", principal=LOCAL_ADMIN)
    before = [(ch["chunk_id"], ch["text"]) for ch in c.store.catalog.document_chunks("legacy", doc["doc_id"])]
    shutil.copy(locked / "guide.doc", src / "guide.doc")           # the same file, now locked
    shutil.copy(locked / "tasks.xls", src / "locked.xls")
    shutil.copy(legacy_files / "tasks.xls", src / "tasks.xls")
    t0 = time.perf_counter()
    names = ("guide.doc", "locked.xls", "tasks.xls", "protected.xls")
    report = kbs.ingest_paths("legacy", [src / n for n in names], principal=LOCAL_ADMIN)
    status = {r.source.rsplit("/", 1)[-1]: (r.status, r.message) for r in report.results}
    assert status["guide.doc"] == status["locked.xls"] == ("failed", PASSWORD_PROTECTED), status
    assert status["tasks.xls"][0] == status["protected.xls"][0] == "added", status
    after = [(ch["chunk_id"], ch["text"]) for ch in c.store.catalog.document_chunks("legacy", doc["doc_id"])]
    assert after == before and kbs.info("legacy", principal=LOCAL_ADMIN)["documents"] == 3
    docs = {r.source.rsplit("/", 1)[-1]: r.doc_id for r in report.results}
    hits = c.search.search("政务云扩容 预算单位", ["legacy"], mode="bm25", principal=LOCAL_ADMIN).hits
    assert hits[0].doc_id == docs["protected.xls"] and "市大数据中心" in hits[0].text
    print(f"four files, two conversions: {time.perf_counter() - t0:.1f} s")


@needs_soffice
def test_libreoffice_made_plain_legacy_files_are_not_taken_for_locked(legacy_files, tmp_path):
    """No false positive on real files: LibreOffice's .doc .xls .ppt, large enough that their main stream lies
    outside the mini stream, pass the content check."""
    import docx
    import openpyxl
    import pptx

    from ingest.content_checks import _encrypted_legacy, check_content
    d = docx.Document()
    for i in range(300):
        d.add_paragraph(f"第{i + 1}条 居住证持有人可以在居住地依法享受公共服务。" * 3)
    d.save(tmp_path / "long.docx")
    wb = openpyxl.Workbook()
    for i in range(1000):
        wb.active.append([f"事项{i}", "市数据局", "2025年6月"])
    wb.save(tmp_path / "long.xlsx")
    p = pptx.Presentation()
    p.slides.add_slide(p.slide_layouts[1]).shapes.title.text = "示范市数字政府建设汇报"
    p.save(tmp_path / "talk.pptx")
    files = [_export(tmp_path / n, fmt, tmp_path) for n, fmt in (("long.docx", "doc"), ("long.xlsx", "xls"),
                                                                 ("talk.pptx", "ppt"))]
    files += [legacy_files / "guide.doc", legacy_files / "tasks.xls"]
    for path in files:
        check_content(path, IngestSettings())
        assert not _encrypted_legacy(path), path.name
