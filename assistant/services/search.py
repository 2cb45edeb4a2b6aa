"""Retrieval only (search, the hit test), under the principal's read access."""
from __future__ import annotations

from assistant.components.store.catalog import Catalog
from assistant.filters import Filters
from assistant.retrieval import HybridSearcher, SearchResult
from assistant.services.access import Principal, scope


class SearchService:
    def __init__(self, searcher: HybridSearcher, catalog: Catalog):
        self.searcher = searcher
        self.catalog = catalog

    def search(self, query: str, kbs: list[str], filters: Filters | None = None, top_k: int | None = None,
               *, principal: Principal, mode: str = "hybrid") -> SearchResult:
        if not query or not query.strip():
            raise ValueError("query is empty")
        if mode not in ("hybrid", "bm25", "dense"):
            raise ValueError(f"invalid search mode {mode!r}: use hybrid, bm25 or dense")
        kbs, filters = scope(principal, kbs, filters)
        for kb in kbs:
            self.catalog.require_kb(kb)
        return self.searcher.search(query.strip(), kbs, filters, top_k, mode)
