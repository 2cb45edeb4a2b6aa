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
from assistant.services.action_items import (SCHEMA_NAME, UNSPECIFIED, merge, read_rows, rows_schema,
                                             rule_actions, split_units, unread_paragraphs)
from assistant.text_heuristics import bigrams, containment, is_org

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
EXTRACT_SCHEMA_ROWS = 12        # rows one segment's reply may hold
BODY_MISSING = "〔正文未生成，请补充起草要求或选择参考文件后重试〕"

_CITE = re.compile(r"\[(\d{1,2})\]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CN_DATE = re.compile(r"(\d{4})\s*[年\-./]\s*(\d{1,2})\s*[月\-./]\s*(\d{1,2})\s*日?")


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
                                                or all(is_org(p) for p in split_units(body[0].rstrip("：:")))):
        body.pop(0)
    while body and (not body[-1] or body[-1] == issuer or (len(body[-1]) <= 30 and is_org(body[-1])
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
        rest = "\n".join(unread_paragraphs(text, rules))      # the model reads only what the rules left
        model_rows = []
        warnings: list[str] = []
        segments = [piece for _, piece in _split_pieces(rest, EXTRACT_SEGMENT_CHARS)] if rest else []
        if len(segments) > EXTRACT_MAX_SEGMENTS:
            warnings.append(f"文本较长，仅对前{EXTRACT_MAX_SEGMENTS}段做了模型提取，其余按规则提取。")
        for seg in segments[:EXTRACT_MAX_SEGMENTS]:
            lines = {f"S{i}": ln for i, ln in enumerate((ln for ln in seg.split("\n") if ln.strip()), 1)}
            numbered = "\n".join(f"[{sid}] {ln}" for sid, ln in lines.items())
            messages = ChatPromptTemplate.from_messages(self._chat("extract_actions")).format_messages(text=numbered)
            try:
                schema = rows_schema(list(lines), EXTRACT_SCHEMA_ROWS)
                data, _ = invoke_json(self.llm, messages, SCHEMA_NAME, schema,
                                      max_tokens=EXTRACT_SCHEMA_ROWS * 48)
            except StructuredOutputError as exc:
                warnings.append(f"模型未按JSON格式输出（{exc}），已仅按规则提取。")
                break
            model_rows += read_rows(data, lines)
        # a 完成时限 the text does not state has no place in these rows: 未明确
        rows = [{"事项": r.task, "责任单位": "、".join(r.units),
                 "完成时限": r.deadline if r.deadline and "deadline" not in r.unverified else UNSPECIFIED}
                for r in merge(rules, model_rows, text)]
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
