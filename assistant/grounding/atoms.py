"""Factual atoms of Chinese government text and their normal forms: the unit the verifier checks an answer against
its evidence by.

Kinds: amount (元/万元/亿元 → value in 元), percent, date (year / year-month / full date), number (a quantity with
its unit word, or a bare Arabic number), doc_number (文号), article (第X条), document (《…》), place, agency.
Normal forms make 10亿元 = 100000万元, 二〇二五年三月十日 = 2025年3月10日, 沪数据〔2025〕3号 = 沪数据[2025]3号,
第二十三条 = 第23条, 全角 = 半角. Names are compared by containment in the normalized evidence text.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from assistant.text_heuristics import name_variants, word_list

_CN_DIGIT = {"零": 0, "〇": 0, "○": 0, "Ｏ": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
             "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10**4, "亿": 10**8}
CN_NUM = "零〇○一二两三四五六七八九十百千万亿"
_NUM = rf"(?:\d+(?:\.\d+)?|[{CN_NUM}]+)"

# quantity words after a number: what makes "3" a figure ("3个工作日", "120家", "5项")
_QUANTITY_UNITS = ("个工作日", "工作日", "个月", "周岁", "小时", "分钟", "平方米", "平方公里", "公里", "千瓦", "万人次",
                   "人次", "户", "人", "家", "项", "件", "次", "个", "所", "岁", "天", "日", "年", "月", "周", "倍", "批",
                   "条", "款", "类", "种", "台", "套", "张", "份", "名", "座", "吨", "米", "元", "GB", "G", "M", "T")
_AMOUNT = re.compile(rf"({_NUM})\s*(万亿|千亿|百亿|亿|千万|百万|十万|万|千)?\s*(元|块钱)")
_PERCENT = re.compile(rf"(\d+(?:\.\d+)?)\s*%|百分之([{CN_NUM}点]+)|(\d+(?:\.\d+)?)\s*个百分点")
_DATE = re.compile(rf"([12]\d{{3}}|[一二〇○零][{CN_NUM}]{{3}})\s*年(?:\s*({_NUM})\s*月(?:\s*({_NUM})\s*日)?)?")
_ISO_DATE = re.compile(r"(?<!\d)([12]\d{3})[-./]([01]?\d)[-./]([0-3]?\d)(?!\d)")
_DOC_NUMBER = re.compile(r"([\u4e00-\u9fa5]{1,12})[〔\[【（(]\s*([12]\d{3})\s*[〕\]】）)]\s*(\d+)\s*号")
_ARTICLE = re.compile(rf"第\s*({_NUM})\s*(条|款|项|章|节)")
_DOCUMENT = re.compile(r"《([^《》\n]{2,60})》")
_QUANTITY = re.compile(rf"({_NUM})\s*({'|'.join(map(re.escape, _QUANTITY_UNITS))})")
_BARE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)(?![\d.])")
# agency: a place then an organ name ("深圳市政务服务数据管理局", "河南省人民政府办公厅")
_PLACE_SUFFIX = "省|市|自治区|自治州|特别行政区|县|区|州|盟|旗"
_AGENCY = re.compile(rf"((?:[\u4e00-\u9fa5]{{2,7}}?(?:{_PLACE_SUFFIX}))[\u4e00-\u9fa5]{{1,14}}?"
                     r"(?:委员会|办公厅|办公室|人民政府|政府|管理局|局|厅|委|署|中心|法院|检察院)(?:办公厅|办公室)?)")
_PROVINCES = tuple("北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 海南 四川 贵州 "
              "云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门".split())
# words that end like a place but are not one (本市, 全省 …): never a constraint, never an atom
_NOT_PLACES = frozenset("本市 全市 该市 各市 城市 超市 上市 本省 全省 各省 外省 该省 本区 全区 辖区 社区 园区 景区 小区 城区 "
                        "郊区 地区 片区 街区 市区 营区 新区 本县 全县 各县 各区 各地区 全国 本地 外地 港澳台 省市 省区 地市 "
                        "县区 区县 市县 县市 开发区 示范区 自贸区 试验区 保税区 功能区 行政区 自治区 特别行政区".split())


@dataclass(frozen=True)
class Atom:
    kind: str      # amount | percent | date | number | doc_number | article | document | place | agency
    text: str      # as written
    key: str       # normal form; for names the normalized text looked for in the evidence

    @property
    def is_figure(self) -> bool:
        return self.kind in ("amount", "percent", "number", "date")


def normalize(text: str) -> str:
    """Full width → half width (NFKC), no whitespace, one bracket style for 文号 and quotes."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"\s+", "", text)
    return text.translate(str.maketrans("〔【〕】", "[[]]"))


