"""Action items (事项 / 责任单位 / 完成时限), one way for extract-actions and the summaries' action-items style
(issue #18): rules for the explicit patterns 公文 use, the JSON schema of the model's rows and the reader of its
JSON, the units a row may name, and the merge of rule rows with model rows.

Rule rows are the document's own wording and stand; a model row is kept only within what the source states:
its 责任单位 cut down to organisations the source names, a 事项 the source talks about, a 完成时限 not in the
source marked unverified (each caller shows that its own way). Pure: no model, no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from assistant.text_heuristics import compact, containment, field_text, grounded, is_org, says_none

UNSPECIFIED = "未明确"
SCHEMA_NAME = "action_rows"
ROW_SECTION, ROW_TASK, ROW_UNITS, ROW_DEADLINE = "section", "事项", "责任单位", "完成时限"
MAX_UNITS = 20                  # a small model loops on unit lists
_PUNCT = "，。；：、！？,.;:!?（）()《》“”\"'【】[]〔〕 \t\n"


@dataclass
class ActionRow:
    task: str                               # 事项
    units: list[str]                        # 责任单位
    deadline: str = ""                      # 完成时限 as written; "" when none is stated
    sections: list[str] = field(default_factory=list)   # section ids it was read from
    rule: bool = False                      # read by the rules: the document's own wording
    pos: int = -1                           # offset in the source (rows come back in document order)
    span: str = ""                          # the text the row restates
    item: str = ""                          # the paragraph a rule row came from ("" for table rows)
    where: str = ""                         # a model row: the text of the section/line it names
    unverified: list[str] = field(default_factory=list)  # "task"/"deadline": the source does not state it


# --- the model's rows: one schema, one reader ---------------------------------------------------------------

def rows_schema(section_ids: list[str], max_rows: int) -> dict:
    """{"rows": [{section, 事项, 责任单位, 完成时限}]}, section from the request's ids. Lengths kept small: a
    0.5B model writes long JSON slowly and gets cut off."""
    row = {"type": "object", "additionalProperties": False,
           "required": [ROW_SECTION, ROW_TASK, ROW_UNITS, ROW_DEADLINE],
           "properties": {ROW_SECTION: {"type": "string", "enum": list(section_ids)},
                          ROW_TASK: {"type": "string", "minLength": 2, "maxLength": 30},
                          ROW_UNITS: {"type": "string", "minLength": 2, "maxLength": 40},
                          ROW_DEADLINE: {"type": "string", "maxLength": 16}}}
    return {"type": "object", "additionalProperties": False, "required": ["rows"],
            "properties": {"rows": {"type": "array", "items": row, "maxItems": max_rows}}}


def read_rows(data: dict, texts: dict[str, str]) -> list[ActionRow]:
    """The model's JSON (rows_schema) → rows, not yet checked against the source. `texts`: section id →
    its text (where the row is placed); a section not among them is left out of `sections`."""
    rows = []
    for r in data.get("rows") or [] if isinstance(data, dict) else []:
        if not isinstance(r, dict):
            continue
        sid = r.get(ROW_SECTION)
        units, deadline = field_text(r.get(ROW_UNITS)), field_text(r.get(ROW_DEADLINE)).strip(" 。.")
        rows.append(ActionRow(field_text(r.get(ROW_TASK))[:60],
                              [] if says_none(units) else split_units(units),
                              "" if says_none(deadline) else deadline[:60],
                              [sid] if sid in texts else [], where=texts.get(sid, "")))
    return rows


# --- units --------------------------------------------------------------------------------------------------

_UNIT_SPLIT = re.compile(r"[、，,；;/\s]+")


def split_units(value: str) -> list[str]:
    """The parts of a 责任单位 value: "市数据局（牵头），市财政局等" → [市数据局, 市财政局]."""
    parts = (re.sub(r"[（(](?:牵头|配合|主责|负责)[）)]", "", p).strip(_PUNCT).removesuffix("等")
             for p in _UNIT_SPLIT.split(value or ""))
    return list(dict.fromkeys(p for p in parts if p))


def source_units(units: list[str], source: str) -> list[str]:
    """Organisations only (a small model lists actions as units) that the source names (it invents plausible
    ones), at most MAX_UNITS."""
    src = compact(source)
    return [u for u in dict.fromkeys(units) if len(u) >= 2 and is_org(u) and compact(u) in src][:MAX_UNITS]


# --- rules --------------------------------------------------------------------------------------------------

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
_SENTENCE = re.compile(r"[^。！？；]+[。！？；]?")
_ACTION_CUE = re.compile(r"负责|牵头|责任|会同|要|应当|须|确保|完成|落实|报送|前|底")


def _topic_of(item: str) -> str:
    """事项 of an item: its run-in heading ("（一）统一编制数据目录。…"), else its first sentence."""
    if m := _ITEM_HEAD.match(item):
        return m.group(1).strip()
    first = re.split(r"[。；;\n]", _LABEL_RE.sub("", _NUMBERING.sub("", item)).strip(), maxsplit=1)[0]
    return first.strip(_PUNCT)[:60]


def paragraphs(text: str) -> list[tuple[int, str]]:
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


def _table_rows(text: str) -> list[ActionRow]:
    """Rows of a 任务分工 table (markdown pipes) whose header names 事项/任务 and 责任/牵头单位."""
    out: list[ActionRow] = []
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
                if get("topic") and (units := split_units(get("unit"))):
                    due = get("due").strip(_PUNCT)
                    out.append(ActionRow(get("topic"), units, "" if says_none(due) else due, rule=True,
                                         pos=offset, span=get("topic")))
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


def rule_actions(text: str) -> list[ActionRow]:
    """Rows from explicit 公文 patterns: 责任单位/牵头单位/配合单位 and 完成时限/时间节点 labels, 任务分工 tables,
    and sentences '<单位>要/应当…于2025年4月30日前…', '<单位>牵头，会同<单位>在…前完成…'. A row's `span` is
    the text it restates, `item` the paragraph it came from."""
    rows = _table_rows(text)
    for pos, item in paragraphs(text):
        if "|" in item:
            continue
        labels: dict[str, list[str]] = {}
        for m in _LABEL_RE.finditer(item):
            if m.group(2).strip():
                labels.setdefault(_LABELS[m.group(1)], []).append(m.group(2).strip())
        units = [u for key in ("lead", "unit", "help") for v in labels.get(key, []) for u in split_units(v)]
        if units:
            due = labels.get("due", [""])[0].strip(_PUNCT)
            rows.append(ActionRow(_topic_of(item), list(dict.fromkeys(units)), "" if says_none(due) else due,
                                  rule=True, pos=pos, span=item, item=item))
            continue
        if labels:          # a 完成时限 without any 单位: not a row of its own (the model may still find one)
            continue
        body = _NUMBERING.sub("", item)
        for sentence in _SENTENCE.findall(body):
            sentence = _NUMBERING.sub("", re.sub(r"^[^，。；：,;:]{1,10}[：:]", "", sentence.strip()))
            deadline = _DEADLINE.search(sentence)
            subject = _SUBJECT.match(sentence.strip())
            if not deadline or not subject:
                continue
            parts = split_units(subject.group(1))
            partner = _PARTNER.search(sentence)
            if partner and all(is_org(p) for p in split_units(partner.group(1))):
                parts += [p for p in split_units(partner.group(1)) if p not in parts]
            if parts and all(is_org(p) for p in parts):
                head = _ITEM_HEAD.match(item)
                topic = head.group(1).strip() if head and deadline.group(0) not in head.group(1) \
                    else _task_of(sentence, subject, partner, deadline)
                rows.append(ActionRow(topic, parts, deadline.group(0), rule=True,
                                      pos=pos + max(item.find(sentence), 0), span=sentence, item=item))
    rows.sort(key=lambda r: r.pos)
    return rows


def unread_paragraphs(text: str, rules: list[ActionRow]) -> list[str]:
    """What the rules left for the model: paragraphs without a labelled row, minus the sentences rules read,
    that still read like a task."""
    labelled = {r.item for r in rules if r.span == r.item}
    read = {r.span for r in rules}
    left = []
    for _, item in paragraphs(text):
        if item in labelled or "|" in item:
            continue
        for span in read:
            item = item.replace(span, "")
        if len(item) >= 12 and _ACTION_CUE.search(item):
            left.append(item)
    return left


# --- merge --------------------------------------------------------------------------------------------------

def _task_key(task: str) -> str:
    return compact(task.split(">")[-1])      # "一、… > （二）实行分级分类管理": its last heading


def _fill_deadline(into: ActionRow, row: ActionRow) -> None:
    """A row's missing 完成时限 from a row restating it (into a rule row only one the source states)."""
    unverified = "deadline" in row.unverified
    if not into.deadline and row.deadline and not (into.rule and unverified):
        into.deadline = row.deadline
        if unverified:
            into.unverified.append("deadline")


