"""Summaries: sections, parsing of small-model output into fields, section attribution, Markdown rendering.

Everything here is pure (no model, no I/O), so it is unit-tested on its own. Parsing is deliberately lenient:
a 0.5B/1.5B model writes markdown headings, bold labels, numbered or bulleted lists, tables with or without
separator rows, section ids in any bracket (〔S3〕 [S3] (S3) S3) or none at all. A point with no valid section
id is attributed to the section whose text it overlaps most, so every point stays traceable.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.chunking import Block, chunk_blocks

STYLES = ("brief", "structured", "action-items")
# per style: bump when parsing/merging changes what a record holds (part of the settings fingerprint)
FORMAT_VERSION = {"brief": "1", "structured": "4", "action-items": "4"}
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


# --- parsing -------------------------------------------------------------------------------------------

_SID_RE = re.compile(r"[〔\[［【(（<《{]?\s*(?:出处|来源|段落?)?\s*[:：]?\s*[Ss]\s*(\d{1,4})\s*[〕\]］】)）>》}]?")
_SID_ANY_RE = re.compile(r"[Ss]\s*(\d{1,4})")
_BULLET_RE = re.compile(r"^\s*(?:[-*•·●◦▪‣]|\d{1,3}\s*[.)．、](?!\d)|[（(]\d{1,3}[)）])\s*")
_NONE_RE = re.compile(r"^(?:无|暂无|没有|未明确|未提及|未涉及|不涉及|无相关内容|未写明|文档未提及|/|-|—+|n/?a|none)[。.；;]*$",
                      re.I)
_FIELD_LABELS = {
    "points": ("要点", "主要要点", "核心要点", "主要内容", "内容要点", "摘要要点", "工作要点"),
    "units": ("责任单位", "负责单位", "牵头单位", "责任部门", "责任主体", "相关单位", "涉及单位"),
    "deadlines": ("时间节点", "时间安排", "完成时限", "时间要求", "关键时间", "时限"),
    "figures": ("涉及金额/指标", "涉及金额和指标", "涉及金额、指标", "金额/指标", "金额和指标", "涉及金额", "涉及指标",
                "金额", "指标", "数据指标", "量化指标"),
    "ignore": ("标题", "文件标题", "文号", "发文字号", "发文机关", "成文日期", "发文日期", "日期", "文种"),
}
_LABEL_RE = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(?:[一二三四五六七八九十]+[、.．]|\d+[.、．]\s*)?\s*("
    + "|".join(sorted((re.escape(x) for xs in _FIELD_LABELS.values() for x in xs), key=len, reverse=True))
    + r")\s*(?:\*\*|__)?\s*(?:[:：]\s*(?:\*\*|__)?|$|\s)(.*)$")
_LABEL_KIND = {label: kind for kind, labels in _FIELD_LABELS.items() for label in labels}
_MD_NOISE_RE = re.compile(r"\*\*|__|`")


def _clean_line(line: str) -> str:
    line = re.sub(r"^\s*#{1,6}\s*", "", line)
    line = _MD_NOISE_RE.sub("", line)
    return line.strip()


def _strip_bullet(line: str) -> str:
    return _BULLET_RE.sub("", line, count=1).strip()


def strip_section_ids(text: str) -> str:
    text = _SID_RE.sub("", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip(" \t,，;；、")


def section_ids(text: str, valid: set[str]) -> list[str]:
    found = [f"S{int(n)}" for n in _SID_ANY_RE.findall(text)]
    return list(dict.fromkeys(s for s in found if s in valid))


def _bigrams(s: str) -> set[str]:
    s = re.sub(r"[\s\W_]+", "", s)
    return {s[i:i + 2] for i in range(len(s) - 1)} if len(s) > 1 else {s} if s else set()


def best_section(text: str, sections: list[Section]) -> Section | None:
    """The section whose character bigrams cover most of `text` (None when nothing overlaps)."""
    want = _bigrams(text)
    if not want or not sections:
        return None
    scored = [(len(want & _bigrams(s.heading + s.text)), -i, s) for i, s in enumerate(sections)]
    score, _, best = max(scored, key=lambda t: (t[0], t[1]))
    return best if score > 0 else None


def resolve_ids(text: str, ids: list[str], sections: list[Section]) -> list[str]:
    """The section ids a model gave for `text`, checked against what the text overlaps: a small model numbers
    sections its own way (often off by one), so a claimed id whose section shares far less with the text than the
    best-matching section is replaced by that section; no id at all gets the best-matching one."""
    key = _norm(text)
    named = [s for s in sections if s.heading_path and len(_norm(s.heading_path[-1])) >= 4
             and _norm(s.heading_path[-1]) in key]
    if named:   # the text names a section's own heading ("（二）实行分级分类管理"): that section, the longest name
        return [max(named, key=lambda s: len(s.heading_path[-1])).id]
    best = best_section(text, sections)
    if best is None:
        return ids
    if not ids:
        return [best.id]
    want = _bigrams(text)
    by_id = {s.id: s for s in sections}

    def score(s: Section) -> int:   # the section's own heading and text: parents are shared by siblings
        return len(want & _bigrams((s.heading_path[-1] if s.heading_path else "") + s.text))

    best_score = max(score(s) for s in sections)
    kept = [i for i in ids if score(by_id[i]) * 4 >= best_score * 3]
    return kept or [max(sections, key=score).id]


def _label_lines(text: str) -> set[str]:
    """Lines of a section that are labels, not sentences: 文号, 主送机关, signatures."""
    return {_norm(ln) for ln in text.splitlines() if ln.strip() and not re.search(r"[。！？；]", ln)}


def _norm(s: str) -> str:
    return re.sub(r"[\W_]+", "", s)


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


def grounded(text: str, source: str) -> bool:
    """Every number in `text` occurs in `source` (a guard against invented dates, amounts and indicators)."""
    src = re.sub(r"\s+", "", source)
    return all(n in src for n in re.findall(r"\d+(?:\.\d+)?", text))


def _item(text: str, sections: list[Section], source: str) -> dict | None:
    valid = {s.id for s in sections}
    ids = section_ids(text, valid)
    body = strip_section_ids(text).replace("\ufffd", "")
    body = re.sub(r"[（(]\s*[)）]$", "", body).strip()
    if not body or _NONE_RE.match(body) or len(re.sub(r"\W", "", body)) < 2:
        return None
    if body.endswith(("：", ":")) and len(body) <= 30:
        return None   # a group label the model put over its sub-items ("1. 健全公共数据目录管理：")
    key = _norm(body)
    if len(key) <= 60 and any(key in (_norm(s.heading), _norm(s.heading_path[-1] if s.heading_path else ""))
                              or key in _label_lines(s.text) for s in sections):
        return None   # an echoed "[S3] 一、… > （二）…" header or label line (文号, 主送机关), not a point
    ids = resolve_ids(body, ids, sections)
    body = condense(body)
    out = {"text": body, "sections": ids}
    if not grounded(body, source):
        out["grounded"] = False
    return out


def _split_inline(value: str, kind: str) -> list[str]:
    """Items given on the label's own line: '责任单位：市数据局、市司法局' -> two units."""
    seps = r"[；;]|(?<=[〕\]）)])\s*[、，,]" if kind != "units" else r"[；;、，,]"
    return [v for v in (x.strip() for x in re.split(seps, value)) if v]