def cn_to_int(s: str) -> int | None:
    """Chinese numerals → int: 二〇二五 → 2025 (digit by digit), 二十三 → 23, 一百二十万 → 1200000; Arabic pass."""
    s = s.strip()
    if not s:
        return None
    if s.isdigit():
        return int(s)
    if all(ch in _CN_DIGIT for ch in s):
        return int("".join(str(_CN_DIGIT[ch]) for ch in s)) if len(s) > 1 else _CN_DIGIT[s]
    total, section, digit = 0, 0, None
    for ch in s:
        if ch in _CN_DIGIT:
            digit = _CN_DIGIT[ch]
        elif ch in _CN_UNIT:
            section += (1 if digit is None else digit) * _CN_UNIT[ch]
            digit = None
        elif ch in _CN_BIG:
            section += digit or 0
            total = (total + section) * _CN_BIG[ch] if ch == "亿" else total + section * _CN_BIG[ch]
            section, digit = 0, None
        else:
            return None
    return total + section + (digit or 0)


def to_decimal(s: str) -> Decimal | None:
    s = s.strip()
    try:
        return Decimal(s)
    except InvalidOperation:
        n = cn_to_int(s)
        return Decimal(n) if n is not None else None


def _fmt(d: Decimal) -> str:
    d = d.normalize()
    return format(d, "f") if d == d.to_integral() or d.as_tuple().exponent < 0 else str(d)


_MULT = {None: 1, "千": 10**3, "万": 10**4, "十万": 10**5, "百万": 10**6, "千万": 10**7, "亿": 10**8, "百亿": 10**10,
         "千亿": 10**11, "万亿": 10**12}


def _percent_value(m: re.Match) -> Decimal | None:
    if m.group(1) or m.group(3):
        return to_decimal(m.group(1) or m.group(3))
    whole, _, frac = m.group(2).partition("点")
    value = to_decimal(whole)
    if value is None:
        return None
    if frac:
        return Decimal(f"{int(value)}." + "".join(str(_CN_DIGIT.get(ch, 0)) for ch in frac))
    return value


def _spans_overlap(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < e and s < span[1] for s, e in taken)


_SPACED_LIST_NUMBER = re.compile(r"(?<![\d.])(\d{1,2}[.．])(?=[ \t\u3000]+\S)")
_MASK = "\ue000"      # a private-use character: no atom pattern reads it


def extract_atoms(text: str, names: bool = True) -> list[Atom]:
    """Atoms in reading order of kind; a span claimed by a more specific kind (a date, an amount) is not counted
    again as a bare number. Citation markers [n] and list numbers ("1." "（一）" at a line start) are not atoms."""
    return [a for a, _ in atom_spans(text, names)]


