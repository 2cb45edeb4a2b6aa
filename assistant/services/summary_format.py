"""Summaries: sections, the JSON schemas of the structured styles and the checks on what the model put in them,
section attribution, Markdown rendering.

Everything here is pure (no model, no I/O), so it is unit-tested on its own. The structured and action-items
styles are generated under a JSON schema (see `structured_schema`), so their shape is valid by construction and
every item names a section of its part; a small model still numbers sections its own way, so a claimed section
whose text shares far less with the item than another section is replaced by that one (`resolve_ids`). The brief
style stays free text (`parse_brief`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.services.action_items import (ActionRow, merge, read_rows, rows_schema, rule_actions,
                                             source_units, split_units)
from assistant.text_heuristics import (bigrams, clean_line, compact, field_text, grounded, says_none,
                                       strip_bullet, strip_section_ids)
from ingest.chunking import Block, chunk_blocks, split_sentences

STYLES = ("brief", "structured", "action-items")
# per style: bump when parsing/merging changes what a record holds (part of the settings fingerprint)
FORMAT_VERSION = {"brief": "1", "structured": "6-json", "action-items": "6-rows"}
POINT_MAX_CHARS = 90


@dataclass
class Section:
    id: str                     # S1, S2 ... in document order
    heading_path: list[str]     # the document's own numbering/headings (一、… > （一）…), [] before the first one
    text: str

    @property
    def heading(self) -> str:
        return " > ".join(h for h in self.heading_path if h)

    def to_dict(self) -> dict:
        return {"id": self.id, "heading": self.heading, "chars": len(self.text)}


@dataclass
class Part:
    """Consecutive sections sent to the model in one request."""
    sections: list[Section]
    index: int = 0
    of: int = 1

    def render(self) -> str:
        lines, last_heading = [], None
        for s in self.sections:
            head = f"[{s.id}]"
            if s.heading and s.heading != last_heading:
                head += f" {s.heading}"
            last_heading = s.heading
            lines.append(f"{head}\n{s.text}")
        return "\n".join(lines)

    @property
    def chars(self) -> int:
        return len(self.render())

    @property
    def span(self) -> str:
        """'S3–S7' for prompts and reduce labels."""
        first, last = self.sections[0].id, self.sections[-1].id
        return first if first == last else f"{first}–{last}"


def make_sections(blocks: list[Block], max_chars: int, min_chars: int = 40) -> list[Section]:
    chunks = [c for c in chunk_blocks(blocks, max_chars=max_chars, min_chars=min_chars) if c.text.strip()]
    if not chunks:
        text = "\n".join(b.text for b in blocks).strip()
        return [Section("S1", [], text)] if text else []
    return [Section(f"S{i}", list(c.heading_path), c.text) for i, c in enumerate(chunks, 1)]


def pack_parts(sections: list[Section], budget_chars: int) -> list[Part]:
    """Greedy packing of whole consecutive sections; a section over the budget travels alone (and the caller
    splits it further if the backend still says it is too long)."""
    parts: list[list[Section]] = []
    for s in sections:
        if parts and Part(parts[-1] + [s]).chars <= budget_chars:
            parts[-1].append(s)
        else:
            parts.append([s])
    return [Part(p, i, len(parts)) for i, p in enumerate(parts, 1)]


# --- structured output: JSON schemas and reading the model's JSON -----------------------------------------
#
# The structured and action-items styles are generated under a JSON schema (llama.cpp: a grammar, vLLM: guided
# decoding), so the structure is valid by construction: every 要点 / row names its section from an enum of the
# part's section ids, 要点 has minItems when the document has ≥ 3 sections. What a schema cannot express is
# checked here: no "无" items, 责任单位 and 时间节点 that occur in the source, 涉及金额/指标 items that hold a figure
# stated by the source, and, after merging, at least 3 要点 (extracted from uncovered sections when the model gave
# fewer). Action items: assistant/services/action_items.py (shared with extract-actions).

MIN_POINTS = 3               # a document with ≥ 3 sections gets ≥ 3 要点
POINT_SCHEMA_CHARS = 50      # maxLength of a 要点 in the schema (a small model copies paragraphs otherwise)
FIELD_POINTS, FIELD_UNITS, FIELD_DEADLINES, FIELD_FIGURES = "要点", "责任单位", "时间节点", "涉及金额/指标"


def _obj(properties: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": properties, "required": required or list(properties),
            "additionalProperties": False}


def _str(max_length: int, min_length: int = 0) -> dict:
    out: dict = {"type": "string", "maxLength": max_length}
    if min_length:
        out["minLength"] = min_length
    return out


def _array(items: dict, max_items: int, min_items: int = 0) -> dict:
    out: dict = {"type": "array", "items": items, "maxItems": max_items}
    if min_items:
        out["minItems"] = min_items
    return out


def min_points(part_sections: int, doc_sections: int) -> int:
    """minItems of 要点 for one part: 3 (or the part's section count, if smaller) once the document has ≥ 3
    sections, else 1 (no summary without a 要点)."""
    return min(MIN_POINTS if doc_sections >= MIN_POINTS else 1, part_sections)


def structured_schema(section_ids: list[str], min_items: int = 0) -> dict:
    """要点 [{section, text}] · 责任单位 [str] · 时间节点 [{section, 时间, 事项}] · 涉及金额/指标 [{section, text}]."""
    sid = {"type": "string", "enum": list(section_ids)}
    n = len(section_ids)
    return _obj({
        FIELD_POINTS: _array(_obj({"section": sid, "text": _str(POINT_SCHEMA_CHARS, 4)}),
                             max(min(n, 8), min_items, 1), min_items),
        FIELD_UNITS: _array(_str(20, 2), 6),
        FIELD_DEADLINES: _array(_obj({"section": sid, "时间": _str(16, 2), "事项": _str(24, 2)}), min(max(n, 2), 4)),
        FIELD_FIGURES: _array(_obj({"section": sid, "text": _str(40, 2)}), min(max(n, 2), 4)),
    })


def action_items_schema(section_ids: list[str]) -> dict:
    """The action rows' one schema (action_items.rows_schema), up to 8 rows a part."""
    return rows_schema(section_ids, min(max(len(section_ids), 4), 8))


def best_section(text: str, sections: list[Section]) -> Section | None:
    """The section whose character bigrams cover most of `text` (None when nothing overlaps)."""
    want = bigrams(text)
    if not want or not sections:
        return None
    scored = [(len(want & bigrams(s.heading + s.text)), -i, s) for i, s in enumerate(sections)]
    score, _, best = max(scored, key=lambda t: (t[0], t[1]))
    return best if score > 0 else None


def resolve_ids(text: str, ids: list[str], sections: list[Section]) -> list[str]:
    """The section ids a model gave for `text`, checked against what the text overlaps: a small model numbers
    sections its own way (often off by one), so a claimed id whose section shares far less with the text than the
    best-matching section is replaced by that section; no id at all gets the best-matching one."""
    key = compact(text)
    named = [s for s in sections if s.heading_path and len(compact(s.heading_path[-1])) >= 4
             and compact(s.heading_path[-1]) in key]
    if named:   # the text names a section's own heading ("（二）实行分级分类管理"): that section, the longest name
        return [max(named, key=lambda s: len(s.heading_path[-1])).id]
    best = best_section(text, sections)
    if best is None:
        return ids
    if not ids:
        return [best.id]
    want = bigrams(text)
    by_id = {s.id: s for s in sections}

    def score(s: Section) -> int:   # the section's own heading and text: parents are shared by siblings
        return len(want & bigrams((s.heading_path[-1] if s.heading_path else "") + s.text))

    best_score = max(score(s) for s in sections)
    kept = [i for i in ids if score(by_id[i]) * 4 >= best_score * 3]
    return kept or [max(sections, key=score).id]


def _label_lines(text: str) -> set[str]:
    """Lines of a section that are labels, not sentences: 文号, 主送机关, signatures."""
    return {compact(ln) for ln in text.splitlines() if ln.strip() and not re.search(r"[。！？；]", ln)}


def condense(text: str, limit: int = POINT_MAX_CHARS) -> str:
    """A point longer than `limit` (a small model copies whole paragraphs) is cut to its first sentence, without
    the 责任单位/完成时限 clauses that have fields of their own, and to `limit` at a clause boundary."""
    head = re.split(r"(?:责任单位|牵头单位|完成时限)[:：]", text, maxsplit=1)[0].strip()
    text = head if len(head) >= 10 else text
    if len(text) <= limit:
        return text
    first = re.match(r"^(?:[（(][一二三四五六七八九十]+[)）][^。！？]{0,30}[。！？])?[^。！？]*[。！？]?", text)
    if first and len(first.group(0)) >= 10:
        text = first.group(0)
    if len(text) <= limit:
        return text
    return trim_cut(text[:limit])


def _section_of(value, sections: list[Section]) -> list[str]:
    valid = {s.id for s in sections}
    return [value] if isinstance(value, str) and value in valid else []


def _echoed(body: str, sections: list[Section]) -> Section | None:
    """The section whose "[S3] 一、… > （二）…" header or label line (文号, 主送机关) `body` merely repeats."""
    key = compact(body)
    if len(key) > 60:
        return None
    return next((s for s in sections
                 if key in (compact(s.heading), compact(s.heading_path[-1] if s.heading_path else ""))
                 or key in _label_lines(s.text)), None)


def lead_sentence(section: Section) -> str:
    """The first sentence of a section that says something: label lines and the run-in heading skipped."""
    labels = _label_lines(section.text)
    heads = {compact(h) for h in section.heading_path}
    lines = [ln for ln in section.text.splitlines() if ln.strip() and compact(ln) not in labels]
    for x in split_sentences("\n".join(lines)):
        if len(compact(x)) >= 8 and compact(x) not in heads:
            return condense(x.strip())
    return ""


def _item(text: str, sid: list[str], sections: list[Section], source: str) -> dict | None:
    """A 要点/时间节点/涉及金额/指标 item: None for "无", a lone group label or an echoed section header."""
    body = re.sub(r"[（(]\s*[)）]$", "", text).strip()
    if not body or says_none(body) or len(re.sub(r"\W", "", body)) < 2:
        return None
    if body.endswith(("：", ":")) and len(body) <= 30:
        return None   # a group label the model put over its sub-items ("1. 健全公共数据目录管理：")
    if _echoed(body, sections):
        return None   # an echoed "[S3] 一、… > （二）…" header or label line (文号, 主送机关), not a point
    ids = resolve_ids(body, sid, sections)
    body = condense(body)
    out = {"text": body, "sections": ids}
    if not grounded(body, source):
        out["grounded"] = False
    return out


def _list(data: dict, key: str) -> list:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, list) else []


