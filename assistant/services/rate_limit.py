"""Per-key rate limit: a token bucket holding `per_minute` tokens, refilled continuously (bursts allowed up to
the bucket size). In-process, so it holds for the one server process that owns the embedded store."""
from __future__ import annotations

import math
import threading
import time


class RateLimited(Exception):
    def __init__(self, retry_after_s: float):
        super().__init__(f"rate limit exceeded: retry in {math.ceil(retry_after_s)} s")
        self.retry_after_s = retry_after_s


class RateLimiter:
    def __init__(self, per_minute: int, clock=time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}   # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Take one token for `key`, or raise RateLimited with the wait until one is available."""
        if self.capacity <= 0:
            return
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimited((1.0 - tokens) / self.rate)
            self._buckets[key] = (tokens - 1.0, now)
