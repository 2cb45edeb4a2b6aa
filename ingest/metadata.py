"""Metadata extraction for 公文: title, 文号, 发文机关, 成文日期, 文种 — regex heuristics only."""
from __future__ import annotations

import datetime as _dt
import re

from assistant.grounding.atoms import cn_to_int

__all__ = ["extract_metadata", "parse_cn_date", "find_doc_number", "metadata_passage", "META_HEADING", "META_PASSAGE"]

_CJK = r"\u4e00-\u9fff"
_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_CN_DIGIT = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "○": 0, "Ｏ": 0, "O": 0}

_DATE_RES = [
    re.compile(r"(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日"),
    re.compile(r"([〇零○Ｏ一二三四五六七八九]{4})\s*年\s*([一二三四五六七八九十]{1,2})\s*月\s*([一二三四五六七八九十]{1,3})\s*日"),
    re.compile(r"(?<!\d)(\d{4})[-./](\d{1,2})[-./](\d{1,2})(?!\d)"),
]
# 机关代字 + 〔年份〕 + 序号: 沪府办发〔2025〕3号, 财税[2020]8号, 人社部发【2020】11号 ...
_BRACKET_NO = re.compile(rf"([{_CJK}]{{1,12}})\s*[〔\[［【（(]\s*((?:19|20)\d{{2}})\s*[〕\]］】）)]\s*(\d+)\s*号")
_ANNOUNCE_NO = re.compile(rf"(?:[{_CJK}]{{2,15}}[ \u3000]+){{0,4}}[{_CJK}]{{2,20}}公告\s*(?:19|20)\d{{2}}\s*年\s*第\s*\d+\s*号")
_ORDER_NO = re.compile(rf"[{_CJK}]{{2,20}}令\s*第\s*[\d一二三四五六七八九十百零〇]+\s*号")
# words that precede a cited 文号 in running text but never belong to it
_LEAD_WORDS = re.compile(r"^.*(?:根据|依据|按照|参照|印发|转发|贯彻|落实|执行|和|及|与|的|见|将)")

_TYPES = sorted("通知 意见 通告 公告 决定 办法 规定 条例 方案 批复 函 报告 请示 纪要 工作要点 指南 法 "
                "通报 细则 规划 决议".split(), key=len, reverse=True)
_ABOUT_RE = re.compile(r"[^。，；：！？\s]{0,30}关于[^。\n]{1,100}?的(?:通知|意见|通告|公告|决定|办法|规定|方案|批复|函|报告|请示|纪要)")
_ORG_RE = re.compile(rf"[{_CJK}（）()]{{1,38}}(?:局|厅|委员会|委|部|办公室|政府|院|中心|办|署|会|处|司|室|组|所|行)")
_HR_RE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,})$")


def _dates(text: str) -> list[tuple[int, int, str]]:
    """(start, end, YYYY-MM-DD) of every valid date in text, in order."""
    text = text.translate(_FULLWIDTH_DIGITS)  # same length, so offsets stay valid
    found = []
    for i, rx in enumerate(_DATE_RES):
        for m in rx.finditer(text):
            y, mo, d = m.groups()
            if i == 1:
                y, mo, d = "".join(str(_CN_DIGIT[c]) for c in y), cn_to_int(mo), cn_to_int(d)
            try:
                found.append((m.start(), m.end(), _dt.date(int(y), int(mo), int(d)).isoformat()))
            except ValueError:
                pass
    return sorted(found)


def parse_cn_date(s: str) -> str | None:
    found = _dates(s)
    return found[0][2] if found else None


def _doc_numbers(text: str) -> list[tuple[int, str]]:
    found = []
    for m in _BRACKET_NO.finditer(text):
        prefix = _LEAD_WORDS.sub("", m.group(1))
        if prefix:
            found.append((m.end(1) - len(prefix), f"{prefix}〔{m.group(2)}〕{m.group(3)}号"))
    for rx in (_ANNOUNCE_NO, _ORDER_NO):
        for m in rx.finditer(text):
            value = _LEAD_WORDS.sub("", re.sub(r"[ \u3000]+", " ", m.group(0))).strip()
            if value:
                found.append((m.start(), value))
    return sorted(found)


def find_doc_number(text: str) -> str | None:
    found = _doc_numbers(text.translate(_FULLWIDTH_DIGITS))
    if not found:
        return None
    head = [value for pos, value in found if pos < 400]
    lines = {re.sub(r"[\s\u3000]+", "", ln) for ln in text.translate(_FULLWIDTH_DIGITS).splitlines()}
    # the document's own 文号 sits alone on its line; an earlier one may be a citation
    own = [v for v in head if v.replace(" ", "") in lines]
    return (own or head or [found[0][1]])[0]


def _clean(line: str) -> str:
    line = re.sub(r"^#{1,6}\s*", "", line.strip()).replace("**", "")
    return re.sub(r"[ \t\u3000\xa0]+", " ", line).strip()


def _is_header_noise(line: str) -> bool:
    """红头/文号/日期 lines that can precede the title."""
    return len(line) <= 30 and (bool(find_doc_number(line)) or bool(parse_cn_date(line)) or line.endswith("文件"))


def _find_title(lines: list[str], text: str) -> str | None:
    body = [ln for ln in lines[:6] if not _is_header_noise(ln) and not ln.startswith("|")]   # nor a table row
    if body and len(body[0]) <= 60:
        first = body[0]
        # long 公文 titles wrap: "……关于印发《……》的" + "通知"
        if "关于" in first and len(body) > 1 and not _doc_type(first) and _doc_type(body[1]) \
                and len(first + body[1]) <= 80 and not re.search(r"[。；]", body[1]):
            return first + body[1]
        return first
    m = _ABOUT_RE.search(text[:300])
    return m.group(0) if m else None


