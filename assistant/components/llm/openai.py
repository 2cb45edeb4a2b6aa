"""Any OpenAI-compatible endpoint: `vllm serve` in production, llama.cpp's server, or this app's own /v1.

One `llm.openai.base_url`, or several in `llm.openai.base_urls` (vLLM replicas without a load balancer in front):
then `ChatOpenAIPool` spreads requests over them and moves a request to another backend when one goes away.
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Iterator
from urllib.parse import urlsplit

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from assistant.components.llm.local import LLMError
from assistant.components.registry import ComponentError
from assistant.settings import Settings


class LLMBackendError(LLMError):
    """Every backend of the pool failed, or the one streaming an answer went away and no other could continue it."""


def backend_urls(settings: Settings) -> list[str]:
    oa = settings.llm.openai
    return list(oa.base_urls) or ([oa.base_url] if oa.base_url else [])


def backend_name(url: str) -> str:
    """host:port only: a URL may carry credentials, names in errors and logs must not."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _client(settings: Settings, url: str, retries: int) -> BaseChatModel:
    import httpx
    from langchain_openai import ChatOpenAI

    oa, llm = settings.llm.openai, settings.llm
    return ChatOpenAI(
        base_url=url, model=oa.model, api_key=oa.api_key or "EMPTY",
        timeout=httpx.Timeout(oa.timeout_s, connect=oa.connect_timeout_s),
        temperature=llm.temperature, max_tokens=llm.max_tokens, seed=llm.seed, max_retries=retries, stream_usage=True,
        # langchain-openai sends max_completion_tokens; llama.cpp-based servers only honour max_tokens
        extra_body={"max_tokens": llm.max_tokens},
    )


def build(settings: Settings) -> BaseChatModel:
    urls = backend_urls(settings)
    if not urls:
        raise ComponentError("llm.mode=openai needs llm.openai.base_url (e.g. http://gpu-host:8001/v1) "
                             "or llm.openai.base_urls")
    if len(urls) == 1:
        return _client(settings, urls[0], retries=1)
    # the pool retries on the other backends itself: the client's own retry would hit the dead one again
    return ChatOpenAIPool(backends=[_client(settings, u, retries=0) for u in urls],
                          names=[backend_name(u) for u in urls], cooldown_s=settings.llm.openai.cooldown_s)


def _retryable(exc: BaseException) -> bool:
    """The backend, not the request, failed: unreachable, timed out, cut off, or a 5xx. A 4xx (bad key, bad
    request, context too long) would fail the same way on every replica and is raised as it is."""
    import httpx
    import openai

    if isinstance(exc, (openai.APIConnectionError, openai.InternalServerError, httpx.TransportError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


class ChatOpenAIPool(BaseChatModel):
    """Several OpenAI-compatible backends serving the same model as one chat model.

    Each request goes to the backend with the fewest requests in flight (ties in turn). A backend that fails is
    left out for `cooldown_s` and the request moves on to the next one, so a replica going away costs a retry, not
    an error. A streamed answer cut off mid-way is asked again of another backend and continued where it stopped
    when that backend's text repeats what was already sent (greedy decoding of the same model does); if it does not,
    the stream ends with LLMBackendError rather than a spliced answer."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    backends: list[Any]
    names: list[str]
    cooldown_s: float = 30.0
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _in_flight: list[int] = PrivateAttr(default_factory=list)
    _served: list[int] = PrivateAttr(default_factory=list)
    _down_until: list[float] = PrivateAttr(default_factory=list)
    _turn: Any = PrivateAttr(default_factory=itertools.count)

    def model_post_init(self, __context: Any) -> None:
        n = len(self.backends)
        self._in_flight, self._served, self._down_until = [0] * n, [0] * n, [0.0] * n

    @property
    def _llm_type(self) -> str:
        return "openai-pool"

    def stats(self) -> list[dict]:
        now = time.monotonic()
        with self._lock:
            return [{"backend": name, "in_flight": self._in_flight[i], "served": self._served[i],
                     "down_for_s": round(max(0.0, self._down_until[i] - now), 1)}
                    for i, name in enumerate(self.names)]

    def _order(self, exclude: set[int]) -> list[int]:
        """Backends to try, best first: up ones by load (ties rotate), then the ones cooling down (a pool whose
        backends all failed recently still tries them rather than refusing outright)."""
        now, turn = time.monotonic(), next(self._turn)
        n = len(self.backends)
        with self._lock:
            idx = [i for i in range(n) if i not in exclude]
            return sorted(idx, key=lambda i: (self._down_until[i] > now, self._in_flight[i], (i - turn) % n))

    def _start(self, i: int) -> None:
        with self._lock:
            self._in_flight[i] += 1

    def _end(self, i: int, ok: bool) -> None:
        with self._lock:
            self._in_flight[i] -= 1
            if ok:
                self._served[i] += 1
                self._down_until[i] = 0.0
            else:
                self._down_until[i] = time.monotonic() + self.cooldown_s

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        failures: list[str] = []
        for i in self._order(set()):
            self._start(i)
            ok = True
            try:
                result = self.backends[i]._generate(messages, stop=stop, **kwargs)
            except Exception as exc:
                if not _retryable(exc):
                    raise
                ok = False
                failures.append(f"{self.names[i]}: {type(exc).__name__}")
                continue
            finally:
                self._end(i, ok)
            for gen in result.generations:
                gen.message.response_metadata["backend"] = self.names[i]
            return result
        raise LLMBackendError("no LLM backend answered (" + "; ".join(failures) + ")")

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        sent = ""            # text already yielded to the caller
        tried: set[int] = set()
        failures: list[str] = []
        while True:
            order = self._order(tried)
            if not order:
                raise LLMBackendError("no LLM backend could finish the answer (" + "; ".join(failures) + ")")
            i = order[0]
            tried.add(i)
            self._start(i)
            ok = True        # how the backend is recorded when the stream ends (closed by the caller: fine)
            replay = sent    # this backend's text must first repeat what was sent
            try:
                for chunk in self.backends[i]._stream(messages, stop=stop, **kwargs):
                    text = str(chunk.message.content or "")
                    if replay:
                        common = min(len(replay), len(text))
                        if text[:common] != replay[:common]:
                            raise LLMBackendError(
                                f"the LLM backend streaming this answer went away and {self.names[i]} continued it "
                                "with different text, so the answer stops here: ask again")
                        replay, text = replay[common:], text[common:]
                        chunk = ChatGenerationChunk(message=AIMessageChunk(
                            content=text, usage_metadata=chunk.message.usage_metadata,
                            response_metadata=chunk.message.response_metadata), generation_info=chunk.generation_info)
                    sent += text
                    if text and run_manager:
                        run_manager.on_llm_new_token(text, chunk=chunk)
                    yield chunk
                return
            except Exception as exc:
                if isinstance(exc, LLMBackendError) or not _retryable(exc):
                    raise
                ok = False
                failures.append(f"{self.names[i]}: {type(exc).__name__}")
            finally:
                self._end(i, ok)
