"""The Chinese text heuristics the services share (issue #18: one module instead of three or four copies):
character-bigram overlap, the [n] citation marker's place in a sentence, and what an organisation's name ends with.
Pure functions over strings; text metrics for scoring (ROUGE, F1) are in text_metrics.py."""
from __future__ import annotations

import re

_NOT_TEXT = re.compile(r"[\s\W_]+")
_LAST_MARKER = re.compile(r"(\[\d{1,2}\])(?!.*\[\d{1,2}\])", re.S)
_CLOSING = re.compile(r"[。！？!?]*\s*$")

# 机关、单位 and their parts as 公文 name them (主送机关, 责任单位): a name ends with one of these
ORG_SUFFIXES = ("委员会", "办公室", "部门", "政府", "中心", "单位", "机构", "机关", "企业", "街道", "乡镇", "社区", "集团",
                "公司", "小组", "学校", "医院", "局", "厅", "委", "部", "办", "院", "署", "会", "处", "司", "室", "组", "所",
                "站", "队", "行", "镇", "区", "县", "市")


def bigrams(text: str) -> set[str]:
    """Character bigrams of the text without whitespace and punctuation (a one-character text: that character)."""
    s = _NOT_TEXT.sub("", text or "")
    return {s[i:i + 2] for i in range(len(s) - 1)} if len(s) > 1 else ({s} if s else set())


def containment(small: str, big: str) -> float:
    """Share of `small`'s character bigrams that occur in `big` (0 when small has none)."""
    a = bigrams(small)
    return len(a & bigrams(big)) / len(a) if a else 0.0


def add_marker(sentence: str, n: int) -> str:
    """The sentence with [n] added after its last marker, or else before its closing punctuation."""
    m = _LAST_MARKER.search(sentence)
    if m:
        return sentence[:m.end()] + f"[{n}]" + sentence[m.end():]
    m = _CLOSING.search(sentence)
    return sentence[:m.start()] + f"[{n}]" + sentence[m.start():]

