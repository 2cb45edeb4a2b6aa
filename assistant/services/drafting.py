"""Collaborative office (一网协同): draft 公文 grounded in the knowledge base, polish text, extract action items.

The LLM writes only what needs writing (the body of a draft, a polished paragraph, candidate action rows);
everything with a fixed form is done by code: the GB/T 9704 element order (标题, 主送机关, 正文, 落款, 成文日期),
the date, the citation list, the AI-generated label, and the checks that bound a small model's mistakes
(numbers kept when polishing; no 责任单位 that the source text does not contain).
"""
from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import asdict, replace
from typing import Callable

from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate

from assistant.answering import Citation, build_context, citation_label, is_refusal
from assistant.components.llm import StructuredOutputError, invoke_json
from assistant.components.store.catalog import Catalog
from assistant.filters import Filters
from assistant.grounding.atoms import Evidence
from assistant.grounding.verify import mark_unsupported
from assistant.prompts import load_prompt
from assistant.retrieval import HybridSearcher
from assistant.services.access import Principal, scope
from assistant.settings import Settings
from assistant.text_heuristics import ORG_SUFFIXES, bigrams, containment

# 文种 -> its guidance file prompts/draft_<name>.md
DOC_TYPES = {"通知": "notice", "请示": "request", "报告": "report", "函": "letter", "会议纪要": "minutes"}
MAX_TOPIC_CHARS = 200
MAX_REQUIREMENTS_CHARS = 2000
MAX_NAME_CHARS = 200
MAX_POLISH_CHARS = 6000
MAX_EXTRACT_CHARS = 20000
POLISH_PIECE_CHARS = 600        # one LLM call per piece: a 2,048-token slot holds the prompt, the piece and its rewrite
EXTRACT_SEGMENT_CHARS = 1200
EXTRACT_MAX_SEGMENTS = 4        # beyond this the rule-based rows stand alone (bounded time on a CPU)
UNSPECIFIED = "未明确"
BODY_MISSING = "〔正文未生成，请补充起草要求或选择参考文件后重试〕"

_CITE = re.compile(r"\[(\d{1,2})\]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CN_DATE = re.compile(r"(\d{4})\s*[年\-./]\s*(\d{1,2})\s*[月\-./]\s*(\d{1,2})\s*日?")
_PUNCT = "，。；：、！？,.;:!?（）()《》“”\"'【】[]〔〕 \t\n"


# ----------------------------------------------------------------------------------------------------------------
# small text helpers

def chinese_date(value: str | dt.date | None = None) -> str:
    """2026年11月25日 (no zero padding, as 成文日期 are written); accepts 2025-03-18, 2025年3月18日 or a date."""
    if value is None or value == "":
        value = dt.date.today()
    if isinstance(value, dt.date):
        return f"{value.year}年{value.month}月{value.day}日"
    m = _CN_DATE.fullmatch(str(value).strip())
    if not m:
        raise ValueError(f"date: cannot read {value!r}; use YYYY-MM-DD or YYYY年M月D日")
    y, mo, d = (int(g) for g in m.groups())
    try:
        dt.date(y, mo, d)
    except ValueError as exc:
        raise ValueError(f"date: {value!r} is not a valid date") from exc
    return f"{y}年{mo}月{d}日"


def _strip_markdown(text: str) -> str:
    text = re.sub(r"^```[a-zA-Z]*\s*$", "", text, flags=re.M)
    text = re.sub(r"^\s*#{1,6}\s*", "", text, flags=re.M)
    return text.replace("**", "").replace("［", "[").replace("］", "]")


def _split_pieces(text: str, limit: int) -> list[tuple[str, str]]:
    """Cut text into pieces of at most `limit` characters at paragraph ends, else at sentence ends.
    Returns (separator, piece) pairs: "".join(sep + piece) gives the text back."""
    units: list[tuple[str, str]] = []       # (separator before, text); "\n" starts a paragraph
    for i, para in enumerate(text.split("\n")):
        sep = "\n" if i else ""
        if len(para) <= limit:
            units.append((sep, para))
            continue
        for j, sentence in enumerate(re.findall(r"[^。！？；]*[。！？；]+|[^。！？；]+$", para)):
            for k in range(0, len(sentence), limit):    # a sentence longer than a piece: hard cut
                units.append((sep if j == k == 0 else "", sentence[k:k + limit]))
    pieces: list[tuple[str, str]] = []
    for sep, unit in units:
        if pieces and len(pieces[-1][1]) + len(sep) + len(unit) <= limit:
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + sep + unit)
        else:
            pieces.append((sep, unit))
    return pieces


