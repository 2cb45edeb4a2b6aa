"""Optional LLM-as-judge through any OpenAI-compatible endpoint (off by default; --judge-url turns it on).

Two scores per answered question, each 1-5 from the judge model, reported as 0-1 ((s - 1) / 4):
- faithfulness: is every statement of the answer supported by the passages it was given?
- answer relevance: does the answer address the question?
A judge's scores are opinions of another model, not reference metrics: the report labels them with the judge's
URL and model. The key, if any, comes from GOV_ASSISTANT_JUDGE_API_KEY (never written to a report).
"""
from __future__ import annotations

import json
import os
import re

import httpx

from assistant.prompts import load_prompt

_SCORE = re.compile(r'"score"\s*:\s*([1-5])|\b([1-5])\b')


class JudgeError(RuntimeError):
    pass


def parse_score(text: str) -> int | None:
    try:
        data = json.loads(text[text.index("{"):text.rindex("}") + 1])
        score = int(data.get("score"))
        return score if 1 <= score <= 5 else None
    except (ValueError, TypeError, AttributeError):
        m = _SCORE.search(text or "")
        return int(m.group(1) or m.group(2)) if m else None


class Judge:
    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None, timeout: float = 120):
        self.base_url = base_url.rstrip("/")
        key = api_key or os.environ.get("GOV_ASSISTANT_JUDGE_API_KEY")
        self.client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {key}"} if key else {})
        self.model = model or self._first_model()

    def _first_model(self) -> str:
        try:
            resp = self.client.get(f"{self.base_url}/models")
            resp.raise_for_status()
            return resp.json()["data"][0]["id"]
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise JudgeError(f"judge at {self.base_url}: cannot list models ({exc}); pass --judge-model") from None

    def _ask(self, prompt: str) -> tuple[int | None, str]:
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "temperature": 0,
                "max_tokens": 200, "seed": 42}
        try:
            resp = self.client.post(f"{self.base_url}/chat/completions", json=body)
            resp.raise_for_status()
            text = resp.json()["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise JudgeError(f"judge at {self.base_url}: {exc}") from None
        return parse_score(text), text.strip()[:300]

    def evaluate(self, question: str, answer: str, contexts: list[str]) -> dict:
        context = "\n\n".join(f"[{i}] {c}" for i, c in enumerate(contexts, 1))[:6000]
        f, f_why = self._ask(load_prompt("judge_faithfulness").format(context=context, question=question, answer=answer))
        r, r_why = self._ask(load_prompt("judge_relevance").format(question=question, answer=answer))
        norm = lambda s: None if s is None else (s - 1) / 4  # noqa: E731
        return {"faithfulness": norm(f), "relevance": norm(r), "faithfulness_reason": f_why,
                "relevance_reason": r_why}

    def describe(self) -> dict:
        return {"url": self.base_url, "model": self.model}
