"""In-process llama.cpp server engine (xllamacpp) over a packaged, sha256-verified GGUF file.

xllamacpp's Server also opens an HTTP listener on 127.0.0.1; it is given a random API key so nothing else
on the host can use it unauthenticated, and llama.cpp's own logging is silenced.
"""
from __future__ import annotations

import json
import queue
import secrets
import threading
from typing import Any, Iterator

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from assistant.components.registry import ComponentError
from assistant.settings import Settings

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "user": "user", "assistant": "assistant"}


def to_openai_messages(messages: list[BaseMessage]) -> list[dict]:
    return [{"role": _ROLES.get(m.type, "user"), "content": m.content} for m in messages]


class LLMError(RuntimeError):
    pass


class ChatXLlamaCpp(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    model_path: str
    model_name: str
    n_ctx: int = 4096
    n_parallel: int = 2
    n_threads: int = 2
    temperature: float = 0.0
    max_tokens: int = 512
    seed: int = 42
    speculative: str = "none"
    _server: Any = PrivateAttr(default=None)
    _api_key: str = PrivateAttr(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def _llm_type(self) -> str:
        return "xllamacpp"

    @property
    def listening_address(self) -> str:
        return self.server.listening_address

    @property
    def api_key(self) -> str:
        """Key of the loopback HTTP listener (used by tests of the OpenAI-compatible backend)."""
        return self._api_key

    @property
    def server(self):
        if self._server is None:
            import xllamacpp

            params = xllamacpp.CommonParams()
            params.model.path = self.model_path
            params.n_ctx = self.n_ctx
            params.n_parallel = self.n_parallel
            params.cpuparams.n_threads = self.n_threads
            params.cpuparams_batch.n_threads = self.n_threads
            if self.speculative != "none":
                kind = getattr(xllamacpp.common_speculative_type, f"COMMON_SPECULATIVE_TYPE_{self.speculative.upper()}")
                params.speculative.types = [kind]
            params.cache_prompt = True
            params.api_keys = [self._api_key]
            params.verbosity = -1
            params.warmup = False
            self._server = xllamacpp.Server(params)
        return self._server

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any) -> dict:
        req = {"messages": to_openai_messages(messages),
               "max_tokens": kwargs.get("max_tokens", self.max_tokens),
               "temperature": kwargs.get("temperature", self.temperature),
               "seed": self.seed, "cache_prompt": True}
        if stop:
            req["stop"] = stop
        # passed through as the OpenAI API has them (vLLM takes the same): constrained output and token logprobs
        for key in ("response_format", "logprobs", "top_logprobs"):
            if kwargs.get(key) is not None:
                req[key] = kwargs[key]
        return req

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        res = self.server.handle_chat_completions(self._request(messages, stop, **kwargs))
        if "error" in res:
            raise LLMError(f"local model error: {res['error']}")
        usage = res.get("usage", {})
        msg = AIMessage(content=res["choices"][0]["message"]["content"] or "",
                        usage_metadata={"input_tokens": usage.get("prompt_tokens", 0),
                                        "output_tokens": usage.get("completion_tokens", 0),
                                        "total_tokens": usage.get("total_tokens", 0)},
                        response_metadata={"timings": res.get("timings", {}), "model_name": self.model_name,
                                           "finish_reason": res["choices"][0].get("finish_reason"),
                                           "logprobs": res["choices"][0].get("logprobs")})
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        # handle_chat_completions blocks until generation ends and calls back per chunk: run it in a thread
        req = {**self._request(messages, stop, **kwargs), "stream": True, "stream_options": {"include_usage": True}}
        pipe = _ChunkPipe()

        def work() -> None:
            try:
                self.server.handle_chat_completions(req, pipe.put)
            except Exception as exc:  # noqa: BLE001 - surfaced to the consumer below
                pipe.queue.put({"error": str(exc)})
            finally:
                pipe.queue.put(pipe.done)

        threading.Thread(target=work, daemon=True).start()
        try:
            while (item := pipe.queue.get()) is not pipe.done:
                if isinstance(item, str):
                    item = json.loads(item)
                if "error" in item:
                    raise LLMError(f"local model error: {item['error']}")
                usage = item.get("usage")
                text = "".join((c.get("delta") or {}).get("content") or "" for c in item.get("choices") or [])
                meta = {"input_tokens": usage.get("prompt_tokens", 0),
                        "output_tokens": usage.get("completion_tokens", 0),
                        "total_tokens": usage.get("total_tokens", 0)} if usage else None
                logprobs = next((c["logprobs"] for c in item.get("choices") or [] if c.get("logprobs")), None)
                if text or meta:
                    # token logprobs ride on the chunk when the request asked for them (answerability: first_token)
                    chunk = ChatGenerationChunk(message=AIMessageChunk(
                        content=text, usage_metadata=meta,
                        response_metadata={"logprobs": logprobs} if logprobs else {}))
                    if run_manager and text:
                        run_manager.on_llm_new_token(text, chunk=chunk)
                    yield chunk
        finally:
            # the consumer stopped early (a client disconnected, a caller broke off): free the llama.cpp slot
            pipe.cancel.set()


class _ChunkPipe:
    """Chunks from llama.cpp's generation thread to the consumer. put() is llama.cpp's per-chunk callback:
    returning True tells the server to stop generating, which it does once the consumer has cancelled."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.done = object()
        self.cancel = threading.Event()
        self.after_cancel = 0           # chunks llama.cpp still produced after the cancel (tests read it)

    def put(self, item: Any) -> bool:
        if self.cancel.is_set():
            self.after_cancel += 1
            return True
        self.queue.put(item)
        return False

def build(settings: Settings) -> BaseChatModel:
    from assistant.models import ModelError, ensure_model

    try:
        path = ensure_model(settings.llm.local.model, settings.resolved_models_dir)
    except ModelError as exc:
        raise ComponentError(str(exc)) from None
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        raise ComponentError("llm.mode=local needs xllamacpp: uv pip install xllamacpp==2026.10.11549") from None
    lc = settings.llm.local
    return ChatXLlamaCpp(model_path=str(path), model_name=lc.model, n_ctx=lc.n_ctx, n_parallel=lc.n_parallel,
                         n_threads=lc.n_threads, temperature=settings.llm.temperature,
                         max_tokens=settings.llm.max_tokens, seed=settings.llm.seed, speculative=lc.speculative)
