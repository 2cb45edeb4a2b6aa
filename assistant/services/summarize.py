"""Document summarization (issue #5): one document at a time (`summarize_text`, the API's sync call) or folders in
batch (`summarize_paths`: resumable JSONL + a Markdown digest), three styles, map-reduce for long documents.

Long documents. The text is cut into structure-aware sections (ingest.chunking: 编/章/节/条, 一、/（一）headings,
sentence ends) with ids S1, S2 … and their heading paths (the document's own numbering). Consecutive sections are
packed into parts that fit one request: the window (n_ctx / n_parallel for the local model) minus the prompt and
the output budget, in characters at a conservative characters-per-token rate. Every part is sent to the model
(map); a part the backend still finds too long is split in two and retried, so nothing is silently dropped. Then:
  brief         the part summaries are merged by the model (reduce, hierarchical when they do not fit one request);
  structured    要点/责任单位/时间节点/涉及金额/指标 of every part are merged in document order (no second model pass,
                so each point keeps the section id it came from); a document with ≥ 3 sections gets ≥ 3 要点;
  action-items  the rows the rules read (责任单位/完成时限 labels, 任务分工 tables, '<单位>要…于X月X日前…'), merged
                with every part's model rows in document order (assistant/services/action_items.py).
A one-part document is a single request with the final prompt. The structured and action-items styles are
generated under a JSON schema (response_format json_schema: a grammar on llama.cpp, guided decoding on vLLM), so
their structure is valid by construction; every item names a section from an enum of its part's section ids. A
backend that ignores response_format (its reply is not JSON) fails the document with a clear error; a part whose
JSON is unreadable for another reason (cut off by the output budget) is retried once as two halves.

Batch output, in DIR: summaries.jsonl (one record per document, appended and flushed as each finishes) and digest.md
(rewritten at the end of every run, also an interrupted one). A document is skipped when a record with the same
content hash and settings fingerprint (style + model + prompt version) is already there; a failed document is
recorded with its error, the others go on, and the next run retries it.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Iterable, Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate

from assistant.progress import Progress, no_progress
from assistant.prompts import load_prompt
from assistant.components.llm import StructuredOutputError, invoke_json
from assistant.grounding.atoms import Evidence
from assistant.services.action_items import SCHEMA_NAME
from assistant.services.summary_format import (
    FORMAT_VERSION, STYLES, Part, Section, action_items, action_items_schema, fill_points, grounded,
    make_sections, min_points, order_items, pack_parts, parse_brief, read_action_items, read_structured,
    render_markdown, section_rules, structured_schema, summary_plain_text, trim_cut,
)
from assistant.settings import PROMPTS_DIR, Settings
from ingest.chunking import Block, restore_paragraphs, split_sentences
from ingest.loaders import TEXT_SUFFIXES, LoadError, SourceDocument, decode_text, discover, load_file
from ingest.metadata import extract_metadata

SUMMARIES_FILE = "summaries.jsonl"
DIGEST_FILE = "digest.md"
STYLE_LABELS = {"brief": "一段话摘要", "structured": "结构化摘要", "action-items": "工作任务清单"}
_STYLE_PROMPT = {"brief": "summarize_brief", "structured": "summarize_structured",
                 "action-items": "summarize_action_items"}
_CONTEXT_ERRORS = ("exceeds the available context", "exceed_context_size", "maximum context length",
                   "context length", "context size", "too many tokens", "prompt is too long")


class SummarizeError(RuntimeError):
    """A document could not be summarized (the model returned nothing usable, a backend error)."""


class SummarizeCancelled(Exception):
    """The run was stopped (Ctrl-C, an API job cancelled): the document is left for the next run."""


def _brief_text(raw: str, cut: bool) -> str:
    text = parse_brief(raw)["text"]
    return trim_cut(text) if cut and text else text


def _is_context_error(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return any(m in msg for m in _CONTEXT_ERRORS)


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


class SummarizeService:
    def __init__(self, llm: BaseChatModel | Callable[[], BaseChatModel], settings: Settings, model_name: str):
        self._llm = llm  # a provider defers loading the model until the first request
        self.settings = settings
        self.cfg = settings.summarize
        self.model_name = model_name
        self._lock = threading.Lock()

    # --- configuration ------------------------------------------------------------------------------------

    @property
    def llm(self) -> BaseChatModel:
        with self._lock:
            if not isinstance(self._llm, BaseChatModel):
                self._llm = self._llm()
            # xllamacpp starts its engine on first use: start it here, once, before threads race to it
            if getattr(type(self._llm), "server", None) is not None:
                _ = self._llm.server
            return self._llm

    @property
    def default_concurrency(self) -> int:
        if self.cfg.concurrency:
            return self.cfg.concurrency
        if self.settings.llm.mode in ("local", "scripted"):
            return self.settings.llm.local.n_parallel
        return 4 * max(len(self.settings.llm.openai.base_urls), 1)     # 4 per vLLM replica

    @property
    def context_tokens(self) -> int:
        if self.cfg.context_tokens:
            return self.cfg.context_tokens
        if self.settings.llm.mode in ("local", "scripted"):
            lc = self.settings.llm.local
            return lc.n_ctx // max(lc.n_parallel, 1)
        return 8192

    def _budget(self, prompt: str, max_tokens: int) -> int:
        """Characters of document text one request can hold: window - output - prompt - margin. (Estimated;
        a request the backend still refuses as too long is split in two and retried.)"""
        overhead_chars = len(load_prompt("summarize_system")) + len(load_prompt(prompt)) + 100  # + header, scope
        cpt = self.cfg.chars_per_token
        text_tokens = self.context_tokens - max_tokens - int(overhead_chars / cpt) - 16 - 32  # template, margin
        return max(200, min(int(text_tokens * cpt), self.cfg.max_section_chars))

    def section_chars(self, style: str) -> int:
        return self.cfg.section_chars or self._budget(_STYLE_PROMPT[style], self.cfg.map_max_tokens)

    def prompt_version(self, style: str) -> str:
        names = ["summarize_system", _STYLE_PROMPT[style]] + (["summarize_reduce"] if style == "brief" else [])
        h = hashlib.sha256(FORMAT_VERSION[style].encode())
        for name in names:
            h.update((PROMPTS_DIR / f"{name}.md").read_bytes())
        return h.hexdigest()[:12]

    def fingerprint(self, style: str) -> str:
        """Settings that change a summary: style, model and prompt version (prompt files + output format)."""
        payload = json.dumps({"style": style, "model": self.model_name, "prompt": self.prompt_version(style)},
                             sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @staticmethod
    def check_style(style: str) -> str:
        if style not in STYLES:
            raise ValueError(f"invalid style {style!r}: use one of {', '.join(STYLES)}")
        return style

    # --- one document -------------------------------------------------------------------------------------

    def summarize_text(self, text: str, title: str = "", style: str = "structured", *,
                       metadata: dict | None = None, concurrency: int | None = None) -> dict:
        """Summarize one document given as text (sync). Returns the record of summaries.jsonl (without source)
        plus `ai_label`. Raises ValueError for bad input, SummarizeError when the model gives nothing usable."""
        self.check_style(style)
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text is empty")
        if len(text) > self.cfg.max_text_chars:
            raise ValueError(f"text is longer than {self.cfg.max_text_chars} characters")
        doc = SourceDocument(doc_id="", title=title or "", source="", text=text, metadata=dict(metadata or {}))
        with ThreadPoolExecutor(max(concurrency or self.default_concurrency, 1), "summarize-req") as pool:
            record = self._summarize(doc, _text_blocks(text), style, pool)
        return {"status": "ok", **record, "ai_label": load_prompt("ai_label")}

    def _summarize(self, doc: SourceDocument, blocks: list[Block], style: str, pool: ThreadPoolExecutor,
                   stop: threading.Event | None = None) -> dict:
        t0 = time.perf_counter()
        meta = {k: v for k, v in extract_metadata(doc.text, title_hint=doc.title or None).items() if v}
        meta.update({k: v for k, v in doc.metadata.items() if v not in (None, "")})
        budget = self.section_chars(style)
        sections = make_sections(blocks, max_chars=max(budget - min(160, budget // 4), 120),
                                 min_chars=self.settings.chunking.min_chars)
        if not sections:
            raise SummarizeError("no text to summarize")
        parts = pack_parts(sections, budget)
        header = _header(meta)
        calls = _Calls()
        raw_outputs: list[dict] = []
        if style == "brief":
            outputs = list(pool.map(lambda p: self._map(p, style, header, calls, stop), parts))
            outputs = [o for group in outputs for o in group]  # a part split after a context error gives several
            raw_outputs = [{"sections": p.span, "text": raw, "cut": cut} for p, raw, cut in outputs]
            t_map = time.perf_counter()
            texts = [(p, _brief_text(raw, cut)) for p, raw, cut in outputs]
            if len(texts) == 1:
                summary = {"text": texts[0][1]}
            else:
                summary = {"text": self._reduce([(p.span, p, text) for p, text in texts],
                                                header, len(doc.text), calls, pool, stop)}
            if not summary["text"]:
                raise SummarizeError("the model returned an empty summary")
        else:
            evidence = Evidence.of(doc.text)
            parsed = []
            for group in pool.map(lambda p: self._map_json(p, style, header, len(sections), calls, stop), parts):
                for p, data in group:
                    if style == "structured":
                        source = "\n".join(f"{s.heading}\n{s.text}" for s in p.sections)
                        parsed.append(read_structured(data, p.sections, source, evidence))
                    else:
                        parsed.append(read_action_items(data, p.sections))
                    raw_outputs.append({"sections": p.span, "text": json.dumps(data, ensure_ascii=False),
                                        "cut": False})
            t_map = time.perf_counter()
            if style == "structured":
                summary = _merge_structured(parsed, sections)
            else:
                summary = {"items": action_items([r for rows in parsed for r in rows], sections)}
        t_end = time.perf_counter()
        return {
            "doc_id": doc.doc_id,
            "content_hash": doc.content_hash,
            "title": str(meta.get("title") or doc.title or ""),
            "doc_number": meta.get("doc_number", ""),          # 文号
            "agency": meta.get("agency", ""),
            "date": meta.get("date", ""),
            "doc_type": meta.get("doc_type", ""),
            "style": style,
            "summary": summary,
            "markdown": render_markdown(style, summary, sections),
            "sections": [s.to_dict() for s in sections],
            "chars": len(doc.text),
            "n_parts": len(parts),
            "llm_calls": calls.n,
            "model": self.model_name,
            "prompt_version": self.prompt_version(style),
            "fingerprint": self.fingerprint(style),
            "usage": calls.usage,
            "model_outputs": raw_outputs + calls.reduce_outputs,   # what the model said, before parsing (audit)
            "timings": {"map_ms": round((t_map - t0) * 1000, 1), "reduce_ms": round((t_end - t_map) * 1000, 1),
                        "total_ms": round((t_end - t0) * 1000, 1)},
            "ai_generated": True,   # 人工智能生成合成内容标识
        }

    def _invoke(self, prompt: str, variables: dict, max_tokens: int, calls: "_Calls",
                stop: threading.Event | None) -> tuple[str, bool]:
        """(answer, cut off by the output budget)"""
        if stop is not None and stop.is_set():
            raise SummarizeCancelled("stopped")
        template = ChatPromptTemplate.from_messages([("system", load_prompt("summarize_system")),
                                                     ("human", load_prompt(prompt))])
        kwargs: dict = {"max_tokens": max_tokens}
        if self.settings.llm.mode == "openai":
            kwargs["extra_body"] = {"max_tokens": max_tokens}  # llama.cpp-style servers ignore max_completion_tokens
        msg = (template | self.llm.bind(**kwargs)).invoke(variables)
        calls.add(getattr(msg, "usage_metadata", None))
        finish = (getattr(msg, "response_metadata", None) or {}).get("finish_reason")
        return str(msg.content or ""), finish == "length"

    def _map(self, part: Part, style: str, header: str, calls: "_Calls",
             stop: threading.Event | None) -> list[tuple[Part, str, bool]]:
        scope = "这份文档" if part.of == 1 else f"这份文档的第{part.index}部分（共{part.of}部分，{part.span}段）"
        target = self._brief_target(sum(len(s.text) for s in part.sections))
        variables = {"scope": scope, "header": header, "text": part.render(), "length": f"不超过{target}字"}
        max_tokens = self._brief_tokens(target) if style == "brief" else self.cfg.map_max_tokens
        try:
            raw, cut = self._invoke(_STYLE_PROMPT[style], variables, max_tokens, calls, stop)
        except Exception as exc:
            halves = _split_part(part) if _is_context_error(exc) else None
            if not halves:
                raise
            return [o for h in halves for o in self._map(h, style, header, calls, stop)]
        return [(part, raw, cut)]

    def _map_json(self, part: Part, style: str, header: str, doc_sections: int, calls: "_Calls",
                  stop: threading.Event | None, retry: bool = True) -> list[tuple[Part, dict]]:
        """One part under the style's JSON schema → [(part, the model's object)]. A part the backend finds too
        long is split in two (as often as needed); unreadable JSON is retried once as two halves (an answer cut
        off by the output budget), then fails the document with the reason."""
        if stop is not None and stop.is_set():
            raise SummarizeCancelled("stopped")
        ids = [s.id for s in part.sections]
        if style == "structured":
            schema = structured_schema(ids, min_points(len(ids), doc_sections))
        else:
            schema = action_items_schema(ids)
        scope = "这份文档" if part.of == 1 else f"这份文档的第{part.index}部分（共{part.of}部分，{part.span}段）"
        template = ChatPromptTemplate.from_messages([("system", load_prompt("summarize_system")),
                                                     ("human", load_prompt(_STYLE_PROMPT[style]))])
        messages = template.format_messages(scope=scope, header=header, text=part.render(),
                                            ids="、".join(ids), min_points=max(min_points(len(ids), doc_sections), 1))
        max_tokens = self._json_tokens(part, style)
        llm = self.llm
        if self.settings.llm.mode == "openai":
            llm = llm.bind(extra_body={"max_tokens": max_tokens})  # llama.cpp-style servers ignore max_completion_tokens
        try:
            name = "structured" if style == "structured" else SCHEMA_NAME
            data, usage = invoke_json(llm, messages, name, schema, max_tokens)
        except StructuredOutputError as exc:
            calls.add(None)
            halves = _split_part(part) if retry else None
            if not halves:
                raise SummarizeError(f"structured output for sections {part.span} failed: {exc}") from None
            return [o for h in halves for o in self._map_json(h, style, header, doc_sections, calls, stop, False)]
        except Exception as exc:
            halves = _split_part(part) if _is_context_error(exc) else None
            if not halves:
                raise
            return [o for h in halves for o in self._map_json(h, style, header, doc_sections, calls, stop, retry)]
        calls.add(usage)
        return [(part, data)]

    def _json_tokens(self, part: Part, style: str) -> int:
        """Output budget of a JSON request: what the window leaves after the prompt (estimated at the
        conservative characters-per-token rate), at least map_max_tokens, at most twice that."""
        prompt_chars = len(load_prompt("summarize_system")) + len(load_prompt(_STYLE_PROMPT[style])) + 100
        used = int((prompt_chars + part.chars) / self.cfg.chars_per_token) + 48
        left = self.context_tokens - used
        return max(self.cfg.map_max_tokens, min(left, 2 * self.cfg.map_max_tokens))

    def _brief_target(self, chars: int) -> int:
        """Characters a brief summary asks for: about a quarter of the text, 60..brief_max_chars."""
        return max(60, min(self.cfg.brief_max_chars, int(round(chars / 4, -1))))

    def _brief_tokens(self, target_chars: int) -> int:
        """Output budget of a brief answer: the asked length with a third to spare (a small model overshoots;
        a cut answer is ended at its last complete sentence)."""
        return min(self.cfg.map_max_tokens, int(target_chars * 1.33 / self.cfg.chars_per_token) + 24)

    def _reduce(self, partials: list[tuple[str, Part, str]], header: str, doc_chars: int, calls: "_Calls",
                pool: ThreadPoolExecutor, stop: threading.Event | None) -> str:
        """Merge part summaries into one paragraph; groups that fit one request at a time (hierarchical)."""
        budget = self._budget("summarize_reduce", self.cfg.reduce_max_tokens)
        items = [(label, _heading_range(part), text) for label, part, text in partials if text]
        if not items:
            return ""
        while True:
            groups: list[list[tuple[str, str, str]]] = []
            for it in items:
                if groups and (len(groups[-1]) < 2 or len(_render_partials(groups[-1] + [it])) <= budget):
                    groups[-1].append(it)
                else:
                    groups.append([it])
            final = len(groups) == 1
            length = f"不超过{self._brief_target(doc_chars)}字" if final else "不超过200字"

            def merge(group: list[tuple[str, str, str]], length: str = length, final: bool = final
                      ) -> tuple[str, str, str]:
                want = self._brief_target(doc_chars) if final else 200
                raw, cut = self._invoke("summarize_reduce", {"header": header, "text": _render_partials(group),
                                                             "length": length},
                                        min(self.cfg.reduce_max_tokens, self._brief_tokens(want)), calls, stop)
                first, last = group[0][0].split("–")[0], group[-1][0].split("–")[-1]
                calls.reduce_outputs.append({"sections": f"{first}–{last}", "text": raw, "cut": cut, "reduce": True})
                return f"{first}–{last}", "", _brief_text(raw, cut)

            items = list(pool.map(merge, groups))
            if final:
                return items[0][2]

    # --- batches ------------------------------------------------------------------------------------------

    def summarize_paths(self, paths: Iterable[str | Path], out_dir: str | Path, style: str | None = None,
                        concurrency: int | None = None, max_docs: int | None = None,
                        progress: Progress = no_progress, stop: threading.Event | None = None) -> dict:
        """Summarize every document under `paths` (files, folders; .jsonl records are documents) into
        out_dir/summaries.jsonl and out_dir/digest.md. Resumable; a failed document does not stop the batch.
        `max_docs`: only the first N documents of the input (in discovery order). `stop`: set it to end the run
        early (API job cancel); a KeyboardInterrupt does the same and is re-raised. Returns a report dict."""
        style = self.check_style(style or self.cfg.style)
        concurrency = max(concurrency or self.default_concurrency, 1)
        if max_docs is not None and max_docs < 1:
            raise ValueError("max_docs must be at least 1")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        fingerprint = self.fingerprint(style)
        log = _RecordLog(out / SUMMARIES_FILE)
        done = log.done(fingerprint)
        files, problems = discover([paths] if isinstance(paths, (str, Path)) else list(paths))
        if not files and not problems:
            raise ValueError("no input paths given")
        total = len(problems) + sum(_count_documents(f) for f in files)
        total = min(total, max_docs) if max_docs else total
        stop = stop or threading.Event()
        t_start = time.perf_counter()
        counts = {"summarized": 0, "skipped": 0, "reused": 0, "failed": 0}
        batch: dict[int, dict] = {}          # input position -> the record that stands for it
        failures: list[dict] = []
        waiting: dict[str, list[tuple[int, str, SourceDocument]]] = {}   # content hash -> duplicates in flight
        inflight: dict[Future, tuple[int, str, SourceDocument]] = {}
        interrupted: BaseException | None = None
        llm_checked = False

        def report_progress(detail: str = "") -> None:
            minutes = (time.perf_counter() - t_start) / 60
            rate = counts["summarized"] / minutes if minutes > 0 else 0.0
            progress("summarize", sum(counts.values()), total,
                     f"失败 {counts['failed']} · {rate:.1f} 篇/分钟" + (f" · {detail}" if detail else ""))

        def record_failure(index: int, source: str, error: str, doc: SourceDocument | None) -> None:
            rec = {"source": source, "doc_id": doc.doc_id if doc else "", "content_hash": doc.content_hash if doc
                   else None, "title": doc.title if doc else "", "style": style, "status": "failed", "error": error,
                   "model": self.model_name, "prompt_version": self.prompt_version(style),
                   "fingerprint": fingerprint, "ai_generated": False, "created_at": _now()}
            log.append(rec)
            batch[index] = rec
            failures.append({"source": source, "error": error})
            counts["failed"] += 1

        def finish(fut: Future) -> None:
            index, source, doc = inflight.pop(fut)
            exc = fut.exception()
            dups = waiting.pop(doc.content_hash, [])
            if isinstance(exc, SummarizeCancelled):
                return
            if exc is not None and not isinstance(exc, Exception):
                raise exc  # KeyboardInterrupt, SystemExit … from a worker: stop the run
            if exc is not None:
                record_failure(index, source, _error_text(exc), doc)
                for d_index, d_source, d_doc in dups:
                    record_failure(d_index, d_source, _error_text(exc), d_doc)
                report_progress(source)
                return
            rec = {"source": source, "status": "ok", "error": None, **fut.result(), "created_at": _now()}
            log.append(rec)
            done[doc.content_hash] = rec
            batch[index] = rec
            counts["summarized"] += 1
            for d_index, d_source, d_doc in dups:
                batch[d_index] = log.append({**rec, "source": d_source, "doc_id": d_doc.doc_id,
                                             "reused_from": source, "created_at": _now()})
                counts["reused"] += 1
            report_progress(rec.get("title") or source)

        report_progress()
        pool = ThreadPoolExecutor(concurrency, "summarize-doc")
        requests = ThreadPoolExecutor(concurrency, "summarize-req")
        try:
            index = -1
            for index, (source, item, blocks) in enumerate(self._documents(files, problems)):
                if max_docs and index >= max_docs or stop.is_set():
                    break
                if isinstance(item, LoadError):
                    record_failure(index, source, item.message, None)
                    report_progress(source)
                    continue
                h = item.content_hash
                if h in done:
                    prev = done[h]
                    if prev["source"] == source:
                        batch[index] = prev
                        counts["skipped"] += 1
                    else:
                        batch[index] = log.append({**prev, "source": source, "doc_id": item.doc_id,
                                                   "reused_from": prev["source"], "created_at": _now()})
                        counts["reused"] += 1
                    report_progress()
                    continue
                if h in waiting:
                    waiting[h].append((index, source, item))
                    continue
                if len(item.text) > self.cfg.max_text_chars:
                    record_failure(index, source, f"longer than {self.cfg.max_text_chars} characters "
                                                  "(summarize.max_text_chars)", item)
                    continue
                if not llm_checked:  # the first document to summarize loads the model: a missing one stops the run
                    _ = self.llm
                    llm_checked = True
                waiting[h] = []
                fut = pool.submit(self._summarize, item, blocks, style, requests, stop)
                inflight[fut] = (index, source, item)
                while len(inflight) >= 2 * concurrency:
                    for f in wait(list(inflight), return_when=FIRST_COMPLETED).done:
                        finish(f)
            while inflight:
                for f in wait(list(inflight), return_when=FIRST_COMPLETED).done:
                    finish(f)
        except BaseException as exc:  # noqa: BLE001 - Ctrl-C or a fatal error: keep what finished, then re-raise
            interrupted = exc
            stop.set()
            for f in list(inflight):
                f.cancel()
            while inflight:  # the documents already at the model finish (or stop at their next request)
                for f in wait(list(inflight), return_when=FIRST_COMPLETED).done:
                    try:
                        finish(f)
                    except BaseException:  # noqa: BLE001 - the first interruption is the one reported
                        pass
                    inflight.pop(f, None)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            requests.shutdown(wait=False, cancel_futures=True)
            log.close()
            seconds = time.perf_counter() - t_start
            digest = write_digest(out / DIGEST_FILE, [batch[i] for i in sorted(batch)], style, self.model_name,
                                  interrupted=interrupted is not None or stop.is_set())
        if interrupted is not None:
            raise interrupted
        return {
            "out_dir": str(out), "summaries": str(log.path), "digest": str(digest), "style": style,
            "model": self.model_name, "fingerprint": fingerprint, "concurrency": concurrency, "total": total,
            "counts": counts, "seconds": round(seconds, 2),
            "docs_per_minute": round(counts["summarized"] / (seconds / 60), 2) if seconds > 0 else 0.0,
            "cancelled": stop.is_set() and sum(counts.values()) < total, "failures": failures,
            "ok": counts["failed"] == 0,
        }

    def _documents(self, files: list[Path], problems: list[LoadError]
                   ) -> Iterator[tuple[str, SourceDocument | LoadError, list[Block] | None]]:
        """(source, document or error, blocks) in input order; unsupported/missing paths come first."""
        for p in problems:
            yield str(Path(p.source).resolve()), p, None
        for path in files:
            try:
                for item in load_file(path, limits=self.settings.ingest):   # the ingest guards, as configured
                    if isinstance(item, LoadError):  # a bad .jsonl line: "path:line"
                        yield f"{path.resolve()}:{item.source.rsplit(':', 1)[-1]}", item, None
                    elif path.suffix.lower() == ".jsonl":
                        line = item.source.rsplit(":", 1)[-1]
                        yield f"{path.resolve()}:{line}", item, _text_blocks(item.text)
                    else:
                        yield item.source, item, _file_blocks(path, item)
            except LoadError as exc:
                yield str(path.resolve()), exc, None
            except Exception as exc:  # noqa: BLE001 - any parser failure is this file's failure
                yield str(path.resolve()), LoadError(str(path), f"cannot read: {_error_text(exc)}"), None


# --- helpers --------------------------------------------------------------------------------------------

class _Calls:
    """Model requests and token usage of one document (map requests run in parallel threads)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.n = 0
        self.usage = {"input_tokens": 0, "output_tokens": 0}
        self.reduce_outputs: list[dict] = []

    def add(self, usage: dict | None) -> None:
        with self._lock:
            self.n += 1
            for k in self.usage:
                self.usage[k] += int((usage or {}).get(k, 0) or 0)


