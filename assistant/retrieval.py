"""Hybrid retrieval: BM25 (jieba tokens, SQLite FTS5) ‖ dense (Chroma) → reciprocal rank fusion → optional rerank.

Vectors fill in behind a document's commit: dense ranks cover the chunks that have one, and a result reports the
share of the searched chunks that do (vector_share).

ACL is applied by the caller choosing `kbs` (services pass only knowledge bases the principal may read);
filters (validity first) are applied inside both retrievers before ranking, so nothing filtered out can
come back through the other path.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.components.rerank import Reranker
from assistant.components.store import KnowledgeStore
from assistant.components.store.tokens import tokenize
from assistant.filters import Filters, NoClearance
from assistant.settings import RetrievalSettings, RerankSettings

# question words that say nothing about the topic; ignored when measuring how much of a query a passage covers
QUESTION_WORDS = frozenset("什么 哪些 如何 怎么 怎样 是否 多少 需要 可以 有何 哪里 为什么 请问 有关 相关 关于 应当 能否 哪个 几个 "
                           "规定 要求 内容 情况 问题 办理 我们 我要 一下 然后 那么 还有 另外 此外 多久 多长 多长时间 几天 何时 "
                           # which / how many / this / according to: absent from passages, so a KB-rare term's
                           # top idf made "这份…哪天印发的" look half-unanswered by its own 文件信息 passage
                           "哪天 哪年 哪月 哪日 哪家 哪位 哪种 哪类 哪项 哪条 哪部 哪一 哪几 哪方面 几类 几种 几项 几条 几年 "
                           "何种 何处 何地 这份 这项 这个 这些 那些 该项 根据 按照 依照 对于 针对 分别 具体 主要 方面 进行".split())


@dataclass
class Hit:
    chunk_id: str
    doc_id: str
    kb: str
    text: str
    metadata: dict
    score: float = 0.0
    bm25_score: float | None = None
    bm25_rank: int | None = None
    dense_score: float | None = None
    dense_rank: int | None = None
    rerank_score: float | None = None
    coverage: float = 0.0

    @property
    def title(self) -> str:
        return self.metadata.get("title", "")

    def to_dict(self) -> dict:
        return {"doc_id": self.doc_id, "chunk_id": self.chunk_id, "kb": self.kb, "title": self.title,
                "text": self.text, "score": round(self.score, 6), "metadata": self.metadata,
                **positions(self.metadata),
                "scores": {"bm25": self.bm25_score, "bm25_rank": self.bm25_rank, "dense": self.dense_score,
                           "dense_rank": self.dense_rank, "rerank": self.rerank_score,
                           "coverage": round(self.coverage, 3)}}

    def to_document(self) -> Document:
        return Document(page_content=self.text, id=self.chunk_id, metadata={**self.metadata, "score": self.score})


def positions(meta: dict) -> dict:
    """Where a chunk stands in its document, from its metadata: offsets [start, end] in the extracted text (None
    for chunks stored before positions, or made up such as the 文件信息 passage), its pages and first page."""
    offsets = meta.get("offsets")
    pages = [p for p in meta.get("pages") or [] if isinstance(p, int)]
    ok = isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(x, int) for x in offsets)
    return {"offsets": list(offsets) if ok else None, "pages": pages, "page": pages[0] if pages else None}


@dataclass
class SearchResult:
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    vector_share: float = 1.0     # of the searched knowledge bases' chunks, the share dense retrieval could find


def query_terms(query: str) -> set[str]:
    return {t for t in tokenize(query) if len(t) > 1 and t not in QUESTION_WORDS}


class HybridSearcher:
    def __init__(self, store: KnowledgeStore, embeddings: Embeddings, reranker: Reranker,
                 settings: RetrievalSettings, rerank_settings: RerankSettings):
        self.store = store
        self.embeddings = embeddings
        self.reranker = reranker
        self.settings = settings
        self.rerank_top_n = rerank_settings.cross_encoder.top_n

    def search(self, query: str, kbs: list[str], filters: Filters | None = None, top_k: int | None = None,
               mode: str = "hybrid") -> SearchResult:
        """mode: hybrid | bm25 | dense (the single-retriever modes exist for evaluation and the hit test)."""
        s = self.settings
        top_k = top_k or s.top_k
        flt = (filters or Filters()).with_default_status(s.default_status)
        if flt.levels is None:   # fail closed: a caller that did not go through access.scope gets nothing
            raise NoClearance("retrieval without a principal's clearance (use access.scope)")
        where = flt.to_where()
        timings: dict[str, float] = {}
        q_tokens = tokenize(query)
        bm25_lists: list[tuple[str, str, float]] = []
        dense_lists: list[tuple[str, str, float]] = []
        t0 = time.perf_counter()
        if mode in ("hybrid", "bm25"):
            for kb in kbs:
                bm25_lists += [(kb, cid, sc) for cid, sc in
                               self.store.bm25.index(kb).search(q_tokens, s.candidates, flt)]
            bm25_lists.sort(key=lambda x: -x[2])
        timings["bm25_ms"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        if mode in ("hybrid", "dense") and kbs:
            qvec = self.embeddings.embed_query(query)
            timings["embed_ms"] = (time.perf_counter() - t0) * 1000
            for kb in kbs:
                dense_lists += [(kb, cid, sim) for cid, sim in self.store.vectors.query(kb, qvec, s.candidates, where)]
            dense_lists.sort(key=lambda x: -x[2])
        timings["dense_ms"] = (time.perf_counter() - t0) * 1000

        hits: dict[tuple[str, str], Hit] = {}
        weights = {"bm25": s.weights.get("bm25", 1.0), "dense": s.weights.get("dense", 1.0)}
        for name, ranked in (("bm25", bm25_lists[:s.candidates]), ("dense", dense_lists[:s.candidates])):
            for rank, (kb, cid, score) in enumerate(ranked, start=1):
                hit = hits.setdefault((kb, cid), Hit(cid, cid.rsplit("#", 2)[0], kb, "", {}))
                setattr(hit, f"{name}_score", round(score, 6))
                setattr(hit, f"{name}_rank", rank)
                hit.score += weights[name] / (s.rrf_k + rank)
        doc_weight = s.weights.get("doc_bm25", 0.0)
        if doc_weight and mode == "hybrid" and hits:
            # document-level BM25 as a third ranking, applied to the candidate chunks of each document
            doc_lists = sorted(((kb, d, sc) for kb in kbs for d, sc in
                                self.store.bm25.doc_index(kb).search(q_tokens, s.candidates)), key=lambda x: -x[2])
            doc_rank = {(kb, d): r for r, (kb, d, _) in enumerate(doc_lists, start=1)}
            for (kb, _), hit in hits.items():
                if (kb, hit.doc_id) in doc_rank:
                    hit.score += doc_weight / (s.rrf_k + doc_rank[(kb, hit.doc_id)])
        # ties: best single-list rank first, then BM25 rank (exact term matches matter in 公文)
        ordered = sorted(hits.values(), key=lambda h: (-h.score, min(h.bm25_rank or 10**9, h.dense_rank or 10**9),
                                                       h.bm25_rank or 10**9))
        # a little headroom: vectors of uncommitted documents drop out in _resolve
        pool = ordered[:max(top_k + 10, self.rerank_top_n)]
        resolved = self._resolve(pool, query, flt)
        if len(resolved) > 1:
            t0 = time.perf_counter()
            scores = self.reranker.scores(query, [h.text for h in resolved])
            if scores is not None:
                for h, sc in zip(resolved, scores):
                    h.rerank_score = sc
                resolved.sort(key=lambda h: -h.rerank_score)
                timings["rerank_ms"] = (time.perf_counter() - t0) * 1000
        return SearchResult(resolved[:top_k], timings, self.vector_share(kbs))

    def vector_share(self, kbs: list[str]) -> float:
        total = pending = 0
        for kb in kbs:
            n, p = self.store.catalog.vector_counts(kb)
            total, pending = total + n, pending + p
        return round(1 - pending / total, 4) if total else 1.0

    def _resolve(self, pool: list[Hit], query: str, flt: Filters) -> list[Hit]:
        """Attach text and metadata from the catalog; vectors of uncommitted documents (orphans) drop out here,
        and so does every chunk above the caller's clearance or outside the filters, read from the catalog's
        own record (a level or latest_text flag changed a moment ago counts; the vector store's copy of the
        metadata is never trusted for them)."""
        by_kb: dict[str, list[str]] = {}
        for h in pool:
            by_kb.setdefault(h.kb, []).append(h.chunk_id)
        rows = {kb: self.store.catalog.get_chunks(kb, ids) for kb, ids in by_kb.items()}
        terms = query_terms(query)
        weights = {kb: self._term_weights(kb, terms) for kb in by_kb} if terms else {}
        out = []
        for h in pool:
            row = rows[h.kb].get(h.chunk_id)
            if row is None or not flt.level_ok(row["metadata"]) or not flt.matches(row["metadata"]):
                continue
            h.doc_id, h.text, h.metadata = row["doc_id"], row["text"], row["metadata"]
            if terms:
                have = set(tokenize(h.metadata.get("heading", "") + h.text))
                w = weights[h.kb]
                h.coverage = sum(w[t] for t in terms & have) / sum(w.values())
            out.append(h)
        return out

    def _term_weights(self, kb: str, terms: set[str]) -> dict[str, float]:
        if self.settings.coverage_weighting == "idf":
            return self.store.bm25.index(kb).term_weights(terms)
        return dict.fromkeys(terms, 1.0)

    def has_evidence(self, hits: list[Hit]) -> bool:
        """The evidence gate: refuse without asking the LLM when even the best passage is weak on both signals."""
        if not hits:
            return False
        best_dense = max((h.dense_score or 0.0) for h in hits)
        best_cov = max(h.coverage for h in hits)
        return best_dense >= self.settings.min_dense_similarity or best_cov >= self.settings.min_term_coverage


class KnowledgeBaseRetriever(BaseRetriever):
    """LangChain retriever over the hybrid searcher, bound to knowledge bases and the filters `access.scope` gives
    for a principal (filters naming no levels are refused)."""
    model_config = ConfigDict(arbitrary_types_allowed=True)
    searcher: Any
    kbs: list[str]
    filters: Any = None
    top_k: int | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [h.to_document() for h in self.searcher.search(query, self.kbs, self.filters, self.top_k).hits]
