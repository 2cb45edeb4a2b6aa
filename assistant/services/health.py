"""Readiness: is the store open, do the embeddings load and embed, can the LLM be loaded (or reached)?
Each check reports separately, so an operator sees which part is missing. Components are cached by the
container, so after the first success a check costs next to nothing."""
from __future__ import annotations

import time
from typing import Any, Callable


def _check(fn: Callable[[], dict]) -> dict:
    t0 = time.perf_counter()
    try:
        out = {"ok": True, **fn()}
    except Exception as exc:  # noqa: BLE001 - readiness reports every failure instead of raising it
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    out["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return out


def _store(container: Any) -> dict:
    return {"knowledge_bases": len(container.store.catalog.list_kbs())}


def _embeddings(container: Any) -> dict:
    dim = len(container.embeddings.embed_query("就绪检查"))
    return {"name": container.embedding_name, "dim": dim}


def _llm(container: Any) -> dict:
    llm = container.llm
    s = container.settings.llm
    if s.mode == "openai":   # remote servers (vLLM replicas): ready while at least one answers
        import httpx

        from assistant.components.llm.openai import backend_name, backend_urls
        headers = {"Authorization": f"Bearer {s.openai.api_key}"} if s.openai.api_key else {}
        backends, errors = {}, []
        for url in backend_urls(container.settings):
            try:
                httpx.get(url.rstrip("/") + "/models", headers=headers, timeout=5).raise_for_status()
                backends[backend_name(url)] = "reachable"
            except httpx.HTTPError as exc:
                backends[backend_name(url)] = f"unreachable ({type(exc).__name__})"
                errors.append(exc)
        if len(errors) == len(backends):
            raise errors[0] if errors else RuntimeError("no llm.openai backend configured")
        return {"model": container.model_name, "reachable": True, "backends": backends}
    if hasattr(llm, "server"):   # the in-process llama.cpp engine loads its weights on first access
        llm.server  # noqa: B018
    return {"model": container.model_name, "loaded": True}


def readiness(container: Any) -> dict:
    checks = {"store": _check(lambda: _store(container)),
              "embeddings": _check(lambda: _embeddings(container)),
              "llm": _check(lambda: _llm(container))}
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}