def parse_structured(output: str, sections: list[Section], source: str) -> dict:
    """{'points': [{text, sections}], 'units': [..], 'deadlines': [{text, sections}], 'figures': [{text, sections}]}"""
    fields: dict[str, list[str]] = {"points": [], "units": [], "deadlines": [], "figures": []}
    current: str | None = None
    fields["ignore"] = []
    for raw in output.splitlines():
        line = _clean_line(raw)
        if not line or re.fullmatch(r"[-=|:：\s]+", line):
            continue
        # a label may come as a top-level bullet ("- **责任单位**：…"); an indented bullet is always an item
        if re.match(r"^[-*•·●]\s", raw):
            m = _LABEL_RE.match(_strip_bullet(line))
        else:
            m = None if re.match(r"^\s+[-*•·●]\s", raw) else _LABEL_RE.match(line)
        if m:
            current = _LABEL_KIND[m.group(1)]
            rest = m.group(2).strip()
            if rest:
                fields[current] += _split_inline(rest, current) if current != "points" else [rest]
            continue
        if current is None:
            current = "points"  # text before any label: the model skipped the 要点 label
        item = _strip_bullet(line)
        if current == "units":
            fields[current] += _split_inline(item, "units")
        elif item:
            fields[current].append(item)
    result: dict = {}
    for kind in ("points", "deadlines", "figures"):
        items = [it for it in (_item(t, sections, source) for t in fields[kind]) if it]
        result[kind] = _dedupe(items)
    units = []
    for u in fields["units"]:
        u = strip_section_ids(u).strip("。.")
        if u and not _NONE_RE.match(u) and 1 < len(u) <= 30 and u.endswith(_ORG_END) and u not in units \
                and (not source or _norm(u) in _norm(source)):   # named by the document, not invented
            units.append(u)
    result["units"] = units
    return result


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