def atom_spans(text: str, names: bool = True) -> list[tuple[Atom, tuple[int, int]]]:
    """extract_atoms with where each atom sits in normalize(text)."""
    # "1. 1个月房租免收": a list number written with a space after its point, which normalize() would join into
    # 1.1个月 (a decimal never has one); masked with as many placeholder characters, so spans stay normalize(text)'s
    t = normalize(_SPACED_LIST_NUMBER.sub(lambda m: _MASK * len(m.group(1)), text))
    t = re.sub(r"\[\d{1,2}\]", lambda m: " " * len(m.group(0)), t)          # citation markers, same length
    t = re.sub(r"(?m)^(\s*)(\d{1,2}[.、]|\(\d{1,2}\)|[(（]?[一二三四五六七八九十]+[)）、])",
               lambda m: m.group(1) + " " * len(m.group(2)), t)                 # list numbering
    atoms: list[tuple[Atom, tuple[int, int]]] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, m: re.Match, key: str | None) -> None:
        if key is None or _spans_overlap(m.span(), taken):
            return
        taken.append(m.span())
        atoms.append((Atom(kind, m.group(0), key), m.span()))

    for m in _DOC_NUMBER.finditer(t):
        add("doc_number", m, f"{m.group(1)[-2:]}[{m.group(2)}]{int(m.group(3))}号")   # issuer's last 2 characters
    for m in _DOCUMENT.finditer(t):
        add("document", m, document_key(m.group(1)))
    for m in _AMOUNT.finditer(t):
        v = to_decimal(m.group(1))
        add("amount", m, None if v is None else f"amount:{_fmt(v * _MULT[m.group(2)])}")
    for m in _PERCENT.finditer(t):
        v = _percent_value(m)
        add("percent", m, None if v is None else f"percent:{_fmt(v)}")
    for m in _ISO_DATE.finditer(t):
        add("date", m, f"date:{int(m.group(1))}-{int(m.group(2))}-{int(m.group(3))}")
    for m in _DATE.finditer(t):
        y = cn_to_int(m.group(1))
        mo, d = (cn_to_int(m.group(2)) if m.group(2) else None), (cn_to_int(m.group(3)) if m.group(3) else None)
        if y is None or not 1900 <= y <= 2100 or (mo is not None and not 1 <= mo <= 12):
            continue
        add("date", m, f"date:{y}" + (f"-{mo}" if mo else "") + (f"-{d}" if mo and d else ""))
    for m in _ARTICLE.finditer(t):
        v = cn_to_int(m.group(1))
        add("article", m, None if v is None else f"article:{v}{m.group(2)}")
    for m in _QUANTITY.finditer(t):
        raw = m.group(1)
        if not raw[0].isdigit() and (cn_to_int(raw) in (None, 1) or raw in ("千", "万", "亿")):
            continue     # 一个 / 一项 / 万人 read as words, not figures
        v = to_decimal(raw)
        add("number", m, None if v is None else f"number:{_fmt(v)}")
    for m in _BARE.finditer(t):
        add("number", m, f"number:{_fmt(Decimal(m.group(1)))}")
    if names:
        for kind, span, name in _names(t):
            if not _spans_overlap(span, taken):
                atoms.append((Atom(kind, name, name_key(name)), span))
    return atoms


def document_key(title: str) -> str:
    return normalize(title).removeprefix("中华人民共和国")


def name_key(name: str) -> str:
    """A place is looked for without its 省/市 suffix (上海市 ↔ 上海), an agency as written."""
    name = normalize(name)
    for suffix in ("特别行政区", "自治区", "自治州", "省", "市"):
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


@lru_cache(maxsize=4096)
def _places(text: str) -> tuple[tuple[str, int], ...]:
    """Place names (jieba's ns tag), kept when they end like an administrative area or are a province; and the
    administrative divisions of admin_divisions.txt jieba tags otherwise (东营市 and 铁岭市 come out as plain nouns)."""
    import jieba.posseg as pseg

    out, pos = [], 0
    for w in pseg.cut(text):
        word, flag = w.word, w.flag
        start = text.find(word, pos)
        pos = start + len(word) if start >= 0 else pos
        if flag != "ns" or word in _NOT_PLACES or len(word) < 2:
            continue
        if re.search(rf"(?:{_PLACE_SUFFIX})$", word) or word in _PROVINCES:
            out.append((word, start))
    taken = [(start, start + len(word)) for word, start in out]
    names, lengths = _divisions()
    i = 0
    while i < len(text):
        word = next((text[i:i + n] for n in lengths if text[i:i + n] in names), None)
        # "中山市场" is a market; a division inside a name jieba found (东营区 in 东营区政府) is that name
        if word is None or text[i + len(word):i + len(word) + 1] == "场" or \
                _spans_overlap((i, i + len(word)), taken):
            i += 1
            continue
        out.append((word, i))
        i += len(word)
    return tuple(sorted(out, key=lambda x: x[1]))