# ----------------------------------------------------------------------------------------------------------------
# action items: rules for the explicit patterns 公文 use, plus the model's rows (JSON schema)

_LABELS = {"责任单位": "unit", "责任部门": "unit", "牵头单位": "lead", "牵头部门": "lead", "配合单位": "help",
           "配合部门": "help", "完成时限": "due", "完成时间": "due", "时间节点": "due", "时限要求": "due",
           "办结时限": "due"}
_LABEL_RE = re.compile(rf"({'|'.join(sorted(_LABELS, key=len, reverse=True))})\s*[：:]\s*([^。；;\n]*)")
_LABEL_LINE = re.compile(rf"^[\s（(]*(?:{'|'.join(_LABELS)})\s*[：:]")
_ITEM_HEAD = re.compile(r"^\s*(?:[（(][一二三四五六七八九十\d]+[）)]|[一二三四五六七八九十]+、|\d+\s*[.．、])\s*"
                        r"([^。：:；;，,\n]{2,24})[。：:]")
_NUMBERING = re.compile(r"^\s*(?:[（(][一二三四五六七八九十\d]+[）)]|[一二三四五六七八九十]+、|\d+\s*[.．、]|[-*•·])\s*")
_DEADLINE = re.compile(r"(?:\d{4}年)?\d{1,2}月(?:\d{1,2}日|底|末|上旬|中旬|下旬)?(?:前|之前|以前)"
                       r"|\d{4}年(?:底|末|年底)(?:前|之前)?")
_SUBJECT = re.compile(r"^([^，。；：,;:]{2,40}?)(?:要|应当|应|须|必须|负责|牵头|会同|于|在|务必|抓紧)")
_PARTNER = re.compile(r"会同([^，。；,;]{2,30}?)(?:在|于|，|,|共同|开展|完成|做好|制定|编制|对)")
_UNIT_SPLIT = re.compile(r"[、，,；;/\s]+")


def _clean_unit(part: str) -> str:
    return re.sub(r"[（(](?:牵头|配合|主责|负责)[）)]", "", part).strip(_PUNCT)


def _units(value: str) -> list[str]:
    return [u for u in (_clean_unit(p) for p in _UNIT_SPLIT.split(value or "")) if u]


def _source_units(value: str, source: str) -> list[str]:
    """The parts of a 责任单位 value that literally occur in the source text (nothing invented survives)."""
    compact = re.sub(r"\s+", "", source)
    return [u for u in _units(value) if u in compact]


def _is_org(part: str) -> bool:
    return bool(part) and len(part) <= 30 and (part.startswith("各") or part.endswith(ORG_SUFFIXES))


def _topic_of(item: str) -> str:
    """事项 of an item: its run-in heading ("（一）统一编制数据目录。…"), else its first sentence."""
    if m := _ITEM_HEAD.match(item):
        return m.group(1).strip()
    first = re.split(r"[。；;\n]", _LABEL_RE.sub("", _NUMBERING.sub("", item)).strip(), maxsplit=1)[0]
    return first.strip(_PUNCT)[:60]


def _items(text: str) -> list[tuple[int, str]]:
    """(offset, text) per item: a paragraph, with label-only lines (责任单位：…) attached to the item above."""
    items: list[tuple[int, str]] = []
    offset = 0
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped:
            if items and _LABEL_LINE.match(stripped):
                items[-1] = (items[-1][0], items[-1][1] + "\n" + stripped)
            else:
                items.append((offset, stripped))
        offset += len(line) + 1
    return items


