"""Hostile and pathological inputs for the ingest guards (tests/security/test_ingest_guards.py and
benchmarks/ingest_guards.py): zip bombs (honest and lying headers), spreadsheets with many sheets or a shared-strings
bomb, nested archives, damaged PDFs; and a unit-profile container (hashing embedder, scripted LLM) with settings
overrides. Every input is built in well under a second."""
from __future__ import annotations

import io
import os
import random
import struct
import zipfile
import zlib
from pathlib import Path

from assistant.container import Container
from assistant.settings import PROJECT_ROOT, load_settings

MODELS_DIR = Path(os.environ.get("GOV_ASSISTANT_MODELS_DIR", PROJECT_ROOT / "data" / "models"))


def make_container(data_dir: Path, **env: str) -> Container:
    """env: GOV_ASSISTANT_<SECTION>__<KEY>=value overrides, e.g. GOV_ASSISTANT_INGEST__MAX_FILES="5"."""
    environ = {"GOV_ASSISTANT_DATA_DIR": str(data_dir), "GOV_ASSISTANT_MODELS_DIR": str(MODELS_DIR), **env}
    return Container(load_settings("unit", environ=environ))

PARAGRAPH = b"<w:p><w:r><w:t>x</w:t></w:r></w:p>"


def docx_file(path: Path, paragraphs: list[str]) -> Path:
    import docx
    d = docx.Document()
    for text in paragraphs:
        d.add_paragraph(text)
    d.save(path)
    return path


def _replace_member(src: Path, dest: Path, member: str, data: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info, data if info.filename == member else zin.read(info.filename))


def bomb_docx(path: Path, inflated_mb: int) -> Path:
    """A valid .docx whose word/document.xml really inflates to inflated_mb MiB of paragraphs (~340:1)."""
    base = docx_file(path.with_suffix(".base.docx"), ["正文"])
    with zipfile.ZipFile(base) as z:
        xml = z.read("word/document.xml")
    head, tail = xml.split(b"<w:body>")[0] + b"<w:body>", b"</w:body></w:document>"
    block = (PARAGRAPH * (2**20 // len(PARAGRAPH) + 1))[:2**20 - 2**20 % len(PARAGRAPH)]
    # one raw deflate stream of head + n blocks + tail (zipfile would need the whole text in memory)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [co.compress(head)] + [co.compress(block) for _ in range(inflated_mb)] + [co.compress(tail), co.flush()]
    size = len(head) + len(block) * inflated_mb + len(tail)
    crc = zlib.crc32(head)
    for _ in range(inflated_mb):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    _write_raw_member(base, path, "word/document.xml", b"".join(parts), size, crc)
    base.unlink()
    return path


def _write_raw_member(src: Path, dest: Path, member: str, deflated: bytes, size: int, crc: int) -> None:
    """Copy src to dest with member replaced by an already deflated stream (zipfile cannot take one)."""
    with zipfile.ZipFile(src) as zin:
        others = [(i, zin.read(i.filename)) for i in zin.infolist() if i.filename != member]
    out = io.BytesIO()
    central = []

    def add(name: bytes, data: bytes, usize: int, ucrc: int) -> None:
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, ucrc, len(data), usize, len(name), 0))
        out.write(name + data)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, ucrc, len(data), usize,
                                   len(name), 0, 0, 0, 0, 0, offset) + name)

    for info, data in others:
        add(info.filename.encode(), _raw_deflate(data), len(data), zlib.crc32(data))
    add(member.encode(), deflated, size, crc)
    start = out.tell()
    for entry in central:
        out.write(entry)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), out.tell() - start, start, 0))
    dest.write_bytes(out.getvalue())


def _raw_deflate(data: bytes) -> bytes:
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    return co.compress(data) + co.flush()


def declare_size(path: Path, member: str, size: int) -> Path:
    """Rewrite the sizes a zip declares for member (central directory and local header): a lying header."""
    raw = bytearray(path.read_bytes())
    name = member.encode()
    for sig, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        i = 0
        while (i := raw.find(sig, i)) >= 0:
            name_at = i + (46 if sig == b"PK\x01\x02" else 30)
            if raw[name_at:name_at + len(name)] == name:
                raw[i + offset:i + offset + 4] = struct.pack("<I", size)
            i += 4
    path.write_bytes(bytes(raw))
    return path


def xlsx_file(path: Path, sheets: int = 1, rows: int = 3) -> Path:
    import openpyxl
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for s in range(sheets):
        ws = wb.create_sheet(f"表{s + 1}")
        for r in range(rows):
            ws.append([f"事项{s}-{r}", "示范市数据局", r])
    wb.save(path)
    return path


