"""Grounded answering: condense a follow-up → retrieve → evidence gate → prompt → LLM → [n] citations | refusal."""
from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.prompts import ChatPromptTemplate

from assistant.filters import AMENDED, Filters
from assistant.grounding.answer_type import answers_kind, asked_kind, states
from assistant.grounding.answerability import (answerability, first_token_logprobs, refusal_mass, retrieval_signals,
                                               scorer_probability, text_signals)
from assistant.grounding.atoms import Evidence
from assistant.grounding.concise import is_closing_remark, is_lead_in, strip_echo
from assistant.grounding.constraints import (describe_missing, missing_constraints, passage_evidence,
                                             question_constraints, satisfies)
from assistant.grounding.extractive import Extract, best_extract, best_quote
from assistant.grounding.focus import focus_text, shared_focus
from assistant.grounding.injection import injection_attempt
from assistant.grounding.verify import (AnchorPassage, AnchorQuestion, SentenceCheck, Verification, anchor,
                                        anchored, check_sentence, has_content, split_sentences, substantive, union)
from assistant.prompts import load_prompt
from assistant.retrieval import Hit, HybridSearcher, positions, query_terms
from assistant.settings import Settings
from assistant.text_heuristics import add_marker, bigrams, same_text

ATOM_KIND_NAMES = {"amount": "金额", "percent": "比例", "date": "日期", "number": "数字", "doc_number": "文号",
                   "article": "条款", "document": "文件名称", "place": "地名", "agency": "机关名称",
                   "year": "年份", "content": "内容"}
REFUSAL_MARKERS = ("知识库中未找到", "未找到相关依据", "资料中没有", "参考资料中没有", "无法根据参考资料")
_CITE = re.compile(r"\[(\d{1,2})\]")
log = logging.getLogger(__name__)
_LEAD_NUMBER = re.compile(r"^\s*[（(]?(?:\d{1,3}|[一二三四五六七八九十]{1,3})[)）.、．]\s*")
TOP_LOGPROBS = 10      # candidates read for the first answer token (answerability: first_token)


def citation_label(meta: dict) -> str:
    """《法名》第X条 for law articles; 《标题》（文号） for documents."""
    if meta.get("law") and meta.get("article"):
        return f"《{meta['law']}》{meta['article']}"
    label = f"《{meta.get('title', '')}》"
    if meta.get("doc_number"):
        label += f"（{meta['doc_number']}）"
    return label


def amended_notice(meta: dict) -> str | None:
    """The warning an 已被修改 text carries wherever it is cited (retrieved by default when it is the newest text
    the knowledge base holds of its law, or asked for by status)."""
    return load_prompt("amended_notice") if meta.get("status") == AMENDED else None


def with_amended_notice(text: str, citations: list["Citation"]) -> str:
    """The answer with the warning said once, naming the amended texts it rests on (those cited, or all of the
    passages when none is marked)."""
    rest_on = [c for c in citations if c.cited] or citations
    names = list(dict.fromkeys(f"《{c.metadata.get('law') or c.title}》" for c in rest_on if c.notice))
    return f"{text}\n\n注意：所引{'、'.join(names)}：{load_prompt('amended_notice')}。" if names else text


def document_header(meta: dict) -> str:
    """《标题》（文号）（发文机关，成文日期，效力）: said once for all of a document's passages in the prompt."""
    bits = [b for b in (meta.get("agency"), meta.get("date"), meta.get("status")) if b]
    label = f"《{meta['law']}》" if meta.get("law") else citation_label(meta)   # its articles open with 第X条
    return label + (f"（{'，'.join(bits)}）" if bits else "")


def passage_header(n: int, meta: dict, text: str = "") -> str:
    """[n] and where in its document the passage sits; the last heading level is left out when the passage opens
    with it (a numbered item's title is its first sentence), since prompt tokens are the slow part on CPU."""
    if meta.get("law"):
        return f"[{n}]"
    heading = meta.get("heading", "")
    title = meta.get("title", "")
    for own in (f"《{title}》", title) if title else ():   # the document's title is in its group header already
        heading = heading.strip().removeprefix(own)
    levels = [h.strip() for h in heading.split(">") if h.strip()]
    opening = _LEAD_NUMBER.sub("", text.removeprefix(f"《{title}》") if title else text)
    if levels and opening.startswith(_LEAD_NUMBER.sub("", levels[-1])):
        levels.pop()
    return f"[{n}] {' > '.join(levels)}".rstrip()


