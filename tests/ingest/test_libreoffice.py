""".doc / WPS .wps / .et converted by LibreOffice, then parsed as .docx / .xlsx (inputs made by LibreOffice itself
from a .docx and an .xlsx); without LibreOffice, or when it hangs, a clear failure naming the file."""
from __future__ import annotations

import shutil
import subprocess
import time

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