@lru_cache(maxsize=1)
def _divisions() -> tuple[frozenset[str], tuple[int, ...]]:
    """The names of admin_divisions.txt and their lengths, longest first (a scan tries 内蒙古自治区 before 内蒙古)."""
    from pathlib import Path

    names = frozenset(word_list(Path(__file__).with_name("admin_divisions.txt")))
    return names, tuple(sorted({len(n) for n in names}, reverse=True))


def _names(t: str) -> list[tuple[str, tuple[int, int], str]]:
    out: list[tuple[str, tuple[int, int], str]] = []
    taken: list[tuple[int, int]] = []
    place_starts = {start for _, start in _places(t)}
    for m in _AGENCY.finditer(t):
        # the regex's place part may begin inside the sentence ("工作要点是上海市…"): start the name where a place
        # name (jieba ns, or a province) starts, and skip the match when none does
        cut = next((i for i in range(len(m.group(1)) - 2)
                    if m.start() + i in place_starts or m.group(1)[i:].startswith(_PROVINCES)), None)
        if cut is None:
            continue
        name, span = m.group(1)[cut:], (m.start() + cut, m.end())
        place = re.match(rf"[\u4e00-\u9fa5]{{2,7}}?(?:{_PLACE_SUFFIX})", name)
        if place is None or place.group(0) in _NOT_PLACES:
            continue
        out.append(("agency", span, name))
        taken.append(span)
    for word, start in _places(t):
        span = (start, start + len(word))
        if not _spans_overlap(span, taken):
            out.append(("place", span, word))
    return out


def has_figure(text: str) -> bool:
    """True when the text states a figure: an amount, a percentage, a quantity with its unit, a number or a date."""
    return any(a.is_figure for a in extract_atoms(text, names=False))


@dataclass
class Evidence:
    """The normalized text of some passages and the keys of their atoms, with every coarser date they imply
    (2025年3月10日 supports 2025年3月 and 2025年) and every amount read also as a bare number in its unit."""
    text: str
    keys: frozenset[str]

    @classmethod
    def of(cls, *texts: str) -> "Evidence":
        joined = "\n".join(t for t in texts if t)
        keys: set[str] = set()
        for a in extract_atoms(joined, names=False):
            keys.add(a.key)
            if a.kind == "date":
                parts = a.key.removeprefix("date:").split("-")
                keys.update("date:" + "-".join(parts[:i]) for i in range(1, len(parts)))
                keys.add(f"number:{parts[0]}")
            elif a.kind in ("amount", "number", "percent", "article"):
                m = re.match(rf"({_NUM})", normalize(a.text))
                v = to_decimal(m.group(1)) if m else None
                if v is not None:
                    keys.add(f"number:{_fmt(v)}")
        return cls(normalize(joined), frozenset(keys))

    def supports(self, atom: Atom) -> bool:
        if atom.kind == "agency" and ((rest := city_agency(atom.key)) and rest in self.text
                                      or names_agency_apart(atom.key, self.text)
                                      or any(v in self.text for v in name_variants(atom.key))):
            return True
        if atom.kind in ("document", "place", "agency"):
            return atom.key in self.text or atom.key in self.text.replace("中华人民共和国", "")
        if atom.kind == "doc_number":
            return atom.key in self.keys
        if atom.kind == "number":
            return atom.key in self.keys or normalize(atom.text) in self.text
        return atom.key in self.keys


_CITY_START = re.compile(r"^[\u4e00-\u9fa5]{1,6}?(?:市|州|县|盟|地区)(?=[\u4e00-\u9fa5]{2})")


def city_agency(name: str) -> str | None:
    """A city's agency without its province ("甘肃省平凉市政务服务中心" → "平凉市政务服务中心"): documents name their
    own agencies so. None unless a city-level place follows the province (a province's own organs stay whole)."""
    for prov in _PROVINCES:
        if name.startswith(prov):
            rest = re.sub(r"^(?:省|市|自治区|壮族自治区|回族自治区|维吾尔自治区|特别行政区)", "", name[len(prov):])
            return rest if _CITY_START.match(rest) else None
    return None


_LEADING_PLACE = re.compile(rf"^[\u4e00-\u9fa5]{{2,7}}?(?:{_PLACE_SUFFIX})")