def shared_strings_bomb(path: Path, inflated_mb: int) -> Path:
    """An .xlsx whose xl/sharedStrings.xml inflates to inflated_mb MiB of one repeated string."""
    base = xlsx_file(path.with_suffix(".base.xlsx"))
    item = b"<si><t>AAAAAAAAAAAAAAAA</t></si>"
    block = item * (2**20 // len(item))
    head = b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    tail = b"</sst>"
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = co.compress(head) + b"".join(co.compress(block) for _ in range(inflated_mb)) + co.compress(tail) + co.flush()
    crc = zlib.crc32(head)
    for _ in range(inflated_mb):
        crc = zlib.crc32(block, crc)
    _write_raw_member(base, path, "xl/sharedStrings.xml", data, len(head) + len(block) * inflated_mb + len(tail),
                      zlib.crc32(tail, crc))
    base.unlink()
    return path


def nested_zip_docx(path: Path, depth: int = 3) -> Path:
    """A .docx carrying an embedded zip of zips (parsers never open embeddings; the outer archive is small)."""
    inner = b"innermost " * 100
    for level in range(depth):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"level{level}.zip" if level else "data.txt", inner)
        inner = buf.getvalue()
    base = docx_file(path.with_suffix(".base.docx"), ["这份文件嵌入了一个多层压缩包。"])
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info.filename))
        zout.writestr("word/embeddings/nested.zip", inner)
    base.unlink()
    return path


def pdf_bytes(lines: list[str]) -> bytes:
    from ingest.parsers import tiny_pdf
    return tiny_pdf(lines)


def pdf_stream_bomb(inflated_mb: int) -> bytes:
    """A one-page PDF whose FlateDecode content stream inflates to inflated_mb MiB of text operators (~1000:1):
    no zip, so only the worker's limits bound it."""
    op = b"(x) Tj 0 -1 Td "
    block = op * (2**20 // len(op))
    co = zlib.compressobj(9)
    stream = co.compress(b"BT /F1 1 Tf 72 720 Td ") + b"".join(co.compress(block) for _ in range(inflated_mb)) \
        + co.compress(b" ET") + co.flush()
    good = pdf_bytes(["x"])
    head, rest = good.split(b"4 0 obj\n", 1)
    rest = rest.split(b"endobj\n", 1)[1]
    obj4 = b"4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream\nendobj\n" % (len(stream), stream)
    # the xref offsets of objects 5.. move; pypdf and pdfminer both rebuild a broken xref, which is what we want here
    return head + obj4 + rest


def fuzzed_pdfs(seed: int = 14, n: int = 12) -> list[tuple[str, bytes]]:
    """Truncations and bit flips of a valid PDF: (name, bytes)."""
    good = pdf_bytes(["Municipal data office notice", "Article 1 open data catalogue"])
    rng = random.Random(seed)
    cases = [(f"truncated_{k}.pdf", good[:k]) for k in (9, len(good) // 3, len(good) // 2, len(good) - 40)]
    while len(cases) < n:
        data = bytearray(good)
        for _ in range(rng.choice((1, 4, 32))):
            data[rng.randrange(9, len(data))] ^= 1 << rng.randrange(8)
        cases.append((f"flipped_{len(cases)}.pdf", bytes(data)))
    cases.append(("xref_loop.pdf", good.replace(b"/Root 1 0 R", b"/Root 1 0 R /Prev 0")))
    return cases


def write_text_files(folder: Path, names_texts: dict[str, str]) -> Path:
    for name, text in names_texts.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def article_text(n: int, title: str = "示范市数据条例") -> str:
    """A law-like text of n articles (one chunk each)."""
    return title + "\n" + "\n".join(f"第{i + 1}条 示范市数据局应当按照本条例第{i + 1}项规定做好第{i + 1}类公共数据的"
                                    f"归集、共享和开放工作，并定期公布目录。" for i in range(n))


def run_cli_after(ready_file: str, go_file: str, *argv: str) -> None:
    """`gov-assistant ARGV` once go_file exists, ready_file written when the imports and the tokenizer are loaded:
    processes started together then race for real (python -c "import ingest_fixtures as f; f.run_cli_after(...)")."""
    import sys
    import time

    import chromadb  # noqa: F401

    from assistant.cli.main import app
    from assistant.components.store.tokens import tokenize
    tokenize("示范市")
    Path(ready_file).write_text("ready", encoding="utf-8")
    while not Path(go_file).exists():
        time.sleep(0.005)
    sys.argv = ["gov-assistant", *argv]
    app()


def run_cli_slowly(marker: str, batches: str, *argv: str) -> None:
    """`gov-assistant ARGV` with every vector write slowed; marker is written after `batches` writes (so a test
    can kill -9 the process mid-document)."""
    import sys
    import time

    from assistant.cli.main import app
    from assistant.components.store.vectors import VectorStore

    upsert, done = VectorStore.upsert, [0]

    def slow(self, *args, **kwargs):
        upsert(self, *args, **kwargs)
        done[0] += 1
        if done[0] == int(batches):
            Path(marker).write_text("written", encoding="utf-8")
        time.sleep(0.2)
    VectorStore.upsert = slow
    sys.argv = ["gov-assistant", *argv]
    app()
