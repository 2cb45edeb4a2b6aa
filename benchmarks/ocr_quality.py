"""OCR quality and speed on rendered Chinese government pages (issue #16): RapidOCR (PP-OCRv4, the `ocr` extra)
against Tesseract chi_sim where it is installed, on the same page images.

Pages are rendered from real text (the Shanghai data bureau's 2025 work points and samples/docs) with a CJK font at
200 dpi, 公文-sized type (16 pt), first-line indents and a centred title, in four variants: clean; a red seal
stamped over the body (the way 公章 overprint the last lines); two columns; and a "scan" (slight rotation, blur,
speckle, JPEG). Reported per engine and variant: character accuracy (1 - CER, over the text with whitespace removed,
in reading order, so a column read in the wrong order counts as errors), seconds per page, and for the sealed pages
the seal lines (output lines with characters of the seal's own text that the page does not have). RapidOCR's
boxes are kept with their scores, so one run also sweeps the confidence threshold (ingest.ocr_min_confidence).

    PYTHONPATH=. .venv/bin/python benchmarks/ocr_quality.py [--pages 2] [--out /tmp/ocr-bench]
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.loaders import decode_text  # noqa: E402
from ingest.ocr import OcrOptions, _get_engine  # noqa: E402
from ingest.ocr_layout import boxes_from_points, page_text  # noqa: E402

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
SEED = ROOT.parent / "shared" / "data" / "seed" / "shanghai_data_bureau_2025_work_points.md"
DPI = 200
PT = DPI / 72
SEAL_TEXT = "示范市数据管理局"
THRESHOLDS = [0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9]


def paragraphs(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = re.sub(r"[#*>|`]+", "", line).strip()
        if line and not re.fullmatch(r"[-:\s]+", line):
            out.append(line)
    return out


def sources() -> list[tuple[str, list[str]]]:
    docs = [(SEED.stem, paragraphs(SEED.read_text(encoding="utf-8")))] if SEED.exists() else []
    for p in sorted((ROOT / "samples" / "docs").glob("*")):
        docs.append((p.stem, paragraphs(decode_text(p.read_bytes(), str(p)))))    # one sample is GBK
    return docs


def wrap(text: str, font, width: float, indent: float) -> list[tuple[float, str]]:
    """(x offset, line) for a paragraph: first line indented, broken where the next character would overflow."""
    lines, cur, x0 = [], "", indent
    for ch in text:
        if font.getlength(cur + ch) > width - x0 and cur:
            lines.append((x0, cur))
            cur, x0 = "", 0.0
        cur += ch
    if cur:
        lines.append((x0, cur))
    return lines


def render(title: str, paras: list[str], columns: int = 1, size_pt: float = 16):
    """An A4 page at DPI; the text it holds in reading order (whatever did not fit is left out)."""
    w, h = int(8.27 * DPI), int(11.69 * DPI)
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, int(size_pt * PT * (0.8 if columns == 2 else 1)))
    tfont = ImageFont.truetype(FONT, int(22 * PT))
    margin, pitch = int(0.9 * DPI), int(font.size * 1.75)
    y = margin
    tw = tfont.getlength(title[:18])
    d.text(((w - tw) / 2, y), title[:18], font=tfont, fill="black")
    truth = [title[:18]]
    y += int(tfont.size * 2.2)
    gutter = int(0.35 * DPI)
    colw = (w - 2 * margin - (columns - 1) * gutter) / columns
    col, top = 0, y
    for para in paras:
        lines = wrap(para, font, colw, 2 * font.size)
        placed = []
        for dx, line in lines:
            if y + pitch > h - margin:
                col += 1
                y = top
                if col >= columns:
                    break
            x = margin + col * (colw + gutter) + dx
            d.text((x, y), line, font=font, fill="black")
            placed.append(line)
            y += pitch
        truth.append("".join(placed))
        if col >= columns:
            break
    return img, "".join(truth)


def stamp_seal(img: Image.Image, cx: int, cy: int, r: int) -> Image.Image:
    """A red 公章: ring, star and the agency's name along the upper arc, multiplied over the page."""
    seal = Image.new("RGB", img.size, "white")
    d = ImageDraw.Draw(seal)
    red = (220, 30, 30)
    d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=red, width=max(r // 14, 3))
    star = [(cx + r * 0.28 * math.cos(math.pi / 2 + k * 4 * math.pi / 5),
             cy - r * 0.28 * math.sin(math.pi / 2 + k * 4 * math.pi / 5)) for k in range(5)]
    d.polygon(star, fill=red)
    font = ImageFont.truetype(FONT, int(r * 0.3))
    n = len(SEAL_TEXT)
    for k, ch in enumerate(SEAL_TEXT):
        a = math.radians(210 - k * 240 / (n - 1))
        glyph = Image.new("L", (font.size * 2, font.size * 2), 0)
        ImageDraw.Draw(glyph).text((font.size // 2, font.size // 2), ch, font=font, fill=255)
        glyph = glyph.rotate(math.degrees(a) - 90, resample=Image.BICUBIC)
        gx, gy = cx + r * 0.72 * math.cos(a) - font.size, cy - r * 0.72 * math.sin(a) - font.size
        seal.paste(Image.new("RGB", glyph.size, red), (int(gx), int(gy)), glyph)
    from PIL import ImageChops
    return ImageChops.multiply(img, seal)


def scan_like(img: Image.Image, seed: int) -> Image.Image:
    rnd = random.Random(seed)
    out = img.convert("L").rotate(rnd.uniform(-0.8, 0.8), resample=Image.BICUBIC, fillcolor=255, expand=False)
    out = out.filter(ImageFilter.GaussianBlur(0.8))
    px = out.load()
    for _ in range(out.size[0] * out.size[1] // 400):
        px[rnd.randrange(out.size[0]), rnd.randrange(out.size[1])] = rnd.choice((0, 90, 255))
    from io import BytesIO
    buf = BytesIO()
    out.save(buf, "JPEG", quality=60)
    return Image.open(BytesIO(buf.getvalue())).convert("RGB")


_PUNCT = str.maketrans({"，": ",", "：": ":", "；": ";", "（": "(", "）": ")", "！": "!", "？": "?",
                        "“": '"', "”": '"', "‘": "'", "’": "'", "、": ","})


def norm(s: str) -> str:
    return re.sub(r"\s+", "", s).translate(_PUNCT)


def cer(ref: str, hyp: str) -> float:
    a, b = norm(ref), norm(hyp)
    if not a:
        return 0.0 if not b else 1.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return prev[-1] / len(a)


def seal_lines(truth: str, text: str) -> int:
    """Output lines carrying a seal character the page itself does not have: the seal read as text."""
    foreign = set(SEAL_TEXT) - set(norm(truth))
    return sum(1 for ln in text.splitlines() if foreign & set(ln))


def rapid(img: Image.Image):
    t0 = time.perf_counter()
    result, _ = _get_engine(OcrOptions().threads)(img, use_cls=False)     # as ingest/ocr.py calls it
    return boxes_from_points(result), time.perf_counter() - t0


def tesseract(img: Image.Image, work: Path) -> tuple[str, float]:
    p = work / "page.png"
    img.save(p)
    t0 = time.perf_counter()
    out = subprocess.run(["tesseract", str(p), "stdout", "-l", "chi_sim", "--psm", "3"], capture_output=True,
                         text=True, env={"OMP_THREAD_LIMIT": "2", "PATH": "/usr/bin:/bin"}, check=True).stdout
    return out, time.perf_counter() - t0


def pages(n: int):
    docs = sources()
    for k in range(n):
        _, paras = docs[k % len(docs)]
        title, body = paras[0], paras[1:]         # each source opens with its title
        img, truth = render(title, body)
        yield f"clean-{k}", img, truth
        sealed = stamp_seal(img, int(img.size[0] * 0.68), int(img.size[1] * 0.78), int(0.8 * DPI))
        yield f"seal-{k}", sealed, truth
        img2, truth2 = render(title, body, columns=2)
        yield f"twocol-{k}", img2, truth2
        yield f"scan-{k}", scan_like(img, k), truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2, help="source pages per variant")
    ap.add_argument("--out", default="/tmp/ocr-bench", help="page images and results.json go here")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    has_tess = shutil.which("tesseract") is not None and "chi_sim" in subprocess.run(
        ["tesseract", "--list-langs"], capture_output=True, text=True).stdout
    rows = []
    for name, img, truth in pages(args.pages):
        if name.endswith("-0"):
            img.save(out / f"{name}.png")
        boxes, secs = rapid(img)
        row = {"page": name, "chars": len(norm(truth)), "rapid_s": round(secs, 1), "rapid_by_threshold": {}}
        for t in THRESHOLDS:
            pt = page_text(boxes, t)
            text = "\n".join(pt.paragraphs)
            row["rapid_by_threshold"][t] = {"acc": round(1 - cer(truth, text), 4), "dropped": pt.dropped,
                                           "seal_lines": seal_lines(truth, text), "columns": pt.columns}
        if has_tess:
            text, tsecs = tesseract(img, out)
            row.update(tess_acc=round(1 - cer(truth, text), 4), tess_s=round(tsecs, 1),
                       tess_seal_lines=seal_lines(truth, text))
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    (out / "results.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    summary(rows, has_tess)


def summary(rows: list[dict], has_tess: bool) -> None:
    kinds = sorted({r["page"].split("-")[0] for r in rows})
    default = OcrOptions().min_confidence
    print(f"\nvariant   pages  RapidOCR acc (t={default:g})  s/page  seal lines" +
          ("   | Tesseract chi_sim acc  s/page  seal lines" if has_tess else ""))
    for kind in kinds:
        rs = [r for r in rows if r["page"].startswith(kind + "-")]
        ra = sum(r["rapid_by_threshold"][default]["acc"] for r in rs) / len(rs)
        line = (f"{kind:9} {len(rs):5}  {ra:22.3f}  {sum(r['rapid_s'] for r in rs) / len(rs):6.1f}  "
                f"{sum(r['rapid_by_threshold'][default]['seal_lines'] for r in rs):10}")
        if has_tess:
            ta = sum(r["tess_acc"] for r in rs) / len(rs)
            line += (f"   | {ta:21.3f}  {sum(r['tess_s'] for r in rs) / len(rs):6.1f}  "
                     f"{sum(r['tess_seal_lines'] for r in rs):10}")
        print(line)
    print("\nRapidOCR by confidence threshold: mean accuracy (all pages) / sealed-page accuracy / seal lines / "
          "lines dropped")
    seal = [r for r in rows if r["page"].startswith("seal-")]
    for t in THRESHOLDS:
        acc = sum(r["rapid_by_threshold"][t]["acc"] for r in rows) / len(rows)
        sacc = sum(r["rapid_by_threshold"][t]["acc"] for r in seal) / max(len(seal), 1)
        print(f"  {t:4.2f}  {acc:.4f}  {sacc:.4f}  {sum(r['rapid_by_threshold'][t]['seal_lines'] for r in seal):3}"
              f"  {sum(r['rapid_by_threshold'][t]['dropped'] for r in rows):4}")


if __name__ == "__main__":
    main()
