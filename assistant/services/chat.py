"""Plain chat with the configured LLM, no retrieval (OpenAI route with model "llm"). Answers are unsourced,
so they carry the AI-generated flag like every other answer and nothing from any knowledge base."""
from __future__ import annotations

from typing import Callable, Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage

MAX_MESSAGES = 50
MAX_CHARS = 20000
_TYPES = {"system": SystemMessage, "developer": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def to_messages(messages: list[dict]) -> list[BaseMessage]:
    """OpenAI-style {role, content} dicts (content already flattened to text) → LangChain messages."""
    if not messages:
        raise ValueError("messages is empty")
    if len(messages) > MAX_MESSAGES:
        raise ValueError(f"more than {MAX_MESSAGES} messages")
    if sum(len(m.get("content") or "") for m in messages) > MAX_CHARS:
        raise ValueError(f"messages are longer than {MAX_CHARS} characters in all")
    out = []
    for m in messages:
        if m.get("role") not in _TYPES:
            raise ValueError(f"unsupported message role {m.get('role')!r}: use system, user or assistant")
        out.append(_TYPES[m["role"]](content=m.get("content") or ""))
    if not isinstance(out[-1], HumanMessage):
        raise ValueError("the last message must be from the user")
    return out


def _usage(meta: dict | None) -> dict[str, int]:
    return {k: int(v) for k, v in (meta or {}).items() if isinstance(v, int)}


class ChatService:
    def __init__(self, llm: Callable[[], BaseChatModel], model_name: str, max_tokens: int):
        self._llm = llm               # a provider: the model loads on first use
        self.model_name = model_name
        self.max_tokens = max_tokens  # the configured answer length is also the ceiling a caller may ask for

    def _bound(self, max_tokens: int | None):
        return self._llm().bind(max_tokens=min(max_tokens or self.max_tokens, self.max_tokens))

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> dict:
        msgs = to_messages(messages)
        out = self._bound(max_tokens).invoke(msgs)
        return {"text": str(out.content).strip(), "usage": _usage(getattr(out, "usage_metadata", None)),
                "model": self.model_name, "ai_generated": True}

    def stream(self, messages: list[dict], max_tokens: int | None = None) -> Iterator[dict]:
        """Events {"type": "token", "text"} then {"type": "done", "usage"}; checks happen before the first event."""
        msgs = to_messages(messages)
        return self._events(msgs, max_tokens)

    def _events(self, msgs: list[BaseMessage], max_tokens: int | None) -> Iterator[dict]:
        usage: dict[str, int] = {}
        for chunk in self._bound(max_tokens).stream(msgs):
            if isinstance(chunk, AIMessageChunk) and chunk.usage_metadata:
                usage = _usage(chunk.usage_metadata)
            if chunk.content:
                yield {"type": "token", "text": str(chunk.content)}
        yield {"type": "done", "usage": usage}