def is_refusal(text: str) -> bool:
    return not text.strip() or any(m in text for m in REFUSAL_MARKERS)


def attach_citations(text: str, citations: list["Citation"], min_overlap: float = 0.5) -> str:
    """For an answer that came back without any [n] marker (small models often drop them): mark each sentence
    with the passage that holds most of its character bigrams, when that passage holds at least min_overlap of
    them (the answer quotes it); a run of sentences from the same passage is marked once, at its end."""
    sentences = [s for s in re.split(r"(?<=[。！？!?\n])", text) if s]
    passages = [(c.n, bigrams(c.text)) for c in citations]
    sources: list[int | None] = []
    for sentence in sentences:
        grams = bigrams(sentence)
        best = max(((len(grams & pg) / len(grams), n) for n, pg in passages), default=(0.0, None)) \
            if len(grams) >= 4 else (0.0, None)
        sources.append(best[1] if best[0] >= min_overlap else None)
    out = []
    for i, (sentence, n) in enumerate(zip(sentences, sources)):
        if n is not None and (i + 1 == len(sources) or sources[i + 1] != n):
            sentence = add_marker(sentence, n)
        out.append(sentence)
    return "".join(out)


def finalize_answer(raw: str, citations: list["Citation"], said: str = "") -> tuple[str, bool, list["Citation"]]:
    """The model's text → (answer, refused, citations): a refusal keeps no citations; markers outside 1..n are
    dropped, missing ones attached; an answer that is only markers ("[1]", seen from small models) becomes the
    cited passage quoted verbatim (prompts/answer_fallback.md), never an empty reply. `said`: the verified text
    before a concise answer left sentences out (answer.concise); markers are attached as they would have been to
    it, and those of the sentences left out go to the answer's first sentence."""
    text = raw.strip()
    if is_refusal(text):
        return text, True, []
    text = _CITE.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= len(citations) else "", text)
    if citations and len(_CITE.sub("", text).strip("。，,. \n")) < 2:
        n = next((int(m) for m in _CITE.findall(text)), 1)
        text = load_prompt("answer_fallback").format(text=citations[n - 1].text.strip()) + f"[{n}]"
    elif not _CITE.search(text):
        attached = attach_citations(text, citations)
        if said and not _CITE.search(said) and \
                (lost := _markers(attach_citations(said.strip(), citations)) - _markers(attached)):
            first = split_sentences(attached)[0]
            head, at = first, attached.index(first)
            for n in sorted(lost, key=int):
                head = add_marker(head, int(n))
            attached = attached[:at] + head + attached[at + len(first):]
        text = attached
    cited = {int(n) for n in _CITE.findall(text)}
    for c in citations:
        c.cited = c.n in cited
    cite_copies(citations)
    return text, False, citations


def cite_copies(citations: list["Citation"]) -> None:
    """A passage that is the same text as a cited one states what that one states: it is cited too, as its copy
    (same_as), so the reader sees every document the statement is in — often the issuing body's own notice next to
    a repost — whichever copy the model happened to cite."""
    marked = [c for c in citations if c.cited and c.same_as is None]
    for c in citations:
        if not c.cited:
            twin = next((m for m in marked if same_text(c.text, m.text)), None)
            if twin is not None:
                c.cited, c.same_as = True, twin.n


@dataclass
class Citation:
    n: int
    doc_id: str
    chunk_id: str
    kb: str
    title: str
    label: str
    text: str
    metadata: dict
    cited: bool = False
    # where it stands in its document (retrieval.positions): offsets [start, end] in the extracted text, pages
    offsets: list[int] | None = None
    pages: list[int] = field(default_factory=list)
    page: int | None = None
    sensitivity: str | None = None          # 数据分类分级 level of the cited document (shown beside the citation)
    notice: str | None = None               # a warning shown with it: 已被修改 texts (amended_notice)
    same_as: int | None = None              # cited as the same text as passage [same_as] (cite_copies)

    @classmethod
    def from_hit(cls, n: int, hit: Hit) -> "Citation":
        return cls(n, hit.doc_id, hit.chunk_id, hit.kb, hit.title, citation_label(hit.metadata), hit.text, hit.metadata,
                   **positions(hit.metadata), sensitivity=hit.metadata.get("sensitivity"),
                   notice=amended_notice(hit.metadata))

    @property
    def noted_label(self) -> str:
        """The label with its warning, when it has one (exported text, the command line)."""
        return self.label + (f"（{self.notice}）" if self.notice else "")


