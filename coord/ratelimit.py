"""Rate limits: token buckets per bearer token, per client IP without a valid token,
and per token for expensive operations. A refused request is `429` with `Retry-After`.

Buckets live in each process (with `--workers N` each worker has its own, so the
effective limit is up to N times the configured one; README says so). A bucket holds
`burst` requests and refills at `rate` per second; an idle key costs nothing once its
bucket is full again, and such keys are dropped when the table grows large.
"""

from __future__ import annotations

import math
import time

from aiohttp import web

from coord.config import Config
from coord.problems import Problem

# Operations that start heavy background work: (method, route template).
EXPENSIVE_ROUTES = frozenset({("POST", "/v1/projections/{name}/rebuild")})

_MAX_KEYS = 100_000


class TokenBucket:
    """Many token buckets of one rate and size, one per key."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, as of)

    @property
    def enabled(self) -> bool:
        """A rate of 0 turns the limit off."""
        return self.rate > 0

    def _level(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - then) * self.rate)

    def wait(self, key: str) -> float:
        """Seconds until `key` may make a request (0: it may now). Takes nothing."""
        if not self.enabled:
            return 0.0
        level = self._level(key, time.monotonic())
        return 0.0 if level >= 1 else (1 - level) / self.rate

    def take(self, key: str) -> float:
        """Take one request from `key`'s bucket; 0 if granted, else seconds to wait."""
        if not self.enabled:
            return 0.0
        now = time.monotonic()
        level = self._level(key, now)
        if level < 1:
            self._buckets[key] = (level, now)
            return (1 - level) / self.rate
        if len(self._buckets) >= _MAX_KEYS and key not in self._buckets:
            self._prune(now)
        self._buckets[key] = (level - 1, now)
        return 0.0

    def _prune(self, now: float) -> None:
        full = [k for k in self._buckets if self._level(k, now) >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= _MAX_KEYS:  # all busy: forget them rather than grow
            self._buckets.clear()


class RateLimits:
    """The three bucket sets of one process."""

    def __init__(self, config: Config) -> None:
        self.per_token = TokenBucket(config.rate_limit_per_token, config.rate_limit_burst)
        self.unauthenticated = TokenBucket(
            config.rate_limit_unauthenticated, config.rate_limit_unauthenticated_burst
        )
        self.expensive = TokenBucket(
            config.rate_limit_expensive_per_minute / 60, config.rate_limit_expensive_burst
        )


def too_many(wait: float, detail: str) -> Problem:
    """429 with `Retry-After` in whole seconds (at least 1)."""
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        detail,
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
        retry_after=max(1, math.ceil(wait)),
    )


RATE_LIMITS = web.AppKey("rate_limits", RateLimits)


def client_key(request: web.Request) -> str:
    """Who to count requests without a valid token against: the peer address."""
    # Behind a reverse proxy this is the proxy; README says to rate-limit there too.
    return request.remote or "unknown"