class _RecordLog:
    """summaries.jsonl: append + flush + fsync per record; a torn last line (killed mid-write) is skipped on
    reading and closed before the next append."""

    def __init__(self, path: Path):
        self.path = path
        self._f = None

    def records(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            for raw in f:
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    yield rec

    def done(self, fingerprint: str) -> dict[str, dict]:
        return {r["content_hash"]: r for r in self.records()
                if r.get("status") == "ok" and r.get("fingerprint") == fingerprint and r.get("content_hash")}

    def append(self, rec: dict) -> dict:
        if self._f is None:
            self._f = open(self.path, "ab")
            if self._f.tell() > 0:
                with open(self.path, "rb") as r:
                    r.seek(-1, os.SEEK_END)
                    if r.read(1) != b"\n":
                        self._f.write(b"\n")
        self._f.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
        self._f.flush()
        os.fsync(self._f.fileno())
        return rec

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _text_blocks(text: str) -> list[Block]:
    text = restore_paragraphs(text.replace("\r\n", "\n"))    # a flattened page keeps its 一、/（一） sections
    return [Block(line) for line in text.split("\n") if line.strip()]


def _file_blocks(path: Path, doc: SourceDocument) -> list[Block]:
    """Text files are sectioned from their own lines: the chunker reads markdown (#, **, 1. **标题**。) itself,
    while unstructured's text partitioner splits such lines apart and loses the item numbers."""
    if path.suffix.lower() in TEXT_SUFFIXES:
        try:
            return _text_blocks(decode_text(path.read_bytes(), str(path)))
        except (OSError, LoadError):
            pass
    return doc.blocks or _text_blocks(doc.text)


def _count_documents(path: Path) -> int:
    if path.suffix.lower() != ".jsonl":
        return 1
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 1


def _header(meta: dict) -> str:
    bits = []
    if meta.get("title"):
        bits.append(f"【标题】{meta['title']}")
    extra = [meta.get(k) for k in ("doc_number", "agency", "date") if meta.get(k)]
    if extra:
        bits.append("【文号/发文机关/日期】" + "；".join(extra))
    return "\n".join(bits)


def _heading_range(part: Part) -> str:
    heads = [s.heading_path[0] for s in part.sections if s.heading_path]
    heads = list(dict.fromkeys(heads))
    if not heads:
        return ""
    return heads[0] if len(heads) == 1 else f"{heads[0]} 至 {heads[-1]}"


def _render_partials(items: list[tuple[str, str, str]]) -> str:
    return "\n".join(f"（{label}{'，' + heads if heads else ''}）{text}" for label, heads, text in items)


def _split_part(part: Part) -> list[Part] | None:
    """Two halves of a part the backend found too long: by sections, else one section's text by sentences."""
    if len(part.sections) > 1:
        mid = len(part.sections) // 2
        return [Part(part.sections[:mid], part.index, part.of), Part(part.sections[mid:], part.index, part.of)]
    s = part.sections[0]
    if len(s.text) < 100:
        return None
    sentences = split_sentences(s.text)
    if len(sentences) < 2:
        half = len(s.text) // 2
        texts = [s.text[:half], s.text[half:]]
    else:
        acc, cut = 0, len(sentences) - 1
        for i, sent in enumerate(sentences):
            acc += len(sent)
            if acc >= len(s.text) / 2:
                cut = max(i, 0) + 1 if i + 1 < len(sentences) else i
                break
        texts = ["".join(sentences[:cut]), "".join(sentences[cut:])]
    return [Part([Section(s.id, s.heading_path, t)], part.index, part.of) for t in texts if t]


def _merge_structured(parsed: list[dict], sections: list[Section]) -> dict:
    points = order_items([p for d in parsed for p in d["points"]], sections)
    deadlines = order_items([p for d in parsed for p in d["deadlines"]], sections)
    figures = order_items([p for d in parsed for p in d["figures"]], sections)
    units = list(dict.fromkeys(u for d in parsed for u in d["units"]))
    # what the document states outright is never lost to a small model's omission
    by_id = {s.id: s for s in sections}
    for row in section_rules(sections)[1]:
        units += [u for u in row.units if u not in units and len(u) <= 40]
        sid, when = row.sections[0], row.deadline
        if when and not any(when in d["text"] and sid in d["sections"] for d in deadlines):
            what = row.task or by_id[sid].heading
            deadlines.append({"text": f"{when}：{what}" if what else when, "sections": [sid], "from_source": True})
    return {"points": fill_points(_dedupe_texts(points), sections), "units": units,
            "deadlines": order_items(_dedupe_texts(deadlines), sections), "figures": _dedupe_texts(figures)}


def _dedupe_texts(items: list[dict]) -> list[dict]:
    seen, out = set(), []
    for it in items:
        key = re.sub(r"\W", "", it["text"])
        if key not in seen:
            seen.add(key)
            out.append(it)
    return out


def _error_text(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())[:500]
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


# --- digest ---------------------------------------------------------------------------------------------

def write_digest(path: Path, records: list[dict], style: str, model: str, interrupted: bool = False) -> Path:
    """digest.md for a batch, in input order, written atomically; carries the AI-generated label."""
    ok = [r for r in records if r.get("status") == "ok"]
    failed = [r for r in records if r.get("status") != "ok"]
    label = load_prompt("ai_label")
    lines = [f"# 文档摘要汇总 · {STYLE_LABELS.get(style, style)}", "",
             f"> {label}", "",
             f"生成时间：{_now()} · 模型：{model} · 共 {len(records)} 篇，成功 {len(ok)} 篇，失败 {len(failed)} 篇"
             + ("（本次运行被中断，重新运行同一命令可继续）" if interrupted else ""), ""]
    if ok:
        lines += ["## 目录", ""]
        lines += [f"{i}. {_doc_label(r)}" for i, r in enumerate(ok, 1)]
        lines.append("")
    for i, r in enumerate(ok, 1):
        lines += [f"## {i}. {_doc_label(r)}", ""]
        facts = [f for f in (r.get("agency"), r.get("date")) if f]
        lines.append(f"来源：`{r.get('source', '')}`" + (f" · {' · '.join(facts)}" if facts else "")
                     + f" · {r.get('chars', 0)} 字，{len(r.get('sections') or [])} 段，分 {r.get('n_parts', 1)} 部分摘要")
        lines += ["", r.get("markdown") or "", ""]
    if failed:
        lines += ["## 未能生成摘要的文档", ""]
        lines += [f"- `{r.get('source', '')}`：{r.get('error', '')}" for r in failed]
        lines.append("")
    lines += ["---", label, ""]
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _doc_label(r: dict) -> str:
    title = r.get("title") or Path(str(r.get("source", "")).split(":")[0]).stem or r.get("doc_id", "")
    label = title if title.startswith("《") else f"《{title}》"
    return label + (f"（{r['doc_number']}）" if r.get("doc_number") else "")


# --- evaluation -----------------------------------------------------------------------------------------

def score_summaries(predictions: list, references: list[str], tokenize: str = "char") -> dict:
    """ROUGE-L F (×100) of summaries against references, character level by default (assistant.text_metrics.rouge_l;
    tokenize="jieba" for word level, "lawbench" for LawBench's own scorer: jieba + rouge-chinese). A prediction
    is a str, a summaries.jsonl record or summarize_text's result."""
    from assistant.text_metrics import mean, rouge_l, rouge_l_lawbench

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    texts = [p if isinstance(p, str) else summary_plain_text(p.get("style", "brief"), p.get("summary") or {})
             if p.get("status", "ok") == "ok" else "" for p in predictions]
    scores = rouge_l_lawbench(texts, references) if tokenize == "lawbench" else \
        [rouge_l(t, ref, tokenize) for t, ref in zip(texts, references)]
    return {"n": len(scores), "tokenize": tokenize, "rouge_l": round(100 * mean(scores), 2),
            "per_item": [round(100 * s, 2) for s in scores],
            "mean_chars": round(mean(len(t) for t in texts), 1) if texts else 0.0}


__all__ = ["SummarizeService", "SummarizeError", "SummarizeCancelled", "score_summaries", "write_digest",
           "STYLES", "grounded"]