_HEADER_WORDS = ("事项", "任务", "责任单位", "完成时限", "出处")
_ROW_FIELD_RE = re.compile(r"(事项|任务|工作任务|责任单位|牵头单位|负责单位|完成时限|时限|完成时间|出处|来源)\s*[:：]\s*")


def parse_action_items(output: str, sections: list[Section], source: str) -> dict:
    """{'items': [{task, units, deadline, sections}]} from a Markdown table, or 'key：value' lines as a fallback."""
    valid = {s.id for s in sections}
    rows: list[dict] = []
    for raw in output.splitlines():
        line = _clean_line(raw)
        if "|" in line:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(re.fullmatch(r":?-{2,}:?|", c) for c in cells):
                continue
            if sum(any(w in c for w in _HEADER_WORDS) and len(c) <= 6 for c in cells) >= 2:
                continue  # the header row
            cells += [""] * (4 - len(cells))
            task, units, deadline, where = cells[0], cells[1], cells[2], " ".join(cells[3:])
        elif _ROW_FIELD_RE.search(line):
            parts = dict.fromkeys(("task", "units", "deadline", "where"), "")
            names = {"事项": "task", "任务": "task", "工作任务": "task", "责任单位": "units", "牵头单位": "units",
                     "负责单位": "units", "完成时限": "deadline", "时限": "deadline", "完成时间": "deadline",
                     "出处": "where", "来源": "where"}
            pieces = _ROW_FIELD_RE.split(line)
            for name, value in zip(pieces[1::2], pieces[2::2]):
                parts[names[name]] = value.strip(" ，,；;。")
            task, units, deadline, where = parts["task"], parts["units"], parts["deadline"], parts["where"]
            if not task:
                continue
        else:
            continue
        task_clean = strip_section_ids(_strip_bullet(task)).replace("\ufffd", "").strip()
        if not task_clean or _NONE_RE.match(task_clean) or len(re.sub(r"\W", "", task_clean)) < 2:
            continue
        ids = resolve_ids(task_clean, section_ids(where + " " + task, valid), sections)
        row = {"task": task_clean, "units": clean_units(_none_to_empty(strip_section_ids(units)), source),
               "deadline": _none_to_empty(strip_section_ids(deadline))[:60], "sections": ids}
        unverified = [f for f in ("task", "deadline") if not grounded(row[f], source)]
        if unverified:
            row["unverified"] = unverified
        rows.append(row)
    return {"items": merge_rows(rows)}


def _task_key(task: str) -> str:
    return _norm(task.split(">")[-1])


def merge_rows(rows: list[dict]) -> list[dict]:
    """One row per task: a small model writes one row per 责任单位; rows of the same task (compared on its last
    heading segment) are merged, units joined with 、, the first stated deadline kept."""
    merged: dict[str, dict] = {}
    for r in rows:
        key = _task_key(r["task"])
        if key not in merged:
            merged[key] = {**r, "sections": list(r["sections"])}
            continue
        m = merged[key]
        units = [u for u in re.split(r"[、，,；;]", m["units"]) if u]
        units += [u for u in re.split(r"[、，,；;]", r["units"]) if u and u not in units]
        m["units"] = clean_units("、".join(units))
        m["deadline"] = m["deadline"] or r["deadline"]
        m["sections"] += [x for x in r["sections"] if x not in m["sections"]]
    return list(merged.values())


