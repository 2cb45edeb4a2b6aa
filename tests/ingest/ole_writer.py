"""A minimal OLE compound file (MS-CFB version 3) with streams at its root, for tests that need a legacy
Office file's streams with chosen bytes (olefile reads but cannot create one). Each stream is padded to the
mini-stream cutoff (4096 bytes, zeros after the given bytes) so that all live in regular sectors: one FAT
sector, the directory, the streams."""
from __future__ import annotations

import struct

SECTOR = 512
FREE, END, FATSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF


def _entry(name: str, kind: int, right: int, child: int, start: int, size: int) -> bytes:
    raw = (name.encode("utf-16-le") + b"\0\0") if name else b""
    return struct.pack("<64sHBBIII16sIQQII4x", raw, len(raw), kind, 1, NOSTREAM, right, child, b"", 0, 0, 0,
                       start, size)


def ole_bytes(streams: dict[str, bytes]) -> bytes:
    datas = [d.ljust(max(4096, -(-len(d) // SECTOR) * SECTOR), b"\0") for d in streams.values()]
    n_dir = -(-(len(streams) + 1) // 4)                   # 4 entries of 128 bytes a sector, the root first
    fat = [FATSECT]

    def chain(n: int) -> int:
        start = len(fat)
        fat.extend(range(start + 1, start + n))
        fat.append(END)
        return start
    dir_start = chain(n_dir)
    starts = [chain(len(d) // SECTOR) for d in datas]
    assert len(fat) <= SECTOR // 4, "one FAT sector: keep the streams small"
    # the root's child is the first stream, the rest hang off right siblings (olefile checks no order)
    entries = [_entry("Root Entry", 5, NOSTREAM, 1 if streams else NOSTREAM, END, 0)]
    for i, (name, data, start) in enumerate(zip(streams, datas, starts), 1):
        entries.append(_entry(name, 2, i + 1 if i < len(streams) else NOSTREAM, NOSTREAM, start, len(data)))
    directory = b"".join(entries).ljust(n_dir * SECTOR, b"\0")
    header = struct.pack("<8s16sHHHHH6sIIIIIIIII", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"", 0x3E, 3, 0xFFFE,
                         9, 6, b"", 0, 1, dir_start, 0, 4096, END, 0, END, 0)
    header += struct.pack("<109I", 0, *[FREE] * 108)
    fat_sector = struct.pack(f"<{SECTOR // 4}I", *fat, *[FREE] * (SECTOR // 4 - len(fat)))
    return header + fat_sector + directory + b"".join(datas)