def _table_rows(text: str) -> list[tuple[int, dict]]:
    """Rows of a 任务分工 table (markdown pipes) whose header names 事项/任务 and 责任/牵头单位."""
    out: list[tuple[int, dict]] = []
    cols: dict[str, int] | None = None
    offset = 0
    for line in text.split("\n"):
        cells = [c.strip() for c in line.strip().strip("|｜").split("|")] if line.count("|") >= 2 else []
        if len(cells) >= 2:
            if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                pass
            elif cols is None or any(h in "".join(cells) for h in ("责任单位", "牵头单位")):
                header = {}
                for i, c in enumerate(cells):
                    if re.search(r"事项|任务|工作内容|内容", c) and "topic" not in header:
                        header["topic"] = i
                    elif re.search(r"责任|牵头", c) and "unit" not in header:
                        header["unit"] = i
                    elif re.search(r"时限|时间|节点", c) and "due" not in header:
                        header["due"] = i
                cols = header if {"topic", "unit"} <= header.keys() else cols
            else:
                get = (lambda k: cells[cols[k]] if k in cols and cols[k] < len(cells) else "")
                if get("topic") and get("unit"):
                    out.append((offset, {"事项": get("topic"), "责任单位": get("unit"),
                                         "完成时限": get("due") or UNSPECIFIED}))
        else:
            cols = None
        offset += len(line) + 1
    return out


def _task_of(sentence: str, subject: re.Match, partner: re.Match | None, deadline: re.Match) -> str:
    """The task in '<单位>牵头，会同<单位>在<时限>完成<任务>': the sentence without its 单位 and 时限."""
    task = sentence[:deadline.start()] + "\0" + sentence[deadline.end():]
    if partner:
        task = task.replace(partner.group(0)[:-1], "", 1)     # "会同…" (its closing word stays)
    task = task[subject.end(1):]
    task = re.sub(r"^[\s，,]*(?:要|应当|应|须|必须|负责|牵头|会同|务必)?[\s，,]*", "", task)
    task = re.sub(r"(?:在|于)?\0[，,]?", "", task)
    task = re.sub(r"^(?:在|于)", "", task).strip(_PUNCT)
    return (task or sentence.strip(_PUNCT))[:60]


def rule_actions(text: str) -> list[dict]:
    """Rows from explicit 公文 patterns: 责任单位/牵头单位/配合单位 and 完成时限/时间节点 labels, 任务分工 tables, and
    sentences '<单位>要/应当…于2025年4月30日前…'. Each row carries `_pos`, `_span` (the text it restates) and
    `_item` (the paragraph it came from)."""
    rows: list[dict] = []
    for pos, row in _table_rows(text):
        rows.append({**row, "_pos": pos, "_span": row["事项"], "_item": ""})
    for pos, item in _items(text):
        if "|" in item:
            continue
        labels: dict[str, list[str]] = {}
        for m in _LABEL_RE.finditer(item):
            if m.group(2).strip():
                labels.setdefault(_LABELS[m.group(1)], []).append(m.group(2).strip())
        units = [u for key in ("lead", "unit", "help") for v in labels.get(key, []) for u in _units(v)]
        if units:
            due = labels.get("due", [""])[0].strip(_PUNCT) or UNSPECIFIED
            rows.append({"事项": _topic_of(item), "责任单位": "、".join(dict.fromkeys(units)), "完成时限": due,
                         "_pos": pos, "_span": item, "_item": item})
            continue
        if labels:          # a 完成时限 without any 单位: not a row of its own (the model may still find one)
            continue
        body = _NUMBERING.sub("", item)
        for sentence in re.findall(r"[^。！？；]+[。！？；]?", body):
            sentence = _NUMBERING.sub("", re.sub(r"^[^，。；：,;:]{1,10}[：:]", "", sentence.strip()))
            deadline = _DEADLINE.search(sentence)
            subject = _SUBJECT.match(sentence.strip())
            if not deadline or not subject:
                continue
            parts = _units(subject.group(1))
            partner = _PARTNER.search(sentence)
            if partner and all(_is_org(p) for p in _units(partner.group(1))):
                parts += [p for p in _units(partner.group(1)) if p not in parts]
            if parts and all(_is_org(p) for p in parts):
                head = _ITEM_HEAD.match(item)
                topic = head.group(1).strip() if head and deadline.group(0) not in head.group(1) \
                    else _task_of(sentence, subject, partner, deadline)
                rows.append({"事项": topic, "责任单位": "、".join(parts), "完成时限": deadline.group(0),
                             "_pos": pos + max(item.find(sentence), 0), "_span": sentence, "_item": item})
    rows.sort(key=lambda r: r["_pos"])
    return rows


EXTRACT_SCHEMA_ROWS = 12


