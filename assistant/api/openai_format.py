"""The OpenAI chat-completions wire format: request model, completion and stream-chunk builders, SSE framing.

Extensions (ignored by clients that do not know them): `sources` (the passages behind the answer, in the
response and in the final stream chunk), `related` (a refusal's closest passages, 相关但未直接回答, each marked
`related: true`: never the answer's evidence), `verification` (each sentence checked against the passages it cites,
the answerability judgement, missing question constraints, the refusal reason, sentences removed — the same object
as /api/v1/ask), `ai_generated` (人工智能生成合成内容标识), `refused`, `answer_id`; in the final
stream chunk of a knowledge-base answer, `answer`: the finished text, which can differ from the streamed deltas (citation
markers attached or dropped, a markers-only reply replaced by the quoted passage) and is what the non-streaming
response returns;
and in the request, `filters` (the same metadata filters as /api/v1/ask, via the client's extra_body).
"""
from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.api.schemas import FiltersIn, VerificationOut

PLAIN_MODEL = "llm"


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        if any(p.type != "text" for p in self.content):
            raise ValueError("only text content is supported")
        return "".join(p.text or "" for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = False


class ChatCompletionRequest(BaseModel):
    # extra="allow": clients send many optional parameters (top_p, user, seed ...) that do not apply here
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=128,
                       description="A knowledge base name (RAG over it) or 'llm' (the plain model, no retrieval).")
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(None, ge=1, le=32768)
    temperature: float | None = Field(None, ge=0, le=2, description="Ignored for knowledge-base answers.")
    n: int | None = Field(None, ge=1, le=1)
    filters: FiltersIn | None = Field(None, max_length=20, description="Extension: metadata filters for RAG "
                                                                      "(bounded as in /api/v1/ask).")

    def flat_messages(self) -> list[dict]:
        return [{"role": m.role, "content": m.text()} for m in self.messages]


def split_question(messages: list[dict]) -> tuple[str, list[dict]]:
    """RAG: the last user message is the question; earlier user/assistant turns are the history."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last is None or not messages[last]["content"].strip():
        raise ValueError("messages must contain a non-empty user message (the question)")
    history = [m for m in messages[:last] if m["role"] in ("user", "assistant") and m["content"]]
    return messages[last]["content"], history


def openai_usage(usage: dict | None) -> dict:
    usage = usage or {}
    prompt = int(usage.get("input_tokens", 0) or 0)
    completion = int(usage.get("output_tokens", 0) or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def source_dicts(citations: list, related: bool = False) -> list[dict]:
    return [{"n": c.n, "kb": c.kb, "doc_id": c.doc_id, "chunk_id": c.chunk_id, "title": c.title, "label": c.label,
             "cited": c.cited and not related, "related": related, "text": c.text, "metadata": c.metadata,
             "offsets": c.offsets, "pages": c.pages, "page": c.page, "sensitivity": c.sensitivity,
             "notice": c.notice}
            for c in citations]


def answer_extensions(answer: Any) -> dict:
    """The extension fields of a knowledge-base answer (non-streaming response and final stream chunk)."""
    return {"sources": source_dicts(answer.citations), "related": source_dicts(answer.related, related=True),
            "verification": answer.verification, "ai_generated": True, "refused": answer.refused,
            "answer_id": answer.answer_id}


class SourceOut(BaseModel):
    n: int
    kb: str
    doc_id: str
    chunk_id: str
    title: str
    label: str
    cited: bool
    related: bool = Field(False, description="A refusal's closest passage (in `related`), not the answer's evidence.")
    text: str
    metadata: dict[str, Any]
    offsets: list[int] | None = None
    pages: list[int] = Field(default_factory=list)
    page: int | None = None


class ChatCompletionOut(BaseModel):
    """The non-streaming response (documentation: /docs). The final stream chunk carries the same extensions."""
    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, int]
    sources: list[SourceOut] = Field(default_factory=list, description="Extension: the passages behind the answer.")
    related: list[SourceOut] = Field(default_factory=list, description=(
        "Extension: a refusal's closest passages (相关但未直接回答), never cited as the answer."))
    verification: VerificationOut | None = Field(None, description=(
        "Extension: how the answer was checked (as in /api/v1/ask); absent for the plain model."))
    ai_generated: bool = Field(True, description="人工智能生成合成内容标识")
    refused: bool = False
    answer_id: str | None = None


def completion(completion_id: str, model: str, text: str, usage: dict, extra: dict) -> dict:
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": openai_usage(usage), **extra}


class ChunkWriter:
    """Frames stream chunks as SSE `data:` lines with one id and creation time for the whole stream."""

    def __init__(self, completion_id: str, model: str):
        self.id, self.model, self.created = completion_id, model, int(time.time())

    def _frame(self, payload: dict) -> str:
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def chunk(self, delta: dict, finish_reason: str | None = None, **extra: Any) -> str:
        return self._frame({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                            "model": self.model, "system_fingerprint": None,
                            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                         "finish_reason": finish_reason}], **extra})

    def usage(self, usage: dict) -> str:
        return self._frame({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                            "model": self.model, "choices": [], "usage": openai_usage(usage)})

    def error(self, message: str) -> str:
        return self._frame({"error": {"message": message, "type": "server_error", "param": None, "code": None}})

    @staticmethod
    def done() -> str:
        return "data: [DONE]\n\n"