def figure_supported(text: str, evidence) -> bool:
    """An 涉及金额/指标 item: it states a figure, and every figure it states is in the source."""
    from assistant.grounding.atoms import has_figure, unsupported_atoms

    return has_figure(text) and not [a for a in unsupported_atoms(text, evidence) if a.is_figure]


def read_structured(data: dict, sections: list[Section], source: str, evidence=None) -> dict:
    """The model's JSON (structured_schema) → {'points': [{text, sections}], 'units': [..],
    'deadlines': [{text, sections}], 'figures': [{text, sections}]}, checked against the source."""
    from assistant.grounding.atoms import Evidence

    evidence = evidence if evidence is not None else Evidence.of(source)
    points = []
    for p in _list(data, FIELD_POINTS):
        if not isinstance(p, dict):
            continue
        text = field_text(p.get("text"))
        if len(text) >= POINT_SCHEMA_CHARS:
            text = trim_cut(text)   # the grammar closed the string at maxLength: mid-phrase, end it at a clause
        if (sec := _echoed(text, sections)) and sec.heading_path and (lead := lead_sentence(sec)):
            # a small model echoes the section's heading as its 要点: the point is that section's lead sentence
            points.append({"text": lead, "sections": [sec.id], "extracted": True})
        elif it := _item(text, _section_of(p.get("section"), sections), sections, source):
            points.append(it)
    deadlines = []
    for d in _list(data, FIELD_DEADLINES):
        if not isinstance(d, dict):
            continue
        when, what = field_text(d.get("时间")), field_text(d.get("事项"))
        if not when or says_none(when) or not grounded(when + what, source):
            continue   # a 时间节点 whose numbers the document does not state is dropped
        if not re.search(r"\d", when) and compact(when) not in compact(source):
            continue   # "持续推进" and the like only when the document says so
        it = _item(f"{when}：{what}" if what and not says_none(what) else when,
                   _section_of(d.get("section"), sections), sections, source)
        if it and it.get("grounded", True):
            deadlines.append(it)
    figures = []
    for f in _list(data, FIELD_FIGURES):
        if not isinstance(f, dict):
            continue
        text = field_text(f.get("text"))
        if not figure_supported(text, evidence):
            continue   # an ordinary sentence, or a figure the document does not state
        if it := _item(text, _section_of(f.get("section"), sections), sections, source):
            figures.append(it)
    named = [u for x in _list(data, FIELD_UNITS) for u in split_units(field_text(x)) if not says_none(u)]
    units = source_units(named, source) if source else list(dict.fromkeys(named))
    said = [compact(p["text"]) for p in points if not p.get("extracted")]
    points = [p for p in points if not p.get("extracted") or not any(compact(p["text"]) in k for k in said)]
    return {"points": _dedupe(points), "units": units, "deadlines": _dedupe(deadlines), "figures": _dedupe(figures)}


