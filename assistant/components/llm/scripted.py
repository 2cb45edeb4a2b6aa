"""A scripted chat model for unit tests: deterministic, instant, and it follows the RAG contract.

It answers with the first sentence of the first numbered reference passage and cites it as [1], or with the
refusal line when the prompt holds no references. Tests can also queue exact replies.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from assistant.settings import Settings

_PASSAGE = re.compile(r"^\[1\][^\n]*\n(.+?)(?:\n\[\d+\]|\n\n|$)", re.S | re.M)


def _instance(schema: dict) -> Any:
    """The smallest value of a JSON schema (the reply to a structured request when a test queued none)."""
    kind = schema.get("type")
    if kind == "object":
        return {k: _instance(v) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    if "enum" in schema:
        return schema["enum"][0]
    return {"string": "", "integer": 0, "number": 0, "boolean": False}.get(kind, None)


class ScriptedChatModel(BaseChatModel):
    replies: list[str] = []
    judgements: list = []      # "是" / "否" / P(是) for logprob judgements, in order
    judged: list[list[dict]] = []
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
        if kw.get("logprobs"):
            return self._judgement(messages)
        if kw.get("response_format") and not self.replies:
            self.calls.append([{"role": m.type, "content": m.content} for m in messages])
            text = json.dumps(_instance(kw["response_format"]["json_schema"]["schema"]), ensure_ascii=False)
        else:
            text = self._reply(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(
            content=text, usage_metadata={"input_tokens": 0, "output_tokens": len(text), "total_tokens": len(text)}))])

    def _judgement(self, messages: list[BaseMessage]) -> ChatResult:
        """A yes/no judgement read from logprobs: a queued "是"/"否" (or a float P(是)) decides, else "是".
        Recorded in `judged`, apart from `calls` (the generations)."""
        self.judged.append([{"role": m.type, "content": m.content} for m in messages])
        reply = self.judgements.pop(0) if self.judgements else "是"
        p_yes = reply if isinstance(reply, float) else (0.95 if reply == "是" else 0.05)
        top = [{"token": "是", "logprob": math.log(p_yes)}, {"token": "否", "logprob": math.log(1 - p_yes)}]
        msg = AIMessage(content="是" if p_yes >= 0.5 else "否",
                        response_metadata={"logprobs": {"content": [{"token": top[0]["token"], "top_logprobs": top}]}})
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _stream(self, messages: list[BaseMessage], stop=None, run_manager=None, **kw: Any
                ) -> Iterator[ChatGenerationChunk]:
        text = self._reply(messages)
        meta = self._first_token(text) if kw.get("logprobs") else {}
        for i in range(0, len(text), 4):
            yield ChatGenerationChunk(message=AIMessageChunk(content=text[i:i + 4], response_metadata=meta if i == 0
                                                             else {}))

    def _first_token(self, text: str) -> dict:
        """Top logprobs of a streamed answer's first token: a queued judgement P(answerable) (or "是"/"否") puts
        the rest of the mass on starting a refusal (知识). Recorded in `judged`."""
        self.judged.append([{"role": "assistant", "content": text}])
        reply = self.judgements.pop(0) if self.judgements else "是"
        p = reply if isinstance(reply, float) else (0.95 if reply == "是" else 0.05)
        top = [{"token": text[:2] or "答", "logprob": math.log(p)}, {"token": "知识", "logprob": math.log(1 - p)}]
        return {"logprobs": {"content": [{"token": top[0]["token"], "top_logprobs": top}]}}


def build(settings: Settings) -> BaseChatModel:
    return ScriptedChatModel(replies=[], judgements=[], judged=[], calls=[])