_ORG_END = ("局", "厅", "委", "委员会", "部", "部门", "办", "办公室", "政府", "院", "中心", "署", "会", "处", "司", "室",
            "组", "所", "行", "区", "单位", "机构", "机关", "企业", "街道", "乡镇", "社区", "集团", "公司", "小组", "队")


def clean_units(value: str, source: str = "", limit: int = 20) -> str:
    """A 责任单位 cell: organisations only, each once (a small model loops, or lists actions as units), and, when
    the source text is given, only those it names (a small model invents plausible ones)."""
    units: list[str] = []
    src = _norm(source)
    for u in re.split(r"[、，,；;/]", value):
        u = u.strip(" 。.等")
        if u and len(u) <= 30 and u.endswith(_ORG_END) and u not in units and (not src or _norm(u) in src):
            units.append(u)
    return "、".join(units[:limit])


def _none_to_empty(value: str) -> str:
    value = value.strip(" 。.")
    return "" if not value or _NONE_RE.match(value) else value


def parse_brief(output: str) -> dict:
    """One paragraph: labels ('摘要：'), markdown and list markers removed, lines joined."""
    lines = []
    for raw in output.splitlines():
        line = _strip_bullet(_clean_line(raw))
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


# --- explicit task fields in the source -------------------------------------------------------------

_EXPLICIT_RE = re.compile(r"(责任单位|牵头单位|责任部门|完成时限|完成时间)\s*[:：]\s*([^。；\n]+)")


def explicit_tasks(sections: list[Section]) -> dict[str, dict]:
    """Sections that state 责任单位/完成时限 outright (任务分工 tables, 工作要点): {section id: {units, deadline}}."""
    out: dict[str, dict] = {}
    for s in sections:
        found = {"units": "", "deadline": ""}
        for key, value in _EXPLICIT_RE.findall(s.text):
            slot = "units" if key in ("责任单位", "牵头单位", "责任部门") else "deadline"
            if slot == "units":
                value = "、".join(u.strip() for u in re.split(r"[，,、]", value) if u.strip())
            found[slot] = found[slot] or value.strip()
        if found["units"] or found["deadline"]:
            out[s.id] = found
    return out


def complete_action_items(items: list[dict], sections: list[Section]) -> list[dict]:
    """Fill empty 责任单位/完成时限 from what the section states, and add a row for every section that states
    them but got no row from the model (a small model drops rows; the document does not)."""
    stated = explicit_tasks(sections)
    covered = set()
    by_key = {_task_key(r["task"]): r for r in items}
    for s in sections:   # a row that names a section's heading covers that section
        if s.heading_path and (row := by_key.get(_norm(s.heading_path[-1]))) and s.id not in row["sections"]:
            row["sections"] = [s.id]
    for row in items:
        for sid in row["sections"]:
            covered.add(sid)
            if sid in stated:
                row["units"] = row["units"] or stated[sid]["units"]
                row["deadline"] = row["deadline"] or stated[sid]["deadline"]
    by_id = {s.id: s for s in sections}
    for sid, found in stated.items():
        if sid not in covered:
            s = by_id[sid]
            task = s.heading or re.split(r"[。；]", s.text, maxsplit=1)[0][:60]
            items.append({"task": task, "units": found["units"], "deadline": found["deadline"], "sections": [sid],
                          "from_source": True})
    order = {s.id: i for i, s in enumerate(sections)}
    items.sort(key=lambda r: min((order.get(x, 1 << 30) for x in r["sections"]), default=1 << 30))
    return items


def order_items(items: list[dict], sections: list[Section]) -> list[dict]:
    """Stable sort by the first section an item comes from: the summary follows the document's order."""
    order = {s.id: i for i, s in enumerate(sections)}
    return sorted(items, key=lambda r: min((order.get(x, 1 << 30) for x in r.get("sections", [])), default=1 << 30))


# --- rendering ------------------------------------------------------------------------------------------

def _refs(item: dict) -> str:
    mark = "（待核实）" if item.get("grounded") is False else ""
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


@dataclass
class MapOutput:
    """One model response over one part, parsed."""
    part: Part
    raw: str
    fields: dict = field(default_factory=dict)
