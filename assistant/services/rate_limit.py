"""Per-key rate limit: a token bucket holding `per_minute` tokens, refilled continuously (bursts allowed up to
the bucket size). In process memory for the embedded profile's one server process; in the shared database's
rate_buckets table (one atomic upsert per request, the database's clock) when several replicas serve."""
from __future__ import annotations

import math
import threading
import time


class RateLimited(Exception):
    def __init__(self, retry_after_s: float):
        super().__init__(f"rate limit exceeded: retry in {math.ceil(retry_after_s)} s")
        self.retry_after_s = retry_after_s


class RateLimiter:
    def __init__(self, per_minute: int, clock=time.monotonic, db=None):
        """db: the scale-out profile's Database (PostgreSQL): buckets shared by every replica."""
        self._db = db
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}   # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Take one token for `key`, or raise RateLimited with the wait until one is available."""
        if self.capacity <= 0:
            return
        if self._db is not None:
            return self._check_shared(key)
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimited((1.0 - tokens) / self.rate)
            self._buckets[key] = (tokens - 1.0, now)

    # refill and take in one statement: two replicas taking the same key's last token serialise on its row
    _TAKE = ("INSERT INTO rate_buckets AS b(key, tokens, at) VALUES (?, ? - 1, extract(epoch FROM clock_timestamp())) "
             "ON CONFLICT (key) DO UPDATE SET tokens = LEAST(?, b.tokens + (excluded.at - b.at) * ?) - 1, "
             "at = excluded.at WHERE LEAST(?, b.tokens + (excluded.at - b.at) * ?) >= 1 RETURNING tokens")

    def _check_shared(self, key: str) -> None:
        cap, rate = self.capacity, self.rate
        if self._db.execute(self._TAKE, (key, cap, cap, rate, cap, rate)).fetchone() is not None:
            return
        row = self._db.execute("SELECT LEAST(?, tokens + (extract(epoch FROM clock_timestamp()) - at) * ?) AS t "
                               "FROM rate_buckets WHERE key=?", (cap, rate, key)).fetchone()
        tokens = float(row["t"]) if row else 0.0
        raise RateLimited(max((1.0 - tokens) / self.rate, 0.0))