def extract_schema(section_ids: list[str]) -> dict:
    """The model's rows for extract-actions: [{section, 事项, 责任单位, 完成时限}], section from the segment's ids."""
    row = {"type": "object", "additionalProperties": False, "required": ["section", "事项", "责任单位", "完成时限"],
           "properties": {"section": {"type": "string", "enum": list(section_ids)},
                          "事项": {"type": "string", "minLength": 2, "maxLength": 30},
                          "责任单位": {"type": "string", "minLength": 2, "maxLength": 60},
                          "完成时限": {"type": "string", "maxLength": 30}}}
    return {"type": "object", "additionalProperties": False, "required": ["rows"],
            "properties": {"rows": {"type": "array", "items": row, "maxItems": EXTRACT_SCHEMA_ROWS}}}


def read_action_rows(data: dict, lines: dict[str, str]) -> list[dict]:
    """The model's JSON rows → {事项, 责任单位, 完成时限, _where: the text of the line its section names}."""
    rows = []
    for r in data.get("rows") or [] if isinstance(data, dict) else []:
        if not isinstance(r, dict):
            continue
        cells = {k: r.get(k) if isinstance(r.get(k), str) else "" for k in ("事项", "责任单位", "完成时限")}
        rows.append({**{k: " ".join(v.split()) for k, v in cells.items()}, "_where": lines.get(r.get("section"), "")})
    return rows


def merge_actions(rule_rows: list[dict], model_rows: list[dict], source: str) -> list[dict]:
    """Rule rows stand; a model row that restates one of them only fills its missing 完成时限; other model rows
    are kept with their 责任单位 cut down to units that occur in the source (dropped when none do) and a 完成时限
    that is not in the source replaced by 未明确."""
    compact = re.sub(r"\s+", "", source)
    merged = [dict(r) for r in rule_rows]
    sentences = [(pos + m.start(), m.group(0)) for pos, item in _items(source)
                 for m in re.finditer(r"[^。！？；]+[。！？；]?", item)]
    for row in model_rows:
        topic = row["事项"].strip(_PUNCT)[:60]
        units = _source_units(row["责任单位"], source)
        if not topic or not units or containment(topic, source) < 0.4:
            continue        # no unit from the text, or a 事项 the text does not talk about (e.g. the prompt's example)
        due = row.get("完成时限", "").strip(_PUNCT)
        if not due or re.sub(r"\s+", "", due) not in compact:
            due = UNSPECIFIED
        twin = next((r for r in merged if set(units) & set(_units(r["责任单位"]))
                     and (containment(topic, r["_span"]) >= 0.6 or containment(topic, r["事项"]) >= 0.6)), None)
        if twin is not None:
            if twin["完成时限"] == UNSPECIFIED and due != UNSPECIFIED:
                twin["完成时限"] = due
            continue
        # placed where the text says it: the line the model named, else the sentence most like the 事项 that
        # names one of its units
        where = source.find(row["_where"]) if row.get("_where") else -1
        scored = [(containment(topic, sent), pos) for pos, sent in sentences if any(u in sent for u in units)]
        best = max(scored, default=(0.0, len(source)))
        pos = where if where >= 0 else best[1] if best[0] > 0 else len(source)
        merged.append({"事项": topic, "责任单位": "、".join(units), "完成时限": due, "_pos": pos, "_span": topic})
    merged.sort(key=lambda r: r["_pos"])
    out, seen = [], set()
    for r in merged:
        key = (r["事项"], r["责任单位"], r["完成时限"])
        if key not in seen:
            seen.add(key)
            out.append({"事项": r["事项"], "责任单位": r["责任单位"], "完成时限": r["完成时限"]})
    return out


_ACTION_CUE = re.compile(r"负责|牵头|责任|会同|要|应当|须|确保|完成|落实|报送|前|底")


# ----------------------------------------------------------------------------------------------------------------
# draft body cleaning

_META_LINE = re.compile(r"^(?:主送(?:机关)?|抄送|落款|发文机关(?:署名)?|署名|成文日期|日期|印发日期|文号|发文字号)\s*[：:]")
_DATE_LINE = re.compile(r"^[（(]?\s*(?:\d{4}|[〇零一二三四五六七八九]{4})\s*年.{1,6}月.{1,4}日\s*[）)]?$")
_ADDRESSEE = re.compile(r"^[^。；！？]{2,80}[：:]$")
_TAIL_SECTION = re.compile(r"^(?:参考依据|参考资料|参考文献|引用资料|资料来源|说明)\s*[：:]?")


