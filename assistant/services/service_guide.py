"""One-stop service (一网通办): answer a citizen's or enterprise's request from service-guide documents (办事指南) in
the structured form people expect — 办理条件, 申请材料, 办理流程, 办理时限, 收费标准, 办理地点, 依据 — each field cited,
"未找到" where the knowledge base is silent.

Structure first: retrieval finds the guide that matches the request, and its sections (chunk heading paths such as
"四、申请材料", or inline labels such as "办理时限：…") fill the fields verbatim. No field is ever written by the model;
the model is called at most once, only to condense sections longer than `condense_over` characters, under a JSON
schema (one string per field), and its condensation is kept only when every number and 《名称》 in it occurs in the
section it condenses.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict
from typing import Callable

from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate

from assistant.answering import Citation
from assistant.components.llm import StructuredOutputError, invoke_json
from assistant.components.store.catalog import Catalog
from assistant.grounding.atoms import unsupported_atoms
from assistant.prompts import load_prompt
from assistant.retrieval import Hit, HybridSearcher
from assistant.services.access import Principal, scope
from assistant.settings import Settings

FIELDS = ("办理条件", "申请材料", "办理流程", "办理时限", "收费标准", "办理地点", "依据")
NOT_FOUND = "未找到"
MAX_REQUEST_CHARS = 500
GUIDE_TYPES = ("办事指南", "指南", "服务指南")
# a heading (numbering stripped) maps to the first field whose words it contains; the order settles overlaps
_FIELD_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("办理时限", ("时限", "期限", "办结时间", "办理时间")),
    ("收费标准", ("收费", "费用")),
    ("申请材料", ("材料", "要件")),
    ("办理条件", ("条件", "准入标准", "受理范围")),
    ("办理流程", ("流程", "程序", "步骤", "环节")),
    ("办理地点", ("地点", "地址", "窗口", "线上入口", "办理渠道", "办理方式")),
    ("依据", ("依据",)),
)
_INLINE_LABEL = re.compile(r"^(?:\d+\s*[.．、]\s*)?(办理时限|承诺时限|法定时限|收费标准|是否收费|办理地点|办理地址|申请材料|"
                           r"办理条件|申请条件|受理条件|办理流程|办理程序|设定依据|办理依据|法律依据|实施依据)\s*[：:]\s*(.+)$")
_NUMBERING = re.compile(r"^\s*(?:第[一二三四五六七八九十百零〇\d]+[编章节条]|[一二三四五六七八九十]+、|"
                        r"[（(][一二三四五六七八九十\d]+[）)]|\d+\s*[.．、])\s*")
log = logging.getLogger(__name__)


def field_of(heading: str) -> str | None:
    h = _NUMBERING.sub("", heading).strip()
    for name, words in _FIELD_WORDS:
        if any(w in h for w in words):
            return name
    return None


def heading_parts(meta: dict) -> list[str]:
    """The chunk's heading path without the document title: '《T》一、A > （一）B' -> ['一、A', '（一）B']."""
    heading = str(meta.get("heading") or "")
    title = str(meta.get("title") or "")
    for prefix in (f"《{title}》", title):
        if prefix and heading.startswith(prefix):
            heading = heading[len(prefix):]
            break
    return [p.strip() for p in heading.split(" > ") if p.strip()]


def empty_fields() -> dict[str, dict]:
    return {name: {"text": NOT_FOUND, "citations": [], "found": False} for name in FIELDS}


