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

FAITHFULNESS = """你是严格的评审。判断【回答】中的每一项陈述是否都能由【参考资料】支持（不考虑回答是否完整）。
按1-5打分：5=全部有依据；4=基本有依据，个别细节无法核实；3=约一半有依据；2=大部分无依据；1=与资料矛盾或全部无依据。
只输出JSON：{{"score": 整数, "reason": "一句话理由"}}

【参考资料】
{context}

【问题】{question}
【回答】{answer}"""

RELEVANCE = """你是严格的评审。判断【回答】是否直接、切题地回答了【问题】（不考虑事实是否正确）。
按1-5打分：5=完全切题且直接回答；4=切题但有多余内容；3=部分回答；2=基本不切题；1=完全答非所问或拒答。
只输出JSON：{{"score": 整数, "reason": "一句话理由"}}

【问题】{question}
【回答】{answer}"""

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
        f, f_why = self._ask(FAITHFULNESS.format(context=context, question=question, answer=answer))
        r, r_why = self._ask(RELEVANCE.format(question=question, answer=answer))
        norm = lambda s: None if s is None else (s - 1) / 4  # noqa: E731
        return {"faithfulness": norm(f), "relevance": norm(r), "faithfulness_reason": f_why,
                "relevance_reason": r_why}

    def describe(self) -> dict:
        return {"url": self.base_url, "model": self.model}
