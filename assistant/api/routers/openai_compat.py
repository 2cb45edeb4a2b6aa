"""OpenAI-compatible chat completions and models (works with the `openai` client and LangChain's ChatOpenAI).

`model` is a knowledge base the key may read (RAG: the last user message is the question, earlier turns the
history) or "llm" (the plain model, no retrieval). Streams use OpenAI's chunk format and end with [DONE].
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Iterator

from fastapi import APIRouter, HTTPException, Request, Response

from assistant.api.deps import Reader, get_container, note
from assistant.api.openai_format import (
    PLAIN_MODEL,
    ChatCompletionOut,
    ChatCompletionRequest,
    ChunkWriter,
    answer_extensions,
    completion,
    split_question,
)
from assistant.api.streaming import ClosingStreamingResponse as StreamingResponse   # frees the LLM on disconnect
from assistant.filters import Filters
from assistant.services.access import Principal

router = APIRouter(prefix="/v1", tags=["openai"])
log = logging.getLogger("assistant.api")
AI_HEADER = {"X-AI-Generated": "true"}   # 人工智能生成合成内容标识, also for clients that drop unknown fields


def _models(request: Request, principal: Principal) -> list[dict]:
    c = get_container(request)
    data = [{"id": kb["name"], "object": "model", "created": _epoch(kb.get("created_at")), "owned_by": "gov-assistant",
             "kind": "knowledge_base", "description": kb.get("description", "")}
            for kb in c.knowledge_bases.list(principal=principal)]
    if c.settings.api.plain_llm:
        data.append({"id": PLAIN_MODEL, "object": "model", "created": 0, "owned_by": "gov-assistant", "kind": "llm",
                     "root": c.model_name, "description": "the model without retrieval (answers are not sourced)"})
    return data


@router.get("/models", summary="Knowledge bases this key may read, plus the plain model 'llm'")
def list_models(request: Request, principal: Principal = Reader) -> dict:
    return {"object": "list", "data": _models(request, principal)}


@router.get("/models/{model_id}", summary="One model")
def get_model(model_id: str, request: Request, principal: Principal = Reader) -> dict:
    for m in _models(request, principal):
        if m["id"] == model_id:
            return m
    raise HTTPException(404, f"model {model_id!r} not found (or not readable with this key)")


@router.post("/chat/completions", summary="OpenAI-compatible chat completion (stream or not)",
             responses={200: {"model": ChatCompletionOut, "description": (
                 "A chat.completion (or, with stream: true, text/event-stream chunks whose last one carries the "
                 "same extensions: sources, related, verification, refused, answer_id, answer).")}})
def chat_completions(body: ChatCompletionRequest, request: Request, response: Response,
                     principal: Principal = Reader):
    c = get_container(request)
    messages = body.flat_messages()
    writer = ChunkWriter("chatcmpl-" + uuid.uuid4().hex, body.model)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    if body.model in (PLAIN_MODEL, c.model_name):
        if not c.settings.api.plain_llm:
            raise HTTPException(404, "the plain model is disabled on this server (api.plain_llm)")
        note(request, question=messages[-1]["content"], model=c.model_name)
        max_tokens = body.max_completion_tokens or body.max_tokens
        if body.stream:
            events = c.plain_chat.stream(messages, max_tokens)
            return StreamingResponse(_plain_stream(request, writer, events, include_usage),
                                     media_type="text/event-stream", headers=AI_HEADER)
        out = c.plain_chat.complete(messages, max_tokens)
        request.app.state.metrics.add_usage(out["usage"])
        note(request, outcome="answered")
        response.headers.update(AI_HEADER)
        return completion(writer.id, body.model, out["text"], out["usage"],
                          {"sources": [], "related": [], "ai_generated": True, "refused": False})

    question, history = split_question(messages)
    note(request, kb=body.model, question=question)
    flt = Filters.from_dict(body.filters)
    if body.stream:
        events = c.qa.stream(question, [body.model], flt, history, principal=principal)   # ACL checked here
        first = next(events)   # retrieval runs now: its errors become a status code, not a broken stream
        note(request, sources=[cit.chunk_id for cit in first["citations"]], model=c.model_name)
        return StreamingResponse(_rag_stream(request, writer, events, include_usage),
                                 media_type="text/event-stream", headers=AI_HEADER)
    answer = c.qa.ask(question, [body.model], flt, history, principal=principal)
    _note_answer(request, answer)
    response.headers.update(AI_HEADER)
    return completion(writer.id, body.model, answer.answer, answer.usage, answer_extensions(answer))


def _note_answer(request: Request, answer) -> None:
    note(request, sources=[cit.chunk_id for cit in answer.citations], model=answer.model, answer_id=answer.answer_id,
         outcome="refused" if answer.refused else "answered")
    request.app.state.metrics.add_usage(answer.usage)
    request.app.state.metrics.count_answer("refused" if answer.refused else "answered")


def _rag_stream(request: Request, w: ChunkWriter, events: Iterator[dict], include_usage: bool) -> Iterator[str]:
    try:
        yield w.chunk({"role": "assistant", "content": ""})
        for event in events:
            if event["type"] == "token":
                yield w.chunk({"content": event["text"]})
            elif event["type"] == "answer":
                answer = event["answer"]
                _note_answer(request, answer)
                yield w.chunk({}, "stop", **answer_extensions(answer), answer=answer.answer)
                if include_usage:
                    yield w.usage(answer.usage)
    except Exception as exc:  # noqa: BLE001 - headers are sent: report in-stream, as OpenAI does
        log.exception("stream failed")
        note(request, outcome="error")
        yield w.error(_failure(exc))
    yield w.done()


def _plain_stream(request: Request, w: ChunkWriter, events: Iterator[dict], include_usage: bool) -> Iterator[str]:
    try:
        yield w.chunk({"role": "assistant", "content": ""})
        for event in events:
            if event["type"] == "token":
                yield w.chunk({"content": event["text"]})
            else:
                request.app.state.metrics.add_usage(event["usage"])
                note(request, outcome="answered")
                yield w.chunk({}, "stop", sources=[], related=[], ai_generated=True, refused=False)
                if include_usage:
                    yield w.usage(event["usage"])
    except Exception as exc:  # noqa: BLE001 - see _rag_stream
        log.exception("stream failed")
        note(request, outcome="error")
        yield w.error(_failure(exc))
    yield w.done()


def _failure(exc: Exception) -> str:
    """The in-stream error text: an LLM backend's own message says what to do (it names hosts, never URLs or
    keys); anything else only by its type."""
    from assistant.components.llm.local import LLMError
    return f"generation failed: {exc}" if isinstance(exc, LLMError) else f"generation failed: {type(exc).__name__}"


def _epoch(iso: str | None) -> int:
    try:
        return int(datetime.strptime(iso or "", "%Y-%m-%dT%H:%M:%S%z").timestamp())
    except ValueError:
        return 0