def build_context(hits: list[Hit], budget: int, header: Callable[[int, dict], str] | None = None,
                  focus: Callable[[str], str] | None = None) -> tuple[str, list[Citation]]:
    """Numbered passages within a character budget (prefill is the slow part on CPU) and their citations; `focus`
    cuts each passage to its relevant sentences first (the citation keeps the whole passage). Without `header`,
    passages are grouped under their document's header, said once; numbers stay in rank order."""
    shown_texts, citations, used = [], [], 0
    for hit in hits:
        shown = focus(hit.text) if focus else hit.text
        truncated = used + len(shown) > budget
        text = shown[:max(budget - used, 0)] if truncated else shown
        if citations and truncated and len(text) < 40:  # short passages (law articles) are kept whole
            break
        citations.append(Citation.from_hit(len(citations) + 1, hit))
        shown_texts.append(text)
        used += len(text)
    if header is not None:
        return "\n\n".join(f"{header(c.n, c.metadata)}\n{t}" for c, t in zip(citations, shown_texts)), citations
    groups: dict[str, list[str]] = {}
    for c, t in zip(citations, shown_texts):
        groups.setdefault(c.doc_id or c.chunk_id, [document_header(c.metadata)]).append(
            f"{passage_header(c.n, c.metadata, t)}\n{t}")
    return "\n\n".join("\n".join(g) for g in groups.values()), citations


def relevant_passages(hits: list[Hit], share: float) -> list[Hit]:
    """The first passage, and each other covering at least `share` of the best one's share of the question."""
    if not share or not hits:
        return hits
    best = max(h.coverage for h in hits)
    return [h for i, h in enumerate(hits) if i == 0 or h.coverage >= share * best]


@dataclass
class Answer:
    question: str
    answer: str
    refused: bool
    citations: list[Citation]
    standalone_question: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""
    answer_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ai_generated: bool = True   # 人工智能生成合成内容标识
    # per sentence: supported or not and the atoms its citations lack; answerability; missing constraints
    verification: dict = field(default_factory=dict)
    # closest passages of a refusal ("相关但未直接回答"): shown, never cited as the answer
    related: list[Citation] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["timings"] = {k: round(v, 1) for k, v in self.timings.items()}
        return d

    def export_text(self) -> str:
        """Plain text for copying out of the system: carries the AI-generated label and the sources."""
        lines = [self.answer, ""]
        if self.citations:
            lines.append("参考依据：")
            shown = [c for c in self.citations if c.cited] or self.citations
            lines += [f"[{c.n}] {c.noted_label}" for c in shown]
            lines.append("")
        lines.append(load_prompt("ai_label"))
        return "\n".join(lines)


@dataclass
class Screened:
    hits: list[Hit]                 # the passages that may answer (those naming the question's constraints)
    verification: Verification
    refusal: str | None             # the refusal's text when screening refused
    kind: object = None             # the asked kind of content (answer_type.AnswerKind), when typed
    weights: dict[str, float] | None = None   # the question terms' idf weights, read once for focus as well