def lead_title(text: str, max_chars: int = 30) -> str:
    """A readable name for a document that states no title (a .jsonl line of a news or policy corpus): its
    opening clause, cut at max_chars with an ellipsis — citations then read 《广西多项措施保障“菜篮子”…》, not
    the file's name 《corpus》."""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    clause = re.split(r"[。！？；：，,;:!?]|\s{1,}(?=\S{8,})", first, maxsplit=1)[0].strip()
    clause = clause or first
    return clause if len(clause) <= max_chars else clause[:max_chars].rstrip() + "…"


def _doc_type(title: str) -> str | None:
    t = re.sub(r"[（(][^（()）]*[）)]$", "", title.strip()).strip("《》「」“”\"")  # drop （试行）/（征求意见稿）
    for word in _TYPES:
        if t.endswith(word) and not (word == "法" and t.endswith("方法")):
            return "法律" if word == "法" else word
    return None


def _orgs(line: str) -> str | None:
    """'上海市数据局 上海市财政局' -> '上海市数据局、上海市财政局' when every token is an organisation."""
    tokens = [t for t in re.split(r"[\s、]+", line) if t]
    if tokens and len(line) <= 40 and all(_ORG_RE.fullmatch(t) and not re.search("转发|印发|关于|的", t) for t in tokens):
        return "、".join(tokens)
    return None


def extract_metadata(text: str, title_hint: str | None = None) -> dict[str, str]:
    lines = [ln for ln in map(_clean, text.replace("\r\n", "\n").split("\n")) if ln and not _HR_RE.match(ln)]
    joined = "\n".join(lines)
    meta: dict[str, str] = {}

    title = title_hint.strip() if title_hint and title_hint.strip() else _find_title(lines, joined)
    if title:
        meta["title"] = title
    if number := find_doc_number(joined):
        meta["doc_number"] = number

    # Signature date: the last date near the end, preferring one not followed by 印(发),
    # which marks the 版记 printing date rather than the 成文日期.
    dates = _dates(joined)
    tail = [d for d in dates if d[1] >= len(joined) - 200]
    signed = [d for d in tail if not joined.startswith("印", d[1])] or tail
    date = signed[-1] if signed else (dates[0] if dates else None)
    if date:
        meta["date"] = date[2]

    agency = None
    if signed:  # organisations on the date line before the date, else on the lines just above it
        row = joined.count("\n", 0, date[0])
        line_start = joined.rfind("\n", 0, date[0]) + 1
        agency = _orgs(joined[line_start:date[0]])
        above = []
        for line in reversed(lines[max(0, row - 3):row] if not agency else []):
            if not (org := _orgs(line)):
                break
            above.insert(0, org)
        agency = agency or "、".join(above) or None
    if not agency and title and "关于" in title:
        agency = _orgs(title.split("关于", 1)[0])
    if not agency and (m := re.match(r"\s*(\S[^\n]{1,40}?)\s+(?:关于|印发|转发)", joined)):
        # the opening names the issuer before the title ("遂宁市人民政府办公室 印发《…》的通知"), where no signature
        # near the end does (flattened text)
        agency = _orgs(m.group(1))
    if agency:
        meta["agency"] = agency

    if title and (doc_type := _doc_type(title)):
        meta["doc_type"] = doc_type
    return meta


# -- the metadata passage: one chunk per document stating its 文件信息, so "哪个单位哪天印发的" is answerable -----
META_HEADING = "文件信息"
META_PASSAGE = "metadata"          # chunk metadata["passage"] of that chunk


def _cn_date(iso: str) -> str:
    try:
        d = _dt.date.fromisoformat(str(iso)[:10])
    except ValueError:
        return str(iso)
    return f"{d.year}年{d.month}月{d.day}日"


def metadata_passage_prefix(title: str) -> str:
    return f"《{title.strip('《》')}》{META_HEADING}。"


def metadata_passage(meta: dict) -> str | None:
    """The document's 标题, 文号, 发文机关, 成文日期 (施行日期), 文种 and 效力状态 as one Chinese passage, known fields only;
    None when none of 文号 / 发文机关 / 日期 is known (a title and a status alone answer nothing new)."""
    title = str(meta.get("title") or "").strip()
    number, agency, date = (str(meta.get(k) or "").strip() for k in ("doc_number", "agency", "date"))
    if not title or not (number or agency or date):
        return None
    is_law = bool(meta.get("law"))
    fields = []
    if number:
        fields.append(f"文号（发文字号）：{number}")
    if agency:
        fields.append(f"{'制定机关' if is_law else '发文机关'}（{'发布' if is_law else '印发'}单位）：{agency}")
    if date:
        fields.append(f"公布日期：{_cn_date(date)}" if is_law else f"成文日期（印发日期）：{_cn_date(date)}")
    if meta.get("effective_date"):
        fields.append(f"施行日期：{_cn_date(str(meta['effective_date']))}")
    if meta.get("doc_type"):
        fields.append(f"文种：{meta['doc_type']}")
    if meta.get("status"):
        fields.append(f"效力状态：{meta['status']}")
    text = metadata_passage_prefix(title) + "；".join(fields) + "。"
    if agency or date:
        verb = "公布" if is_law else "印发"
        who = f"由{agency}" if agency else ""
        when = f"于{_cn_date(date)}" if date else ""
        text += f"本{'法' if is_law and str(meta.get('doc_type', '')) == '法律' else '文件'}{who}{when}{verb}。"
    return text