def _dedupe(items: list[dict], key: str = "text") -> list[dict]:
    seen: dict[str, dict] = {}
    for it in items:
        k = re.sub(r"\W", "", it[key])
        if k in seen:
            for s in it.get("sections", []):
                if s not in seen[k]["sections"]:
                    seen[k]["sections"].append(s)
        else:
            seen[k] = it
    return list(seen.values())


def fill_points(points: list[dict], sections: list[Section]) -> list[dict]:
    """At least 3 要点 for a document with ≥ 3 sections (else at least 1): when the model gave fewer, the lead
    sentence of each uncovered section (in document order) is added, marked extracted."""
    minimum = min(MIN_POINTS if len(sections) >= MIN_POINTS else 1, len(sections))
    if len(points) >= minimum:
        return points
    covered = {sid for p in points for sid in p["sections"]}
    out = list(points)
    for s in sections:
        if len(out) >= minimum:
            break
        if s.id in covered:
            continue
        if first := lead_sentence(s):
            out.append({"text": first, "sections": [s.id], "extracted": True})
    return order_items(out, sections)


def read_action_items(data: dict, sections: list[Section]) -> list[ActionRow]:
    """The model's rows (action_items_schema) for one part, each on the section its 事项 is read from
    (resolve_ids); checked against the document when merged (action_items)."""
    by_id = {s.id: s for s in sections}
    rows = read_rows(data, {s.id: s.text for s in sections})
    for r in rows:
        r.sections = resolve_ids(r.task, r.sections, sections)
        r.where = by_id[r.sections[0]].text if r.sections else ""
    return rows