class Answerer:
    def __init__(self, llm: BaseChatModel | Callable[[], BaseChatModel], searcher: HybridSearcher,
                 settings: Settings, model_name: str):
        # a provider defers loading the model until the first generation (refusals never need it)
        self._llm = llm
        self.searcher = searcher
        self.settings = settings
        self.model_name = model_name
        self.prompt = ChatPromptTemplate.from_messages(
            [("system", load_prompt("answer_system")), ("human", load_prompt("answer_user"))])
        self.condense_prompt = ChatPromptTemplate.from_messages([("human", load_prompt("condense"))])
        a, mode = settings.answer, settings.embedding.mode
        self.scorer_applies = a.answerability == "scorer" and (not a.scorer.embeddings or mode in a.scorer.embeddings)
        if a.answerability == "scorer" and not self.scorer_applies:
            log.warning("answer.answerability scorer: its weights were fitted for embedding.mode %s, not %s; the "
                        "scorer is not applied (refit: gov-assistant eval fit-answerability)",
                        "/".join(a.scorer.embeddings), mode)

    @property
    def llm(self) -> BaseChatModel:
        if not isinstance(self._llm, BaseChatModel):
            self._llm = self._llm()
        return self._llm

    def condense(self, question: str, history: list[dict] | None) -> str:
        """Rewrite a follow-up into a standalone question; the first turn passes through unchanged."""
        turns = [h for h in (history or []) if h.get("content")][-2 * self.settings.answer.history_turns:]
        if not turns:
            return question
        text = "\n".join(f"{'用户' if h.get('role') == 'user' else '助手'}：{str(h['content'])[:300]}" for h in turns)
        out = (self.condense_prompt | self.llm.bind(max_tokens=80)).invoke({"history": text, "question": question})
        rewritten = str(out.content).strip().splitlines()[0].strip() if str(out.content).strip() else ""
        rewritten = re.sub(r"^【?改写后的问题】?[:：]?", "", rewritten).strip()  # the model may repeat the label
        if not 2 <= len(rewritten) <= 200:
            return question
        # a small model's rewrite may drop the user's own key word (办理时限 → 需要多久), and retrieval then misses
        # the one section that answers: the user's words are kept next to the rewrite
        dropped = [t for t in query_terms(question) if t not in rewritten]
        return f"{rewritten}（{question}）" if dropped else rewritten

    def build_context(self, hits: list[Hit], question: str = "",
                      weights: dict[str, float] | None = None) -> tuple[str, list[Citation]]:
        a = self.settings.answer
        focus = None
        prompted = self.prompted(hits)
        if a.focus_chars and question:
            terms = query_terms(question)
            weights = self._term_weights(hits, terms) if weights is None else weights
            if a.focus_total_chars:
                focus = shared_focus(terms, weights, a.focus_total_chars, a.focus_chars, len(prompted))
            else:
                focus = lambda text: focus_text(text, terms, weights, a.focus_chars)  # noqa: E731
        return build_context(prompted, a.max_context_chars, focus=focus)

    def prompted(self, hits: list[Hit]) -> list[Hit]:
        """The passages the prompt shows: the first max_passages, less those covering under min_relative_coverage
        of the best one's share of the question (a passage that barely touches it is noise the model may copy)."""
        a = self.settings.answer
        return relevant_passages(hits[:a.max_passages] if a.max_passages else hits, a.min_relative_coverage)

    def _term_weights(self, hits: list[Hit], terms: set[str]) -> dict[str, float]:
        kbs = {h.kb for h in hits if h.kb}
        if not kbs or not terms:
            return {}
        try:
            return self.searcher.store.bm25.index(sorted(kbs)[0]).term_weights(terms)
        except Exception:  # noqa: BLE001 - given passages (benchmarks) have no index: all terms count the same
            return {}

    def _extract(self, kind, question: str, hits: list[Hit], citations: list[Citation]) -> Extract | None:
        a = self.settings.answer
        if not a.extract_min_coverage:
            return None
        terms = query_terms(question)
        passages = [(c.n, str(c.metadata.get("heading", "")), c.text) for c in citations]
        return best_extract(kind, terms, self._term_weights(hits, terms), passages, a.extract_min_coverage)

    def stream(self, question: str, kbs: list[str], filters: Filters | None = None,
               history: list[dict] | None = None) -> Iterator[dict]:
        """Events: {"type": "sources", "citations", "standalone_question", "status"}, {"type": "token", "text"}
        (only sentences that passed verification), then {"type": "answer", "answer": Answer}."""
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        if injection_attempt(question):
            # never obey, never retrieve: the question is about the assistant's instructions, not the KB
            yield from self._refuse(question, question, load_prompt("refusal_injection"),
                                    Verification(reason="injection"), [], timings, t_start)
            return
        standalone = self.condense(question, history)
        timings["condense_ms"] = (time.perf_counter() - t_start) * 1000
        t0 = time.perf_counter()
        result = self.searcher.search(standalone, kbs, filters)
        timings["retrieval_ms"] = (time.perf_counter() - t0) * 1000
        if not self.searcher.has_evidence(result.hits):
            related = citations_of(result.hits, 3)
            # naming what the question asks about and the KB lacks says more than "nothing found"
            missing = self._missing(standalone, result.hits)
            text = load_prompt("refusal_constraint").format(missing=describe_missing(missing)) if missing \
                else load_prompt("refusal")
            yield from self._refuse(question, standalone, text, Verification(
                missing_constraints=[c.text for c in missing], reason="no_evidence"), related, timings, t_start)
            return
        yield from self._generate(question, standalone, result.hits, timings, t_start)

    def _missing(self, question: str, hits: list[Hit]):
        if not self.settings.answer.constraints:
            return []
        return missing_constraints(question_constraints(question),
                                   [passage_evidence(h.text, h.metadata) for h in hits])

    def _refuse(self, question: str, standalone: str, text: str, verification: Verification,
                related: list[Citation], timings: dict, t_start: float, usage: dict | None = None,
                sources_sent: bool = False) -> Iterator[dict]:
        timings["total_ms"] = (time.perf_counter() - t_start) * 1000
        for c in related:
            c.cited = False
        answer = Answer(question, text, True, [], standalone, timings, usage or {}, self.model_name,
                        verification=verification.to_dict(), related=related)
        if not sources_sent:
            yield {"type": "sources", "citations": [], "standalone_question": standalone,
                   "status": f"检索到 {len(related)} 条相关资料"}
        yield {"type": "token", "text": text}
        yield {"type": "answer", "answer": answer}

    def screen(self, question: str, hits: list[Hit], score_only: bool = False) -> "Screened":
        """What is decided before any generation, none of it calling the model: the question's constraints (only
        passages naming everything it names may answer), the asked kind of content, and the answerability
        scorer's reading of the passages left (recorded always, acted on with `answer.answerability: scorer`
        unless score_only: a fit reads the signals of every pair, refused or not)."""
        a = self.settings.answer
        verification = Verification()
        kind = None
        refuse = lambda text: Screened(hits, verification, text, kind)  # noqa: E731 - the hits as they stand
        if a.constraints:
            constraints = question_constraints(question)
            evidences = [passage_evidence(h.text, h.metadata) for h in hits]
            missing = missing_constraints(constraints, evidences)
            if missing:
                verification.missing_constraints = [c.text for c in missing]
                verification.reason = "missing_constraint"
                return refuse(load_prompt("refusal_constraint").format(missing=describe_missing(missing)))
            hits = [h for h, ev in zip(hits, evidences) if satisfies(constraints, ev)]
        kind = asked_kind(question) if a.answer_kinds else None
        if kind and not any(states(kind, h.text) for h in hits):
            # on topic, but no passage states the kind of content asked for: nothing for the model to answer from
            verification.reason = "missing_answer_kind"
            return refuse(load_prompt("refusal_answer_kind").format(kind=kind.name))
        # the retrieval's own evidence that a passage answers (not merely touches) the question
        shown = hits[:a.screened_passages or None]
        terms = query_terms(question)
        weights = self._term_weights(shown, terms)
        # passages handed in (answer_from_passages: RGB) carry no BM25 or dense score, which the scorer was fitted
        # on (reading them as 0 would refuse everything): their own scorer reads only the text signals
        retrieved = any(h.bm25_score is not None or h.dense_score is not None for h in shown)
        if retrieved:
            signals = retrieval_signals(terms, weights, shown)
            scorer, threshold, applies = a.scorer, a.min_answerability, self.scorer_applies
        else:
            signals = text_signals(terms, shown)
            scorer, threshold = a.passage_scorer, a.passage_scorer.min_answerability
            applies = a.answerability == "scorer" and bool(scorer.weights) and threshold > 0
        verification.signals = {k: round(v, 4) for k, v in signals.items()}
        if applies:
            p = scorer_probability(signals, scorer.weights, scorer.bias)
            verification.answerability = round(p, 4)
            if p < threshold and not score_only:
                verification.reason = "unanswerable"
                return refuse(load_prompt("refusal_unanswerable"))
        return Screened(hits, verification, None, kind, weights)

    def _generate(self, question: str, standalone: str, hits: list[Hit], timings: dict,
                  t_start: float) -> Iterator[dict]:
        """Screening (constraints, asked kind, scorer) → focused context → answerability judgement → generation,
        streamed sentence by sentence, each sentence verified against the passages it cites before it is emitted."""
        a = self.settings.answer
        screened = self.screen(standalone, hits)
        verification, kind = screened.verification, screened.kind
        if screened.refusal is not None:
            yield from self._refuse(question, standalone, screened.refusal, verification,
                                    citations_of(screened.hits, 3), timings, t_start)
            return
        hits = self.prompted(screened.hits)     # citations number these, in order
        evidences = [passage_evidence(h.text, h.metadata) for h in hits]
        context, citations = self.build_context(hits, standalone, screened.weights)
        yield {"type": "sources", "citations": citations, "standalone_question": standalone,
               "status": f"检索到 {len(citations)} 条依据"}
        messages = self.prompt.format_messages(context=context, question=standalone)
        if a.answerability == "logprob":
            t0 = time.perf_counter()
            p = answerability(self.llm, messages)
            timings["judge_ms"] = (time.perf_counter() - t0) * 1000
            verification.answerability = round(p, 4)
            if p < a.min_answerability:
                verification.reason = "unanswerable"
                yield from self._refuse(question, standalone, load_prompt("refusal_unanswerable"), verification,
                                        citations, timings, t_start, sources_sent=True)
                return
        by_n = {c.n: evidences[i] for i, c in enumerate(citations)} if a.verify else {}
        pieces: list[str] = []
        usage: dict[str, int] = {}
        t0 = time.perf_counter()
        gate = _SentenceGate(by_n, standalone, a.min_support, a.concise) if a.verify else None
        anchor_question, anchor_passages = None, []
        if gate:     # recorded on every sentence (eval calibrate --signal anchor), acted on with min_anchor
            anchor_question = AnchorQuestion.of(standalone, query_terms(standalone))
            anchor_passages = [AnchorPassage(h.text, f"{h.metadata.get('title', '')}{h.metadata.get('heading', '')}")
                               for h in hits[:len(citations)]]
            gate.anchoring(anchor_question, a.min_anchor, a.anchor_tolerated_terms, anchor_passages)
        first_token = a.answerability == "first_token"
        llm = self.llm.bind(logprobs=True, top_logprobs=TOP_LOGPROBS) if first_token else self.llm
        for chunk in llm.stream(messages):
            if first_token and verification.answerability is None and \
                    (top := first_token_logprobs(chunk.response_metadata)) is not None:
                verification.answerability = round(1.0 - refusal_mass(top), 4)
                if verification.answerability < a.min_answerability:
                    # leaving the loop closes the stream, which frees the model's slot
                    verification.reason = "unanswerable"
                    timings["llm_ms"] = (time.perf_counter() - t0) * 1000
                    yield from self._refuse(question, standalone, load_prompt("refusal_unanswerable"), verification,
                                            citations, timings, t_start, sources_sent=True)
                    return
            if isinstance(chunk, AIMessageChunk) and chunk.usage_metadata:
                usage = {k: int(v) for k, v in chunk.usage_metadata.items() if isinstance(v, int)}
            text = str(chunk.content)
            if not text:
                continue
            pieces.append(text)
            out = gate.feed(text) if gate else text
            if out and not is_refusal("".join(pieces)):
                timings.setdefault("first_token_ms", (time.perf_counter() - t_start) * 1000)
                yield {"type": "token", "text": out}
        raw = "".join(pieces)
        if gate:
            tail = gate.close()
            if tail and not is_refusal(raw):
                timings.setdefault("first_token_ms", (time.perf_counter() - t_start) * 1000)
                yield {"type": "token", "text": tail}
            verification.sentences = gate.checks
        timings["llm_ms"] = (time.perf_counter() - t0) * 1000
        timings["total_ms"] = (time.perf_counter() - t_start) * 1000
        kept = gate.kept if gate else raw
        # (an answer of markers only, "[1]", is no restatement: finalize_answer quotes the passage it cites)
        if gate and not is_refusal(raw) and ((gate.removed and not has_content(kept)) or
                                             (gate.hollow and has_content(kept))):
            verification.reason = "unsupported"
            # the invented atoms stay out of the reply (they are in `verification`); their kinds are named
            kinds = "、".join(dict.fromkeys(ATOM_KIND_NAMES.get(k, "内容") for c in verification.sentences
                                           for k in c.kinds)) or "内容"
            extract = self._extract(kind, standalone, hits, citations) if kind and not has_content(kept) else None
            if extract:
                # the passage states what was asked: its sentence goes out instead of a refusal
                kept = load_prompt("answer_extract").format(kinds=kinds, text=extract.sentence) + f"[{extract.n}]"
            elif anchor_question and (extract := best_quote(anchor_question, list(enumerate(anchor_passages, 1)),
                                                            a.quote_min_anchor, kind)):
                # the model wrote around a passage that speaks of the question: that passage's words go out
                kept = load_prompt("answer_quote").format(text=extract.sentence) + f"[{extract.n}]"
            if extract:
                verification.reason, verification.extract = "", asdict(extract)
                timings.setdefault("first_token_ms", (time.perf_counter() - t_start) * 1000)
                yield {"type": "token", "text": kept}
        if verification.reason == "unsupported" and gate.unanchored is not None:
            # supported sentences, none placed where its passage speaks of the question: the closest miss is named
            verification.reason = "unanchored"
            missing = "".join(f"「{t}」" for t in gate.unanchored.unanchored_terms) or "所问的内容"
            yield from self._refuse(question, standalone, load_prompt("refusal_unanchored").format(missing=missing),
                                    verification, citations, timings, t_start, usage, sources_sent=True)
            return
        if verification.reason == "unsupported":
            yield from self._refuse(question, standalone, load_prompt("refusal_unsupported").format(kinds=kinds),
                                    verification, citations, timings, t_start, usage, sources_sent=True)
            return
        # only when the concise cuts left something out does the uncut text decide an unmarked answer's citations
        text, refused, citations = finalize_answer(kept, citations, gate.said if gate and gate.said != kept else "")
        if kind and not refused and not answers_kind(kind, _CITE.sub("", text), standalone):
            # the model answered around the question ("超过40家机构参与" for a 发行规模): what was asked is not there
            verification.reason = "missing_answer_kind"
            yield from self._refuse(question, standalone, load_prompt("refusal_answer_kind").format(kind=kind.name),
                                    verification, citations, timings, t_start, usage, sources_sent=True)
            return
        related = []
        if refused:
            verification.reason = verification.reason or "model_refused"
            related = citations_of(hits, 3)
            if "first_token_ms" not in timings:     # nothing was streamed: the refusal is the whole reply
                yield {"type": "token", "text": text}
        elif "first_token_ms" not in timings:
            # nothing was streamed (a markers-only reply has no wording of its own): the quoted passage goes out
            timings["first_token_ms"] = (time.perf_counter() - t_start) * 1000
            yield {"type": "token", "text": text}
        if not refused and (noted := with_amended_notice(text, citations)) != text:
            yield {"type": "token", "text": noted[len(text):]}     # after all that was streamed
            text = noted
        yield {"type": "answer", "answer": Answer(question, text, refused, citations, standalone, timings, usage,
                                                  self.model_name, verification=verification.to_dict(),
                                                  related=related)}

    def answer_from_passages(self, question: str, passages: list[dict]) -> Answer:
        """Answer from given passages instead of retrieval (benchmarks such as RGB fix the passages): the same
        constraints, context building, judgement, prompt, LLM, verification and citation handling as `stream`,
        without retrieval or the topical evidence gate. Each passage: {"text", "doc_id"?, "title"?, "metadata"?}."""
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        for event in self._generate(question, question, given_hits(passages), timings, t_start):
            if event["type"] == "answer":
                return event["answer"]
        raise RuntimeError("answer stream ended without an answer")

    def ask(self, question: str, kbs: list[str], filters: Filters | None = None,
            history: list[dict] | None = None) -> Answer:
        for event in self.stream(question, kbs, filters, history):
            if event["type"] == "answer":
                return event["answer"]
        raise RuntimeError("answer stream ended without an answer")