def agency_parts(name: str) -> tuple[list[str], str]:
    """The places an agency's name starts with and the organ after them: "甘肃省平凉市政务服务中心" → ([甘肃省, 平凉市],
    政务服务中心)."""
    places = []
    while (m := _LEADING_PLACE.match(name)) and len(name) - m.end() >= 2:
        places.append(m.group(0))
        name = name[m.end():]
    return places, name


def names_agency_apart(name: str, text: str) -> bool:
    """The text names every place of the agency (without 省/市) and its organ, the organ not under another place:
    "甘肃政务服务网平凉子站 … 市区政务服务中心" names 甘肃省平凉市政务服务中心, and "福建省人力资源和社会保障厅办公室转发人力资源
    和社会保障部办公厅" the question's "福建省人力资源和社会保障部办公厅"; "河北省人民政府 … 河南" does not name 河南省人民政府."""
    places, organ = agency_parts(name)
    if not places or len(organ) < 4 or not all(name_key(p) in text for p in places):
        return False
    for m in re.finditer(re.escape(organ), text):
        before = text[max(0, m.start() - 8):m.start()]
        under = re.search(rf"(?:{_PLACE_SUFFIX})$", before)
        if not under or before.endswith(tuple(places)) or before.endswith(tuple(_NOT_PLACES)):
            return True
    return False


def unsupported_atoms(text: str, evidence: "str | Evidence") -> list[Atom]:
    """The atoms of `text` that the evidence does not state (empty: every figure and name is in the evidence)."""
    ev = evidence if isinstance(evidence, Evidence) else Evidence.of(evidence)
    return [a for a in extract_atoms(text) if not ev.supports(a)]


# --- a figure stated for a year must be stated for that year ------------------------------------------------
# "2022年特斯拉交付量为93.62万辆" from "以特斯拉2021年的全球交付量93.62万辆计算": both atoms are in the passage, bound
# to different years. A figure's year is the nearest year before it in its sentence; a year compared against
# ("比2020年增长") is not the figure's own.
_CLAUSE_END = re.compile(r"[。！？!?；;\n]")
_LAST_YEAR = re.compile(r"(?:去年|上年|前年|上一年|同期)(?:的|为|是|达|共)?$")
_COMPARED = re.compile(r"(?:比|较|同比|相比|对比|与|和|及|至|到|—|-|~|～)$")


def _sentence_bounds(t: str, pos: int) -> tuple[int, int]:
    start = max((m.end() for m in _CLAUSE_END.finditer(t, 0, pos)), default=0)
    end = m.start() if (m := _CLAUSE_END.search(t, pos)) else len(t)
    return start, end


def _year_before(t: str, spans: list[tuple[Atom, tuple[int, int]]], pos: int) -> int | None:
    start, _ = _sentence_bounds(t, pos)
    years = [(s, int(a.key.split(":")[1].split("-")[0])) for a, (s, e) in spans
             if a.kind == "date" and start <= s and e <= pos and not _COMPARED.search(t[max(s - 2, 0):s])]
    return max(years)[1] if years else None


def year_mismatches(text: str, evidence_text: str) -> list[str]:
    """The figures of `text` bound to a year (2022年…93.62万辆) that the evidence states only for other years
    ("2022年≠2021年: 93.62万辆"). A figure the evidence states with no year in its sentence, or for the same year,
    passes; so does a figure the evidence does not hold at all (the atom check judges that)."""
    t = normalize(text)
    own = atom_spans(text, names=False)
    figures = [(a, span) for a, span in own if a.kind in ("amount", "percent", "number")]
    if not figures:
        return []
    ev = normalize(evidence_text)
    ev_spans = atom_spans(evidence_text, names=False)
    out = []
    for a, (s, _) in figures:
        year = _year_before(t, own, s)
        if year is None:
            continue
        # "相比去年同期的205亿美元": a figure said right after 去年 / 上年 / 同期 is that other year's
        found = [-1 if _LAST_YEAR.search(ev[max(es - 6, 0):es]) else _year_before(ev, ev_spans, es)
                 for b, (es, _) in ev_spans if b.key == a.key]
        if found and all(y is not None and y != year for y in found):
            said = "/".join("上年" if y == -1 else f"{y}年" for y in sorted(set(found)))
            out.append(f"{year}年≠{said}：{a.text}")
    return out