def _title_line(line: str, doc_type: str) -> bool:
    """A line that reads as a 公文 title: short, names the 文种, no sentence punctuation."""
    line = line.strip().strip("《》“”\"")
    return 4 <= len(line) <= 80 and line.endswith(doc_type) and not re.search(r"[。！？；，：:]", line)


def clean_body(raw: str, title: str, issuer: str, recipients: str, n_citations: int, doc_type: str = "") -> str:
    text = _strip_markdown(raw).strip()
    if m := re.search(r"^\s*正文\s*[：:]\s*", text, flags=re.M):
        text = text[m.end():]
    lines = [ln.strip() for ln in text.split("\n")]
    body: list[str] = []
    for ln in lines:
        if _TAIL_SECTION.match(ln) or "人工智能生成" in ln or "人工智能根据" in ln:
            break
        if re.match(r"^标题\s*[：:]", ln) or _META_LINE.match(ln) or _DATE_LINE.match(ln) or " > " in ln \
                or re.match(r"^\[\d{1,2}\]\s*《[^》]+》(?:[（(][^）)]*[）)])?$", ln):
            continue    # a passage header copied from the prompt
        if ln and ln.strip("《》") == title.strip("《》"):
            continue
        body.append(ln)
    # an unlabelled title line, an addressee line before the body (主送机关 is set by code) and a signature
    # after it (落款 likewise)
    while body and not body[0]:
        body.pop(0)
    if body and doc_type and _title_line(body[0], doc_type):
        body.pop(0)
        while body and not body[0]:
            body.pop(0)
    if body and _ADDRESSEE.match(body[0]) and (recipients and body[0].rstrip("：:") == recipients.rstrip("：:")
                                                or all(_is_org(p) for p in _units(body[0].rstrip("：:")))):
        body.pop(0)
    while body and (not body[-1] or body[-1] == issuer or (len(body[-1]) <= 30 and _is_org(body[-1])
                                                           and not re.search(r"[。！？；，]", body[-1]))):
        body.pop()
    out = "\n".join(body)
    out = re.sub(r"\n{3,}", "\n\n", out).strip()
    return _CITE.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= n_citations else "", out)


def drop_unfinished_sentence(body: str) -> str:
    """A body cut off at max_tokens ends mid-sentence: keep it up to its last complete sentence."""
    body = body.rstrip()
    if not body or body[-1] in "。！？；：”）]":
        return body
    cut = max(body.rfind(ch) for ch in "。！？；")
    return body[:cut + 1].rstrip() if cut >= 0 else body


_SENTENCE = re.compile(r"[^。！？；\n]+[。！？；]?")


def attribute_citations(body: str, citations: list[Citation], threshold: float = 0.6) -> str:
    """Small models often restate a passage without its [n]: a sentence that carries no mark and whose wording
    comes mostly (≥ threshold of its character bigrams) from one passage gets that passage's mark — once per run
    of consecutive sentences from the same passage, on the last of them."""
    if not citations:
        return body
    out_lines = []
    for line in body.split("\n"):
        sentences = _SENTENCE.findall(line)
        if "".join(sentences) != line:         # nothing to gain from a line the splitter cannot rebuild
            out_lines.append(line)
            continue
        sources: list[int | None] = []
        for sentence in sentences:
            core = sentence.rstrip("。！？；")
            if _CITE.search(sentence) or len(core) < 10:
                sources.append(None)
                continue
            grams = bigrams(core)
            score, n = max((containment(core, c.text), c.n) for c in citations)
            # ≥ 8 shared bigrams: set phrases ("现将有关事项通知如下") are no restatement of a passage
            sources.append(n if score >= threshold and score * len(grams) >= 8 else None)
        for i, sentence in enumerate(sentences):
            n = sources[i]
            if n is not None and (i + 1 == len(sentences) or sources[i + 1] != n):
                core = sentence.rstrip("。！？；")
                sentences[i] = f"{core}[{n}]{sentence[len(core):]}"
        out_lines.append("".join(sentences))
    return "\n".join(out_lines)


def _default_title(topic: str, doc_type: str) -> str:
    t = topic.strip().strip("《》")
    if t.endswith(doc_type) and t.startswith("关于"):
        return t
    if t.startswith("关于"):
        return f"{t}的{doc_type}"
    return f"关于{t}的{doc_type}"