def given_hits(passages: list[dict]) -> list[Hit]:
    """Passages handed in ({"text", "doc_id"?, "chunk_id"?, "title"?, "metadata"?}) as hits without retrieval scores."""
    return [Hit(p.get("chunk_id") or f"p{i}", p.get("doc_id") or f"p{i}", "", p["text"],
                {"title": p.get("title", ""), **(p.get("metadata") or {})}) for i, p in enumerate(passages, 1)]


def citations_of(hits: list[Hit], n: int) -> list[Citation]:
    """The first n hits as numbered citations (a refusal's related passages)."""
    return [Citation.from_hit(i, h) for i, h in enumerate(hits[:n], 1)]


class _SentenceGate:
    """Holds streamed text until a sentence (and the [n] markers that follow it) is complete, then lets it through
    only when its atoms are in the passages it cites. `checks` lists every sentence's result."""

    def __init__(self, evidences: dict[int, Evidence], question: str = "", min_support: float = 0.0,
                 concise: bool = False):
        self.evidences = evidences
        self.question, self.min_support, self.concise = question, min_support, concise
        self.all = union(list(evidences.values()))
        self.buffer = ""
        self.kept = ""
        self.said = ""            # kept before the concise cuts (finalize_answer attaches markers as to it)
        self.checks: list[SentenceCheck] = []
        # with min_support: sentences too short to judge and without a figure ("北京市的做法如下：") wait for a
        # substantive one; an answer of nothing else is no answer
        self.pending: list[str] = []
        self.substantive = 0
        self.seen: set[str] = set()
        # with min_anchor: a supported sentence counts as the answer only where its passage covers the question
        self.anchor_question: AnchorQuestion | None = None
        self.min_anchor, self.tolerated, self.passages = 0.0, 1, []
        self.unanchored: SentenceCheck | None = None    # the best-anchored sentence held for it, if any

    def anchoring(self, question: AnchorQuestion, min_anchor: float, tolerated: int,
                  passages: list[AnchorPassage]) -> None:
        self.anchor_question, self.min_anchor, self.tolerated, self.passages = question, min_anchor, tolerated, passages

    def feed(self, text: str) -> str:
        self.buffer += text
        out = ""
        while (m := _SENTENCE_END.search(self.buffer)) and m.end() < len(self.buffer):
            sentence, self.buffer = self.buffer[:m.end()], self.buffer[m.end():]
            out += self._check(sentence)
        return out

    @property
    def removed(self) -> int:
        return sum(not c.supported for c in self.checks)

    def close(self) -> str:
        sentence, self.buffer = self.buffer, ""
        out = self._check(sentence) if sentence.strip() else ""
        if self.substantive and self.pending:      # a closing remark after the answer
            held, said = self.pending, []
            before = self.kept[:len(self.kept) - len("".join(held))]
            for p in held:
                if not self._remark_goes(p, before + "".join(said)):
                    said.append(p)
            out, self.pending = out + self._kept_as(held, said), []
        return out

    def _kept_as(self, held: list[str], said: list[str]) -> str:
        """What goes out instead of the held sentences (the last ones kept): `kept` says the same."""
        raw, text = "".join(held), "".join(said)
        self.kept = self.kept[:len(self.kept) - len(raw)] + text
        return text

    def _remark_goes(self, sentence: str, before: str) -> bool:
        """A closing remark is left out of a concise answer when what comes before it carries its citations."""
        return self.concise and is_closing_remark(sentence) and _markers(sentence) <= _markers(before)

    def _concise(self, held: list[str]) -> list[str]:
        """The held sentences and the one that releases them as a concise answer says them (grounding/concise.py).
        A sentence left out never takes a citation with it: one whose markers the answer does not carry otherwise
        stays ("…采取了以下措施：[2]" before items that cite [3] is the only place [2] is cited)."""
        if not self.concise:
            return held
        if self.substantive:              # after the answer: a closing remark goes
            return held[:-1] if self._remark_goes(held[-1], self.kept[:len(self.kept) - len(held[-1])]) else held
        said = [p for p in held[:-1] if not is_lead_in(p)] + held[-1:]
        said = [p for p in held if p in said or not _markers(p) <= _markers(*said)]
        return said if is_lead_in(said[0]) else [strip_echo(said[0], self.question)] + said[1:]

    def _check(self, sentence: str) -> str:
        key = _REPEAT_KEY.sub("", sentence)
        if len(key) >= 8 and key in self.seen:
            return ""                        # a small model looping ("1. X 2. X 3. X"): said once is enough
        self.seen.add(key)
        if is_refusal(sentence) and sentence.strip():
            # the model's own refusal states nothing to verify (its wording is in no passage): kept as it is
            self.checks.append(SentenceCheck(sentence, [], True))
            self.kept += sentence
            return sentence
        check = check_sentence(sentence, self.evidences, self.all, self.question, self.min_support)
        self.checks.append(check)
        if not check.supported:
            return ""
        self.kept += check.text              # with a corrected citation, when one was added
        self.said += check.text
        if self.min_support and not substantive(check, self.min_support):
            self.pending.append(check.text)
            return ""
        if self.anchor_question is not None:
            check.anchor, check.unanchored_terms = anchor(_CITE.sub("", check.text), self.anchor_question,
                                                          self.passages)
            if self.min_anchor and not anchored(check, self.min_anchor, self.tolerated):
                if self.unanchored is None or check.anchor > (self.unanchored.anchor or 0.0):
                    self.unanchored = check
                self.pending.append(check.text)
                return ""
        held, self.pending = [*self.pending, check.text], []
        out = self._kept_as(held, self._concise(held))
        self.substantive += 1
        return out

    @property
    def hollow(self) -> bool:
        """Judged by wording (min_support) and nothing substantive was kept: only restatements of the question."""
        return bool(self.min_support or self.min_anchor) and self.substantive == 0


def _markers(*texts: str) -> set[str]:
    return {m for t in texts for m in _CITE.findall(t)}


# what two sentences must share to be the same one said again: all but list numbers, markers and spacing
_REPEAT_KEY = re.compile(r"^\s*(?:\d{1,2}|[一二三四五六七八九十]{1,3})[.、．)）]\s*|\[\d{1,2}\]|\s+|\*+")
# a sentence end, then any [n] markers; complete once something other than a marker follows
_SENTENCE_END = re.compile(r"[。！？!?\n]+(?:\s*\[\d{1,2}\])*(?!\s*\[)")
