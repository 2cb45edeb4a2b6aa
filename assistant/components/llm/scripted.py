"""A scripted chat model for unit tests: deterministic, instant, and it follows the RAG contract.

It answers with the first sentence of the first numbered reference passage and cites it as [1], or with the
refusal line when the prompt holds no references. Tests can also queue exact replies.
"""
from __future__ import annotations

import re
from typing import Any, Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from assistant.settings import Settings

_PASSAGE = re.compile(r"^\[1\][^\n]*\n(.+?)(?:\n\[2\]|\n\n|$)", re.S | re.M)


class ScriptedChatModel(BaseChatModel):
    replies: list[str] = []
    calls: list[list[dict]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _reply(self, messages: list[BaseMessage]) -> str:
        self.calls.append([{"role": m.type, "content": m.content} for m in messages])
        if self.replies:
            return self.replies.pop(0)
        last = messages[-1].content
        m = _PASSAGE.search(last)
        if not m:
            return "知识库中未找到相关依据。" if "参考资料" in last else "好的。"
        first = re.split(r"(?<=[。！？；])", m.group(1).strip())[0]
        return f"根据资料，{first}[1]"

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kw: Any) -> ChatResult:
        text = self._reply(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(
            content=text, usage_metadata={"input_tokens": 0, "output_tokens": len(text), "total_tokens": len(text)}))])

    def _stream(self, messages: list[BaseMessage], stop=None, run_manager=None, **kw: Any
                ) -> Iterator[ChatGenerationChunk]:
        text = self._reply(messages)
        for i in range(0, len(text), 4):
            yield ChatGenerationChunk(message=AIMessageChunk(content=text[i:i + 4]))


def build(settings: Settings) -> BaseChatModel:
    return ScriptedChatModel(replies=[], calls=[])