def _pick_title(raw: str, topic: str, doc_type: str) -> str:
    """The model's title when it names the 文种 and stays on the topic; else 关于{topic}的{doc_type}."""
    text = _strip_markdown(raw)
    m = re.search(r"^\s*标题\s*[：:]\s*(.+)$", text, flags=re.M)
    first = next((ln.strip() for ln in text.split("\n") if ln.strip()), "")
    candidate = m.group(1) if m else (first if _title_line(first, doc_type) else "")
    if candidate:
        t = candidate.strip().strip("《》“”\"").rstrip("。")
        if 4 <= len(t) <= 80 and t.endswith(doc_type) and not _CITE.search(t) \
                and (topic in t or containment(topic, t) >= 0.5):
            return t
    return _default_title(topic, doc_type)


# ----------------------------------------------------------------------------------------------------------------

class DraftingService:
    def __init__(self, llm: BaseChatModel | Callable[[], BaseChatModel], searcher: HybridSearcher, catalog: Catalog,
                 settings: Settings):
        self._llm = llm     # a provider defers loading the model until the first generation
        self.searcher = searcher
        self.catalog = catalog
        self.settings = settings

    @property
    def llm(self) -> BaseChatModel:
        if not isinstance(self._llm, BaseChatModel):
            self._llm = self._llm()
        return self._llm

    @staticmethod
    def _chat(name: str) -> list[tuple[str, str]]:
        """A prompt file whose parts are separated by '---' lines: system, then alternating user/assistant turns
        (a worked example), ending with the user turn that holds the input."""
        parts = [p.strip() for p in re.split(r"^---$", load_prompt(name), flags=re.M)]
        return [("system", parts[0])] + [("human" if i % 2 == 0 else "ai", p) for i, p in enumerate(parts[1:])]

    def _generate(self, messages: list[tuple[str, str]], values: dict, **bind) -> str:
        return self._generate_full(messages, values, **bind)[0]

    def _generate_full(self, messages: list[tuple[str, str]], values: dict, **bind) -> tuple[str, bool]:
        """(reply, truncated): truncated when generation stopped at max_tokens."""
        prompt = ChatPromptTemplate.from_messages(messages)
        chain = prompt | (self.llm.bind(**bind) if bind else self.llm)
        msg = chain.invoke(values)
        truncated = (getattr(msg, "response_metadata", None) or {}).get("finish_reason") == "length"
        return str(msg.content or ""), truncated

    # -- drafting ---------------------------------------------------------------------------------------------
    def _passages(self, topic: str, requirements: str, kbs: list[str], doc_ids: list[str] | None,
                  visible: Filters) -> tuple[str, list[Citation]]:
        if not kbs:
            return "", []
        query = f"{topic} {requirements[:200]}".strip()
        flt = replace(visible, doc_ids=list(doc_ids)) if doc_ids else visible
        hits = self.searcher.search(query, kbs, flt, self.settings.retrieval.top_k).hits
        if not doc_ids and not self.searcher.has_evidence(hits):
            return "", []       # nothing on the topic: the body marks facts 〔待补充〕 instead of borrowing noise
        # the label only: heading breadcrumbs and （机关，日期，效力） suffixes get copied into bodies
        return build_context(hits, self.settings.answer.max_context_chars,
                             header=lambda n, meta: f"[{n}] {citation_label(meta)}")

    def draft(self, doc_type: str, topic: str, kbs: list[str], *, principal: Principal,
              requirements: str = "", doc_ids: list[str] | None = None, issuer: str = "", recipients: str = "",
              date: str | None = None) -> dict:
        """A 公文 draft: the LLM writes the body from retrieved passages (cited [n]); title, 主送机关, 落款 and
        成文日期 are set by code in GB/T 9704 order. `kbs` may be empty (e.g. 会议纪要 from notes in `requirements`)."""
        t_start = time.perf_counter()
        doc_type = (doc_type or "").strip()
        if doc_type not in DOC_TYPES:
            raise ValueError(f"doc_type must be one of {', '.join(DOC_TYPES)}; got {doc_type!r}")
        topic = (topic or "").strip()
        if not topic:
            raise ValueError("topic is empty")
        if len(topic) > MAX_TOPIC_CHARS:
            raise ValueError(f"topic is longer than {MAX_TOPIC_CHARS} characters")
        requirements = (requirements or "").strip()
        if len(requirements) > MAX_REQUIREMENTS_CHARS:
            raise ValueError(f"requirements is longer than {MAX_REQUIREMENTS_CHARS} characters")
        issuer, recipients = (issuer or "").strip(), (recipients or "").strip().rstrip("：:")
        for name, value in (("issuer", issuer), ("recipients", recipients)):
            if len(value) > MAX_NAME_CHARS:
                raise ValueError(f"{name} is longer than {MAX_NAME_CHARS} characters")
        date_text = chinese_date(date)
        kbs, visible = scope(principal, list(kbs or []))
        for kb in kbs:
            self.catalog.require_kb(kb)
        doc_ids = [d for d in (doc_ids or []) if d]
        if doc_ids:
            if not kbs:
                raise ValueError("doc_ids given without a knowledge base")
            # a document above the principal's clearance is "not found", like a missing one
            missing = [d for d in doc_ids if not any((doc := self.catalog.get_document(kb, d)) is not None
                                                     and visible.level_ok(doc["metadata"]) for kb in kbs)]
            if missing:
                raise ValueError(f"doc_ids: not found in {', '.join(kbs)}: {', '.join(missing)}")

        t0 = time.perf_counter()
        context, citations = self._passages(topic, requirements, kbs, doc_ids, visible)
        timings = {"retrieval_ms": (time.perf_counter() - t0) * 1000}
        t0 = time.perf_counter()
        raw, truncated = self._generate_full(
            [("system", load_prompt("draft_system")), ("human", load_prompt("draft_user"))],
            {"doc_type": doc_type, "guidance": load_prompt(f"draft_{DOC_TYPES[doc_type]}"), "topic": topic,
             "requirements": requirements or "无", "context": context or "（无。涉及的具体事实用“〔待补充〕”标出。）"})
        timings["llm_ms"] = (time.perf_counter() - t0) * 1000

        title = _pick_title(raw, topic, doc_type)
        body = clean_body(raw, title, issuer, recipients, len(citations), doc_type)
        if truncated:
            body = drop_unfinished_sentence(body)
        body = attribute_citations(body, citations)
        # figures, dates, 文号 and 条款 that neither the passages nor the request state become 〔待补充〕
        body, checks = mark_unsupported(body, {c.n: Evidence.of(c.label, c.text) for c in citations},
                                        Evidence.of(topic, requirements or "", issuer, recipients, date_text))
        if not body or (is_refusal(body) and len(body) < 40):
            body = BODY_MISSING
        cited = {int(n) for n in _CITE.findall(body)}
        for c in citations:
            c.cited = c.n in cited
        text = assemble_document(title, recipients, body, issuer, date_text, citations)
        timings["total_ms"] = (time.perf_counter() - t_start) * 1000
        return {"doc_type": doc_type, "title": title, "recipients": recipients, "body": body, "issuer": issuer,
                "date": date_text, "citations": [asdict(c) for c in citations], "ai_generated": True, "text": text,
                "verification": {"sentences": [asdict(c) for c in checks],
                                 "replaced": [a for c in checks for a in c.unsupported]},
                "timings": {k: round(v, 1) for k, v in timings.items()}}

    # -- polishing --------------------------------------------------------------------------------------------
    def polish(self, text: str, instruction: str = "") -> dict:
        """Rewrite in 公文 style, piece by piece; a piece whose rewrite changes a number (or comes back empty or
        far off in length) keeps its original wording, with a warning."""
        text = (text or "").strip()
        if not text:
            raise ValueError("text is empty")
        if len(text) > MAX_POLISH_CHARS:
            raise ValueError(f"text is longer than {MAX_POLISH_CHARS} characters")
        instruction = (instruction or "").strip()[:500] or "无"
        out, warnings = [], []
        pieces = _split_pieces(text, POLISH_PIECE_CHARS)
        for i, (sep, piece) in enumerate(pieces, start=1):
            where = f"第{i}部分" if len(pieces) > 1 else "全文"
            out.append(sep)
            if not piece.strip():
                out.append(piece)
                continue
            raw = self._generate(self._chat("polish"), {"instruction": instruction, "text": piece},
                                 max_tokens=min(2 * len(piece) + 64, 1200))
            new = _strip_markdown(raw).strip()
            new = re.sub(r"^(?:【?润色后】?|润色结果|修改后)\s*[：:]?\s*", "", new).strip()
            if not new or len(new) < 0.4 * len(piece) or len(new) > 2.5 * len(piece) + 20:
                warnings.append(f"{where}润色结果不完整，已保留原文。")
                out.append(piece)
                continue
            before, after = sorted(_NUMBER.findall(piece)), sorted(_NUMBER.findall(new))
            if before != after:
                changed = sorted(set(before) ^ set(after)) or sorted(set(before))
                warnings.append(f"{where}润色结果改动了数字（{'、'.join(changed)}），已保留原文。")
                out.append(piece)
                continue
            out.append(new)
        return {"text": "".join(out), "ai_generated": True, "warnings": warnings}

    # -- action items -----------------------------------------------------------------------------------------
    def extract_actions(self, text: str) -> dict:
        """事项 / 责任单位 / 完成时限 rows: rules read the explicit patterns; the model reads the paragraphs the
        rules did not cover, its rows generated under a JSON schema (a backend that ignores response_format
        leaves the rule rows, with a warning); a model row's 责任单位 must occur in the text."""
        text = (text or "").replace("\r\n", "\n").strip()
        if not text:
            raise ValueError("text is empty")
        if len(text) > MAX_EXTRACT_CHARS:
            raise ValueError(f"text is longer than {MAX_EXTRACT_CHARS} characters")
        rules = rule_actions(text)
        # the model reads only what the rules left: items without a labelled row, minus sentences already read
        labelled = {r["_item"] for r in rules if r["_span"] == r["_item"]}
        read = {r["_span"] for r in rules}
        left = []
        for _, item in _items(text):
            if item in labelled or "|" in item:
                continue
            for span in read:
                item = item.replace(span, "")
            if len(item) >= 12 and _ACTION_CUE.search(item):
                left.append(item)
        rest = "\n".join(left)
        model_rows: list[dict] = []
        warnings: list[str] = []
        segments = [piece for _, piece in _split_pieces(rest, EXTRACT_SEGMENT_CHARS)] if rest else []
        if len(segments) > EXTRACT_MAX_SEGMENTS:
            warnings.append(f"文本较长，仅对前{EXTRACT_MAX_SEGMENTS}段做了模型提取，其余按规则提取。")
        for seg in segments[:EXTRACT_MAX_SEGMENTS]:
            lines = {f"S{i}": ln for i, ln in enumerate((ln for ln in seg.split("\n") if ln.strip()), 1)}
            numbered = "\n".join(f"[{sid}] {ln}" for sid, ln in lines.items())
            messages = ChatPromptTemplate.from_messages(self._chat("extract_actions")).format_messages(text=numbered)
            try:
                data, _ = invoke_json(self.llm, messages, "action_rows", extract_schema(list(lines)),
                                      max_tokens=EXTRACT_SCHEMA_ROWS * 48)
            except StructuredOutputError as exc:
                warnings.append(f"模型未按JSON格式输出（{exc}），已仅按规则提取。")
                break
            model_rows += read_action_rows(data, lines)
        rows = merge_actions(rules, model_rows, text)
        return {"rows": rows, "ai_generated": True, "warnings": warnings}


def assemble_document(title: str, recipients: str, body: str, issuer: str, date: str,
                      citations: list[Citation]) -> str:
    """GB/T 9704 element order: 标题, 主送机关, 正文, 落款 (发文机关署名), 成文日期; then the sources of the [n]
    marks and the AI-generated label (人工智能生成合成内容标识)."""
    lines = [title, ""]
    if recipients:
        lines.append(f"{recipients}：")
    lines += [body, ""]
    if issuer:
        lines.append(issuer)
    lines += [date, ""]
    by_label: dict[str, list[int]] = {}     # passages of one document share a line: [1][3] 《标题》（文号）
    for c in citations:
        if c.cited:
            by_label.setdefault(c.label, []).append(c.n)
    if by_label:
        lines.append("参考依据：")
        lines += ["".join(f"[{n}]" for n in ns) + f" {label}" for label, ns in by_label.items()]
        lines.append("")
    lines.append(load_prompt("ai_label"))
    return "\n".join(lines)
