"""Builds components once from settings and hands them to services. Everything is lazy: `kb list` never
loads a model, `search` never loads the LLM."""
from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path

from langchain_core.embeddings import Embeddings

from assistant.settings import Settings

# Stop every call home before any library is imported (onnxruntime reads its variable at import time).
for _var, _val in {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1",
                   "ORT_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                   "UNSTRUCTURED_DISABLE_NOTICE": "1", "ANONYMIZED_TELEMETRY": "False",
                   "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_var, _val)


class Container:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.RLock()
        from assistant.prompts import use_prompts_dir
        use_prompts_dir(settings.prompts_dir)

    def db_target(self, sqlite_name: str):
        """Where a store lives: the configured PostgreSQL database (brought to, or checked at, the migrations'
        head once per process), else its SQLite file under data_dir."""
        url = self.settings.database.url
        if not url:
            return Path(self.settings.data_dir) / sqlite_name
        from assistant.migrations import ensure_schema
        ensure_schema(url, self.settings.database.migrate, self.settings.database.app_role)
        return url

    @cached_property
    def store(self):
        from assistant.components.store import KnowledgeStore
        return KnowledgeStore(self.settings, self.db_target("catalog.sqlite3"))

    @cached_property
    def embeddings(self):
        from pathlib import Path

        from assistant.components.embeddings import build_embeddings
        from assistant.components.embeddings.cache import CachedEmbeddings
        inner = build_embeddings(self.settings.embedding)
        if not self.settings.embedding.cache:
            return inner
        return CachedEmbeddings(inner, Path(self.settings.data_dir) / "embedding_cache.sqlite3", self.embedding_name)

    @property
    def embedding_name(self) -> str:
        from assistant.components.embeddings import embedding_id
        return embedding_id(self.settings.embedding)

    @cached_property
    def reranker(self):
        from assistant.components.rerank import build_reranker
        return build_reranker(self.settings.rerank)

    @cached_property
    def llm(self):
        from assistant.components.llm import build_llm
        with self._lock:
            return build_llm(self.settings)

    @property
    def model_name(self) -> str:
        from assistant.components.llm import describe_llm
        return describe_llm(self.settings)

    @cached_property
    def searcher(self):
        from assistant.retrieval import HybridSearcher
        return HybridSearcher(self.store, _LazyEmbeddings(self), self.reranker, self.settings.retrieval,
                              self.settings.rerank)

    @cached_property
    def answerer(self):
        from assistant.answering import Answerer
        return Answerer(lambda: self.llm, self.searcher, self.settings, self.model_name)

    @cached_property
    def pipeline(self):
        from assistant.pipeline import IngestPipeline
        return IngestPipeline(self.store, _LazyEmbeddings(self), self.settings.chunking, self.embedding_name,
                              self.settings.ingest)

    @cached_property
    def knowledge_bases(self):
        from assistant.services.knowledge_bases import KnowledgeBaseService
        return KnowledgeBaseService(self.store, self.pipeline, self.directory)

    @cached_property
    def originals(self):
        from assistant.services.originals import OriginalsService
        return OriginalsService(self.store)

    @cached_property
    def search(self):
        from assistant.services.search import SearchService
        return SearchService(self.searcher, self.store.catalog)

    @cached_property
    def qa(self):
        from assistant.services.qa import QAService
        return QAService(self.answerer, self.store.catalog)

    @cached_property
    def summarize(self):
        from assistant.services.summarize import SummarizeService
        return SummarizeService(lambda: self.llm, self.settings, self.model_name)

    @cached_property
    def drafting(self):
        from assistant.services.drafting import DraftingService
        return DraftingService(lambda: self.llm, self.searcher, self.store.catalog, self.settings)

    @cached_property
    def service_guide(self):
        from assistant.services.service_guide import ServiceGuideService
        return ServiceGuideService(lambda: self.llm, self.searcher, self.store.catalog, self.settings)

    # --- HTTP API (issue #3): keys, audit, feedback, jobs, rate limit, plain chat; SQLite under data_dir, or the
    # scale-out profile's PostgreSQL (database.url)
    @cached_property
    def api_keys(self):
        from assistant.services.auth import ApiKeyStore
        return ApiKeyStore(self.db_target("api_keys.sqlite3"), self.classification)

    # --- identity (issue #17): classification levels, the directory mapping, every way in
    @cached_property
    def classification(self):
        from assistant.services.classification import Classification
        return Classification(self.settings.classification)

    @cached_property
    def directory(self):
        from assistant.services.directory import Directory
        return Directory(self.db_target("directory.sqlite3"), self.classification)

    @cached_property
    def access_admin(self):
        from assistant.services.access_admin import AccessAdminService
        return AccessAdminService(self.directory, self.knowledge_bases, self.classification, self.audit)

    @cached_property
    def oidc(self):
        """The OIDC relying party when identity.oidc.enabled, else None."""
        if not self.settings.identity.oidc.enabled:
            return None
        from assistant.components.identity.oidc import OidcClient
        return OidcClient(self.settings.identity.oidc)

    @cached_property
    def sso_once(self):
        """The OIDC login's single-use states and UI tickets, in the store every replica shares."""
        from assistant.components.identity.once import OneTimeStore
        return OneTimeStore(self.db_target("sso.sqlite3"))

    @cached_property
    def oidc_tickets(self):
        """The callback's one-time handover of a verified identity to the UI (any replica redeems it once)."""
        from assistant.components.identity.oidc import LoginTickets
        return LoginTickets(self.sso_once)

    @cached_property
    def ldap(self):
        """The LDAP / AD bind login when identity.ldap.enabled, else None: authenticate(username, password) →
        the directory's ExternalIdentity, or None."""
        if not self.settings.identity.ldap.enabled:
            return None
        from assistant.components.identity.ldap import LdapAuthenticator
        return LdapAuthenticator(self.settings.identity.ldap)

    @cached_property
    def principals(self):
        from assistant.services.principals import PrincipalService
        oidc = self.oidc
        verifier = oidc.verify_access_token if oidc is not None and self.settings.identity.oidc.api_audience else None
        return PrincipalService(self.api_keys, self.directory, verifier)

    @cached_property
    def audit(self):
        from assistant.services.audit import AuditLog
        return AuditLog(self.db_target("audit.sqlite3"))

    @cached_property
    def feedback(self):
        from assistant.services.feedback import FeedbackService
        return FeedbackService(self.db_target("feedback.sqlite3"), self.audit)

    @cached_property
    def jobs(self):
        from assistant.services.jobs import JobManager
        return JobManager(self.settings.api.jobs_kept, self.db_target("jobs.sqlite3"))

    @cached_property
    def rate_limiter(self):
        from assistant.services.rate_limit import RateLimiter
        shared = None
        if self.settings.database.url:      # replicas share the buckets
            from assistant.db import Database
            shared = Database(self.db_target("rate_limits"))
        return RateLimiter(self.settings.api.rate_limit_per_minute, db=shared)

    @cached_property
    def plain_chat(self):
        from assistant.services.chat import ChatService
        return ChatService(lambda: self.llm, self.model_name, self.settings.llm.max_tokens)


class _LazyEmbeddings(Embeddings):
    """Embeddings that load on first use, so opening a store to list or delete never loads a model."""

    def __init__(self, container: Container):
        self._container = container

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._container.embeddings.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._container.embeddings.embed_query(text)