def section_rules(sections: list[Section]) -> tuple[str, list[ActionRow]]:
    """The document as action rows are checked against (each section's heading line, then its text), and the
    rule rows of each section (action_items.rule_actions) on that text's offsets, with their section ids."""
    pieces, rows, at = [], [], 0
    for s in sections:
        piece = f"{s.heading}\n{s.text}" if s.heading else s.text
        start = at + len(piece) - len(s.text)
        for r in rule_actions(s.text):
            r.pos += start
            r.sections = [s.id]
            r.task = r.task or (s.heading_path[-1] if s.heading_path else "")
            rows.append(r)
        pieces.append(piece)
        at += len(piece) + 1
    return "\n".join(pieces), rows


def action_items(model_rows: list[ActionRow], sections: list[Section]) -> list[dict]:
    """The document's rows: its rule rows, merged with the model's (action_items.merge; a task with no 责任单位
    stated stays, 未明确) → [{task, units, deadline, sections, unverified?, from_source?}] in document order;
    from_source: read by the rules from the document's own wording."""
    source, rules = section_rules(sections)
    out = []
    for r in merge(rules, model_rows, source, keep_unitless=True):
        if not r.task:
            continue
        item = {"task": r.task, "units": "、".join(r.units), "deadline": r.deadline, "sections": r.sections}
        if r.unverified:
            item["unverified"] = r.unverified
        if r.rule:
            item["from_source"] = True
        out.append(item)
    return out


