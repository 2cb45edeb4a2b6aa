"""Lexical search: BM25 from the catalog's FTS5 tables (catalog.py), per knowledge base.

Nothing lives in memory or beside the catalog: every search reads the committed state, so a write or a delete by
any process is seen by the next query. FTS5's bm25() uses k1=1.2, b=0.75 and floors a negative idf at 1e-6
(rank-bm25, used before, floored it at 0.25 x the mean idf, with k1=1.5).
"""
from __future__ import annotations

import math
from typing import Iterable

from assistant.components.store.catalog import Catalog
from assistant.filters import Filters


class LexicalView:
    """One knowledge base's chunk index (ids are chunk ids) or document index (ids are doc ids)."""

    def __init__(self, catalog: Catalog, kb: str, level: str, max_postings: int = 0):
        self.catalog, self.kb, self.level, self.max_postings = catalog, kb, level, max_postings

    def search(self, query_tokens: list[str], n: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        """(id, score) best first, any query token matching (OR); filters apply to chunks, inside the query."""
        where = filters.to_sql("c.metadata", self.catalog.dialect) if filters is not None and self.level == "chunk" else None
        return self.catalog.lexical_search(self.kb, self.bounded(query_tokens), n, self.level, where,
                                           rank_first=not (filters is not None and filters.narrows()))

    def bounded(self, tokens: list[str]) -> list[str]:
        """An OR query makes FTS5 score every row holding any token, so one token found in most chunks (的, 工作,
        规定) costs a scan of the whole index. Past max_postings rows in all, the commonest tokens are left out —
        they weigh least in BM25 (idf ≈ log(N/df)) — keeping at least the rarest one. A small KB is unaffected."""
        uniq = list(dict.fromkeys(tokens))
        if not self.max_postings or len(uniq) < 2:
            return tokens
        _, dfs = self.catalog.document_frequencies(self.kb, uniq)
        total = sum(dfs.values())
        drop: set[str] = set()
        for t in sorted(uniq, key=lambda t: -dfs[t]):
            if total <= self.max_postings or len(drop) == len(uniq) - 1:
                break
            drop.add(t)
            total -= dfs[t]
        return [t for t in tokens if t not in drop] if drop else tokens

    def term_weights(self, tokens: Iterable[str]) -> dict[str, float]:
        """Each token's rarity among the knowledge base's chunks: the always-positive BM25 idf
        log(1 + (N - df + 0.5) / (df + 0.5)), df from fts5vocab; a token never seen gets the largest weight."""
        tokens = list(tokens)
        n, dfs = self.catalog.document_frequencies(self.kb, tokens)
        return {t: math.log(1 + (n - dfs[t] + 0.5) / (dfs[t] + 0.5)) for t in tokens}


class LexicalIndex:
    def __init__(self, catalog: Catalog, max_postings: int = 0):
        self.catalog, self.max_postings = catalog, max_postings

    def index(self, kb: str) -> LexicalView:
        """The chunk index (queries bounded to max_postings rows scored)."""
        return LexicalView(self.catalog, kb, "chunk", self.max_postings)

    def doc_index(self, kb: str) -> LexicalView:
        """The document index: a document's row holds all its chunks' tokens (classic document-level BM25)."""
        return LexicalView(self.catalog, kb, "document")
