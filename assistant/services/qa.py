"""Grounded question answering over knowledge bases the principal may read."""
from __future__ import annotations

from typing import Iterator

from assistant.answering import Answer, Answerer
from assistant.components.store.catalog import Catalog
from assistant.filters import Filters
from assistant.services.access import Principal, scope

MAX_QUESTION_CHARS = 2000


class QAService:
    def __init__(self, answerer: Answerer, catalog: Catalog):
        self.answerer = answerer
        self.catalog = catalog

    def _check(self, question: str, kbs: list[str], principal: Principal,
               filters: Filters | None) -> tuple[list[str], Filters]:
        if not question or not question.strip():
            raise ValueError("question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValueError(f"question is longer than {MAX_QUESTION_CHARS} characters")
        if not kbs:
            raise ValueError("no knowledge base given")
        kbs, filters = scope(principal, kbs, filters)
        for kb in kbs:
            self.catalog.require_kb(kb)
        return kbs, filters

    def ask(self, question: str, kbs: list[str], filters: Filters | None = None, history: list[dict] | None = None,
            *, principal: Principal) -> Answer:
        kbs, filters = self._check(question, kbs, principal, filters)
        return self.answerer.ask(question.strip(), kbs, filters, history)

    def stream(self, question: str, kbs: list[str], filters: Filters | None = None,
               history: list[dict] | None = None, *, principal: Principal) -> Iterator[dict]:
        kbs, filters = self._check(question, kbs, principal, filters)
        return self.answerer.stream(question.strip(), kbs, filters, history)
