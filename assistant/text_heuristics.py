"""The Chinese text heuristics the services share (issue #18: one module instead of three or four copies):
character-bigram overlap, the [n] citation marker's place in a sentence, what an organisation's name ends
with, the other names of an organ (工信部 ↔ 工业和信息化部), and the clean-up of a string field in a model's JSON.
Pure functions over strings; text metrics for scoring (ROUGE, F1) are in text_metrics.py."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

_NOT_TEXT = re.compile(r"[\s\W_]+")
_LAST_MARKER = re.compile(r"(\[\d{1,2}\])(?!.*\[\d{1,2}\])", re.S)
_CLOSING = re.compile(r"[。！？!?]*\s*$")

# 机关、单位 and their parts as 公文 name them (主送机关, 责任单位): a name ends with one of these
ORG_SUFFIXES = ("委员会", "办公室", "部门", "政府", "中心", "单位", "机构", "机关", "企业", "街道", "乡镇", "社区", "集团",
                "公司", "小组", "学校", "医院", "局", "厅", "委", "部", "办", "院", "署", "会", "处", "司", "室", "组", "所",
                "站", "队", "行", "镇", "区", "县", "市")


def is_org(name: str) -> bool:
    """A 机关/单位 name: short, and 各… ("各区人民政府") or ending with an organisation word."""
    return bool(name) and len(name) <= 30 and (name.startswith("各") or name.endswith(ORG_SUFFIXES))


def word_list(path: Path) -> list[str]:
    """The lines of a word list shipped beside the code (agency_names.txt, grounding/admin_divisions.txt), stripped,
    without blank lines and # comments."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [x.strip() for x in lines if x.strip() and not x.startswith("#")]


@lru_cache(maxsize=1)
def _organ_names() -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(line.split()) for line in word_list(Path(__file__).with_name("agency_names.txt")))


def other_names(text: str) -> list[str]:
    """The other names of the organs the text names (agency_names.txt): "人社部" → 人力资源和社会保障部,
    人力资源社会保障部; "国家发展和改革委员会" → 发改委, 发展改革委. Questions and documents write either."""
    out: list[str] = []
    for names in _organ_names():
        found = [n for n in names if n in text]
        out += [n for n in names if n not in found] if found else []
    return out


def name_variants(name: str) -> list[str]:
    """The name with an organ in it written each other way: "北京市人社局" → 北京市人力资源和社会保障局,
    北京市人力资源社会保障局 (what a passage naming the same agency may write)."""
    out: list[str] = []
    for names in _organ_names():
        for n in names:
            if n in name:
                out += [name.replace(n, other) for other in names if other != n]
    return out


def compact(text: str) -> str:
    """The text without whitespace and punctuation: what "the source states it" compares."""
    return _NOT_TEXT.sub("", text or "")


def grounded(text: str, source: str) -> bool:
    """Every number in `text` occurs in `source` (a guard against invented dates, amounts and indicators)."""
    src = re.sub(r"\s+", "", source)
    return all(n in src for n in re.findall(r"\d+(?:\.\d+)?", text))


def bigrams(text: str) -> set[str]:
    """Character bigrams of the text without whitespace and punctuation (a one-character text: that character)."""
    s = compact(text)
    return {s[i:i + 2] for i in range(len(s) - 1)} if len(s) > 1 else ({s} if s else set())


def containment(small: str, big: str) -> float:
    """Share of `small`'s character bigrams that occur in `big` (0 when small has none)."""
    a = bigrams(small)
    return len(a & bigrams(big)) / len(a) if a else 0.0


def same_text(a: str, b: str, share: float = 0.8, min_bigrams: int = 20) -> bool:
    """The two passages are one text (a notice reposted by another site, 後 / 后 variants): the shorter's bigrams are
    almost all in the longer. Short passages never count: two 20-character clauses share too much by chance."""
    small, big = (a, b) if len(compact(a)) <= len(compact(b)) else (b, a)
    return len(bigrams(small)) >= min_bigrams and containment(small, big) >= share


def add_marker(sentence: str, n: int) -> str:
    """The sentence with [n] added after its last marker, or else before its closing punctuation."""
    m = _LAST_MARKER.search(sentence)
    if m:
        return sentence[:m.end()] + f"[{n}]" + sentence[m.end():]
    m = _CLOSING.search(sentence)
    return sentence[:m.start()] + f"[{n}]" + sentence[m.start():]



# --- a string field of a model's JSON -----------------------------------------------------------------------
# A small model copies the prompt's [S3] section ids, list markers and markdown into its fields, and writes
# 无/未明确 where the document states nothing.

_SID_RE = re.compile(r"[〔\[［【(（<《{]?\s*(?:出处|来源|段落?)?\s*[:：]?\s*[Ss]\s*(\d{1,4})\s*[〕\]］】)）>》}]?")
_BULLET_RE = re.compile(r"^\s*(?:[-*•·●◦▪‣]|\d{1,3}\s*[.)．、](?!\d)|[（(]\d{1,3}[)）])\s*")
_NONE_RE = re.compile(r"^(?:无|暂无|没有|未明确|未提及|未涉及|不涉及|无相关内容|未写明|文档未提及|/|-|—+|n/?a|none)[。.；;]*$",
                      re.I)
_MD_NOISE_RE = re.compile(r"\*\*|__|`")


def says_none(text: str) -> bool:
    """无, 未明确, — and the like: the model says the document states nothing."""
    return bool(_NONE_RE.match(text))


def clean_line(line: str) -> str:
    line = re.sub(r"^\s*#{1,6}\s*", "", line)
    line = _MD_NOISE_RE.sub("", line)
    return line.strip()


def strip_bullet(line: str) -> str:
    return _BULLET_RE.sub("", line, count=1).strip()


def strip_section_ids(text: str) -> str:
    text = _SID_RE.sub("", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip(" \t,，;；、")


def field_text(value) -> str:
    """A string field of the model's JSON ("" if not a string), one line, without copied section ids and
    markdown."""
    text = value if isinstance(value, str) else ""
    text = strip_bullet(clean_line(" ".join(text.split()))).replace("\ufffd", "")
    return strip_section_ids(text)