def merge(rules: list[ActionRow], model: list[ActionRow], source: str, *,
          keep_unitless: bool = False) -> list[ActionRow]:
    """Rule rows stand; a model row that restates one only fills its missing 完成时限. Other model rows are
    kept within what the source states: units it names (a row left without one is dropped unless
    `keep_unitless`), a 事项 it talks about (the prompt's example is not), a 完成时限 it does not state marked
    unverified, as is a 事项 with a figure it does not state. Model rows of one task (a small model writes one
    per unit) become one. Returned in document order."""
    src = compact(source)
    merged = [replace(r, units=list(r.units), sections=list(r.sections), unverified=list(r.unverified))
              for r in rules]
    sentences = [(pos + m.start(), m.group(0)) for pos, item in paragraphs(source)
                 for m in _SENTENCE.finditer(item)]
    for row in model:
        task = row.task.strip(_PUNCT)[:60]
        units = source_units(row.units, source)
        if len(compact(task)) < 2 or says_none(task) or containment(task, source) < 0.4 \
                or not (units or keep_unitless):
            continue
        deadline = row.deadline.strip(_PUNCT)
        unverified = [f for f, ok in (("task", grounded(task, source)),
                                      ("deadline", not deadline or compact(deadline) in src)) if not ok]
        new = ActionRow(task, units, deadline, list(row.sections), span=task, where=row.where,
                        unverified=unverified)
        # a restatement of a rule row: it shares a unit (or, naming none, the section) and most of its wording
        twin = next((r for r in merged if r.rule and (set(units) & set(r.units) if units
                                                      else set(new.sections) & set(r.sections))
                     and max(containment(task, r.span), containment(task, r.task)) >= 0.6), None)
        same = twin or next((r for r in merged if _task_key(r.task) == _task_key(task)
                             and (not r.deadline or not deadline or r.deadline == deadline)), None)
        if same is not None:
            _fill_deadline(same, new)
            same.sections += [s for s in new.sections if s not in same.sections]
            if not same.rule:
                same.units = (same.units + [u for u in units if u not in same.units])[:MAX_UNITS]
            continue
        # placed where the text says it: the line/section the model named, else the sentence most like the 事项
        # that names one of its units
        at = source.find(row.where) if row.where else -1
        scored = [(containment(task, sent), pos) for pos, sent in sentences if any(u in sent for u in units)]
        best = max(scored, default=(0.0, len(source)))
        new.pos = at if at >= 0 else best[1] if best[0] > 0 else len(source)
        merged.append(new)
    merged.sort(key=lambda r: r.pos)
    out: dict[tuple, ActionRow] = {}
    for r in merged:                        # identical rows once (a task the text states twice)
        if (key := (r.task, tuple(r.units), r.deadline)) in out:
            out[key].sections += [s for s in r.sections if s not in out[key].sections]
        else:
            out[key] = r
    return list(out.values())