def parse_brief(output: str) -> dict:
    """One paragraph: labels ('摘要：'), markdown and list markers removed, lines joined."""
    lines = []
    for raw in output.splitlines():
        line = strip_bullet(clean_line(raw))
        if re.match(r"^[【\[]?(?:标题|文号|发文机关|成文日期|日期|文号/发文机关/日期)[】\]:：]", line):
            continue   # the header of the prompt, echoed
        line = re.sub(r"^【[^】]{1,10}】\s*", "", line)
        line = re.sub(r"^(?:摘要|概括|总结|内容摘要|全文摘要|一段话摘要|主要内容)\s*[:：]\s*", "", line)
        if line and not re.fullmatch(r"(?:摘要|概括|总结)[:：]?", line):
            lines.append(line)
    text = "".join(lines) if all(re.search(r"[\u4e00-\u9fff]", ln) for ln in lines) else " ".join(lines)
    return {"text": strip_section_ids(text)}


def trim_cut(text: str) -> str:
    """An answer cut off by its output budget, ended at its last complete sentence (or clause)."""
    text = text.rstrip()
    ends = [m.end() for m in re.finditer(r"[。！？；][”’」』）)]?", text)]
    if ends and ends[-1] >= len(text) * 0.4:
        return text[:ends[-1]]
    commas = [m.start() for m in re.finditer(r"[，、,]", text)]
    if commas and commas[-1] >= len(text) * 0.4:
        return text[:commas[-1]] + "。"
    return text + "……"


def order_items(items: list[dict], sections: list[Section]) -> list[dict]:
    """Stable sort by the first section an item comes from: the summary follows the document's order."""
    order = {s.id: i for i, s in enumerate(sections)}
    return sorted(items, key=lambda r: min((order.get(x, 1 << 30) for x in r.get("sections", [])), default=1 << 30))


# --- rendering ------------------------------------------------------------------------------------------

def _refs(item: dict) -> str:
    mark = "（待核实）" if item.get("grounded") is False else ""
    mark += "（原文摘录）" if item.get("extracted") else ""
    return mark + (f" 〔{'、'.join(item['sections'])}〕" if item.get("sections") else "")


def _cell(s: str) -> str:
    return (s or "未明确").replace("|", "｜").replace("\n", " ")


def render_markdown(style: str, summary: dict, sections: list[Section] | None = None) -> str:
    if style == "brief":
        return summary.get("text", "")
    if style == "action-items":
        lines = ["| 事项 | 责任单位 | 完成时限 | 出处 |", "|---|---|---|---|"]
        for r in summary.get("items", []):
            flag = {f: "（待核实）" if f in r.get("unverified", ()) else "" for f in ("task", "deadline")}
            lines.append(f"| {_cell(r['task'])}{flag['task']} | {_cell(r['units'])} | "
                         f"{_cell(r['deadline'])}{flag['deadline']} | {'、'.join(r['sections']) or '—'} |")
        return "\n".join(lines) if summary.get("items") else "（未识别出工作任务）"
    by_id = {s.id: s for s in sections or []}
    out = ["**要点**"]
    group = None
    for p in summary.get("points", []):
        sec = by_id.get(p["sections"][0]) if p.get("sections") else None
        top = sec.heading_path[0] if sec and sec.heading_path else None
        if top and top != group and not p["text"].startswith(top[:4]):
            out.append(f"- {top}")
            group = top
        indent = "  " if group and top == group else ""
        out.append(f"{indent}- {p['text']}{_refs(p)}")
    if len(out) == 1:
        out.append("- 无")
    out.append("")
    out.append("**责任单位**：" + ("、".join(summary.get("units", [])) or "无"))
    for kind, label in (("deadlines", "时间节点"), ("figures", "涉及金额/指标")):
        out.append("")
        out.append(f"**{label}**" + ("" if summary.get(kind) else "：无"))
        out += [f"- {d['text']}{_refs(d)}" for d in summary.get(kind, [])]
    return "\n".join(out)


def summary_plain_text(style: str, summary: dict) -> str:
    """The summary as plain text (what ROUGE scores and what a search index would hold)."""
    if style == "brief":
        return summary.get("text", "")
    if style == "action-items":
        return "\n".join(f"{r['task']} {r['units']} {r['deadline']}".strip() for r in summary.get("items", []))
    return "\n".join(p["text"] for p in summary.get("points", []))