class ServiceGuideService:
    def __init__(self, llm: BaseChatModel | Callable[[], BaseChatModel], searcher: HybridSearcher, catalog: Catalog,
                 settings: Settings, condense_over: int = 800, candidates: int = 10):
        self._llm = llm     # a provider: the model is loaded only if a section needs condensing
        self.searcher = searcher
        self.catalog = catalog
        self.settings = settings
        self.condense_over = condense_over
        self.candidates = candidates

    @property
    def llm(self) -> BaseChatModel:
        if not isinstance(self._llm, BaseChatModel):
            self._llm = self._llm()
        return self._llm

    # -- structure ------------------------------------------------------------------------------------------
    def _sections(self, kb: str, doc_id: str) -> dict[str, list[dict]]:
        """field -> the document's chunks in reading order (a chunk may carry an inline-labelled line)."""
        out: dict[str, list[dict]] = {}
        chunks = self.catalog.document_chunks(kb, doc_id)
        for ch in chunks:
            parts = heading_parts(ch["metadata"])
            name, lead = None, ""
            for part in parts:
                if name := field_of(part):
                    # a lead-in sentence taken for a heading by the chunker ("……并符合下列条件：") is content
                    if not _NUMBERING.match(part) and len(part) > 12:
                        lead = part
                    break
            if name:
                out.setdefault(name, []).append({**ch, "lead": lead})
        for ch in chunks:   # inline labels fill what headings did not ("办理时限：当场办结")
            for line in ch["text"].split("\n"):
                m = _INLINE_LABEL.match(line.strip())
                if m and (name := field_of(m.group(1))) and name not in out:
                    out[name] = [{**ch, "text": m.group(2).strip(), "lead": ""}]
        return out

    def _choose(self, hits: list[Hit]) -> tuple[str, str, dict[str, list[dict]]] | None:
        """The best-scoring document that reads as a service guide (typed 办事指南, or ≥ 2 guide sections)."""
        scores: dict[tuple[str, str], float] = {}
        for h in hits:
            scores[(h.kb, h.doc_id)] = scores.get((h.kb, h.doc_id), 0.0) + h.score
        meta = {(h.kb, h.doc_id): h.metadata for h in hits}
        for (kb, doc_id), _ in sorted(scores.items(), key=lambda kv: -kv[1])[:5]:
            sections = self._sections(kb, doc_id)
            typed = str(meta[(kb, doc_id)].get("doc_type", "")) in GUIDE_TYPES
            if sections and (typed or len(sections) >= 2):
                return kb, doc_id, sections
        return None

    # -- condensing (at most one model call) ----------------------------------------------------------------
    def _condense(self, texts: dict[str, str]) -> dict[str, str]:
        """The long sections condensed in one request under a JSON schema (one string per field, shorter than its
        section); a condensation is kept only when every number and 《名称》 in it occurs in its section. A backend
        that ignores response_format (not JSON) leaves every field verbatim."""
        long = {k: v for k, v in texts.items() if len(v) > self.condense_over}
        if not long:
            return {}
        sections = "\n\n".join(f"【{k}】\n{v}" for k, v in long.items())
        messages = ChatPromptTemplate.from_messages([("human", load_prompt("service_guide"))]).format_messages(
            sections=sections)
        schema = {"type": "object", "additionalProperties": False, "required": list(long),
                  "properties": {k: {"type": "string", "minLength": 20, "maxLength": max(20, len(v) * 3 // 4)}
                                 for k, v in long.items()}}
        budget = sum(schema["properties"][k]["maxLength"] for k in long)
        try:
            reply, _ = invoke_json(self.llm, messages, "service_guide", schema,
                                   max_tokens=min(2048, int(budget / 1.2) + 24 * len(long)))
        except StructuredOutputError as exc:
            log.warning("service guide: condensation skipped, the sections stay verbatim: %s", exc)
            return {}
        out = {}
        for name, source in long.items():
            short = reply.get(name)
            short = short.strip() if isinstance(short, str) else ""
            if not (20 <= len(short) < len(source)):
                continue
            if not unsupported_atoms(short, source):
                out[name] = short
        return out

    # -- the service ----------------------------------------------------------------------------------------
    def guide(self, request: str, kbs: list[str], *, principal: Principal) -> dict:
        t_start = time.perf_counter()
        request = (request or "").strip()
        if not request:
            raise ValueError("request is empty")
        if len(request) > MAX_REQUEST_CHARS:
            raise ValueError(f"request is longer than {MAX_REQUEST_CHARS} characters")
        if not kbs:
            raise ValueError("no knowledge base given")
        kbs, visible = scope(principal, list(kbs))
        for kb in kbs:
            self.catalog.require_kb(kb)
        result = {"request": request, "fields": empty_fields(), "citations": [], "ai_generated": True,
                  "document": None, "timings": {}}
        t0 = time.perf_counter()
        hits = self.searcher.search(request, kbs, visible, max(self.candidates, self.settings.retrieval.top_k)).hits
        timings = {"retrieval_ms": (time.perf_counter() - t0) * 1000}
        chosen = self._choose(hits) if self.searcher.has_evidence(hits) else None
        if chosen is not None:
            kb, doc_id, sections = chosen
            citations: list[Citation] = []
            numbered: dict[str, int] = {}
            texts: dict[str, str] = {}
            refs: dict[str, list[int]] = {}
            for name in FIELDS:
                chunks = sections.get(name)
                if not chunks:
                    continue
                pieces: list[str] = []
                for ch in chunks:
                    if ch["chunk_id"] not in numbered:
                        n = len(citations) + 1
                        numbered[ch["chunk_id"]] = n
                        citations.append(Citation.from_hit(n, Hit(ch["chunk_id"], doc_id, kb, ch["text"],
                                                                  ch["metadata"])))
                        citations[-1].cited = True
                    if ch["lead"] and ch["lead"] not in pieces:
                        pieces.append(ch["lead"])
                    pieces.append(ch["text"])
                    refs.setdefault(name, [])
                    if numbered[ch["chunk_id"]] not in refs[name]:
                        refs[name].append(numbered[ch["chunk_id"]])
                texts[name] = "\n".join(pieces).strip()
            t0 = time.perf_counter()
            condensed = self._condense(texts)
            if condensed:
                timings["llm_ms"] = (time.perf_counter() - t0) * 1000
            for name, text in texts.items():
                if text:
                    result["fields"][name] = {"text": condensed.get(name, text), "citations": refs[name],
                                              "found": True}
            doc = self.catalog.get_document(kb, doc_id) or {}
            result["citations"] = [asdict(c) for c in citations]
            result["document"] = {"kb": kb, "doc_id": doc_id, "title": doc.get("title") or "",
                                  "condensed": sorted(condensed)}
        timings["total_ms"] = (time.perf_counter() - t_start) * 1000
        result["timings"] = {k: round(v, 1) for k, v in timings.items()}
        return result
