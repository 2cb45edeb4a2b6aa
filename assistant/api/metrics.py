"""A tiny in-process Prometheus registry (text exposition format 0.0.4): request counts by route and status,
a latency histogram per route, LLM tokens and answer outcomes. prometheus_client would do the same; one
process serves the API, so a few dicts under a lock are enough and add no dependency."""
from __future__ import annotations

import threading

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
PREFIX = "gov_assistant"


def _labels(**labels: str) -> str:
    def esc(v: str) -> str:
        return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = {}
        self.latency: dict[tuple[str, str], list] = {}        # (method, route) -> [bucket counts..., sum, count]
        self.tokens: dict[str, int] = {"prompt": 0, "completion": 0}
        self.answers: dict[str, int] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (method, route, str(status))
            self.requests[key] = self.requests.get(key, 0) + 1
            hist = self.latency.setdefault((method, route), [0] * len(BUCKETS) + [0.0, 0])
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    hist[i] += 1
            hist[-2] += seconds
            hist[-1] += 1

    def add_usage(self, usage: dict | None) -> None:
        """LangChain usage_metadata (input_tokens/output_tokens) or OpenAI usage (prompt_/completion_tokens)."""
        usage = usage or {}
        with self._lock:
            self.tokens["prompt"] += int(usage.get("input_tokens", usage.get("prompt_tokens", 0)) or 0)
            self.tokens["completion"] += int(usage.get("output_tokens", usage.get("completion_tokens", 0)) or 0)

    def count_answer(self, outcome: str) -> None:
        with self._lock:
            self.answers[outcome] = self.answers.get(outcome, 0) + 1

    def render(self) -> str:
        p = PREFIX
        with self._lock:
            lines = [f"# HELP {p}_http_requests_total HTTP requests by method, route template and status.",
                     f"# TYPE {p}_http_requests_total counter"]
            lines += [f"{p}_http_requests_total{_labels(method=m, route=r, status=s)} {n}"
                      for (m, r, s), n in sorted(self.requests.items())]
            lines += [f"# HELP {p}_http_request_duration_seconds Time until the last byte of the response.",
                      f"# TYPE {p}_http_request_duration_seconds histogram"]
            for (m, r), hist in sorted(self.latency.items()):
                bucket = f"{p}_http_request_duration_seconds_bucket"
                for bound, n in zip(BUCKETS, hist):
                    lines.append(f"{bucket}{_labels(method=m, route=r, le=str(bound))} {n}")
                lines.append(f"{bucket}{_labels(method=m, route=r, le='+Inf')} {hist[-1]}")
                lines.append(f"{p}_http_request_duration_seconds_sum{_labels(method=m, route=r)} {hist[-2]:.6f}")
                lines.append(f"{p}_http_request_duration_seconds_count{_labels(method=m, route=r)} {hist[-1]}")
            lines += [f"# HELP {p}_llm_tokens_total LLM tokens reported by the backend.",
                      f"# TYPE {p}_llm_tokens_total counter"]
            lines += [f"{p}_llm_tokens_total{_labels(kind=k)} {n}" for k, n in sorted(self.tokens.items())]
            lines += [f"# HELP {p}_answers_total Generated answers by outcome (answered, refused).",
                      f"# TYPE {p}_answers_total counter"]
            lines += [f"{p}_answers_total{_labels(outcome=k)} {n}" for k, n in sorted(self.answers.items())]
        return "\n".join(lines) + "\n"
