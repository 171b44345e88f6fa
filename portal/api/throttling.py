"""The per-user API throttle on an atomic counter, so the limit holds when requests race.

DRF's ``UserRateThrottle`` keeps a list of timestamps in the cache and writes it back after
reading it: parallel requests read the same list and each writes its own, losing the others
(3,000 requests passed a 2,000/minute limit from 20 clients). Here each request increments one
counter per fixed window (``<user>:<window number>``) in a single atomic step and is refused once
the count passes the limit: with ``REDIS_URL``, ``INCR`` and ``EXPIRE`` in one MULTI/EXEC; without
it, the configured cache's ``add`` (create if absent) and ``incr``, atomic on Redis and memcached
and, within one process, on the local-memory cache (each process then counts on its own).

A fixed window admits up to twice the rate across a window boundary; it never admits more than
the rate within a window. DRF's interface stays: ``allow_request`` and ``wait`` (the seconds
until the window ends, sent as ``Retry-After`` with the 429 envelope).
"""

from __future__ import annotations

import logging
import math
import time
from functools import lru_cache
from typing import Protocol

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

logger = logging.getLogger(__name__)

KEY_PREFIX = "portal:throttle:"


class WindowCounter(Protocol):
    def increment(self, key: str, ttl: int) -> int:
        """Adds one to ``key`` (created at 1 with a lifetime of ``ttl`` seconds); the new count."""
        ...

    def reserve(self, key: str, seconds: float) -> float:
        """Takes ``key`` for ``seconds`` if no one holds it: 0.0, or the seconds still held.
        "At most one per interval" with no window boundary to slip through."""
        ...


class RedisWindowCounter:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def increment(self, key: str, ttl: int) -> int:
        pipeline = self.client.pipeline(transaction=True)
        pipeline.incr(KEY_PREFIX + key)
        pipeline.expire(KEY_PREFIX + key, ttl)
        count, _ = pipeline.execute()
        return int(count)

    # Held while the stored end lies ahead of the caller's clock (the portal's one clock; Redis's
    # own expiry only cleans up): taken, or the end it holds, in one atomic step.
    RESERVE = """
    local ends = redis.call('GET', KEYS[1])
    if ends and tonumber(ends) > tonumber(ARGV[1]) then return ends end
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return false
    """

    def reserve(self, key: str, seconds: float) -> float:
        now = time.time()
        ends = self.client.eval(
            self.RESERVE, 1, KEY_PREFIX + key, repr(now), repr(now + seconds),
            max(1, int(seconds * 1000)),
        )  # fmt: skip
        return 0.0 if ends is None else max(float(ends) - now, 0.001)


class CacheWindowCounter:
    def increment(self, key: str, ttl: int) -> int:
        key = KEY_PREFIX + key
        for _ in range(3):
            if cache.add(key, 1, ttl):
                return 1
            try:
                return int(cache.incr(key))
            except ValueError:  # the key expired between add and incr: start the window again
                continue
        raise RuntimeError(f"throttle counter {key} could not be incremented")

    def reserve(self, key: str, seconds: float) -> float:
        key = KEY_PREFIX + key
        now = time.time()
        # The value is when the hold ends (the cache's own expiry cannot be read back).
        for _ in range(2):
            if cache.add(key, now + seconds, max(1, math.ceil(seconds))):
                return 0.0
            ends = cache.get(key)
            if ends is not None and float(ends) > now:
                return float(ends) - now
            cache.delete(key)  # held past its end (the cache rounds lifetimes up): take it
        return 0.001


@lru_cache(maxsize=4)
def _redis_counter(url: str) -> RedisWindowCounter:
    return RedisWindowCounter(url)


def counter_from_settings() -> WindowCounter:
    """Redis when ``REDIS_URL`` is set (read per call, so a test can switch), the cache otherwise."""
    if settings.REDIS_URL:
        return _redis_counter(settings.REDIS_URL)
    return CacheWindowCounter()


class AtomicUserRateThrottle(UserRateThrottle):
    """``DEFAULT_THROTTLE_RATES["user"]`` per authenticated user (per address for anonymous
    callers), counted atomically in fixed windows."""

    def get_rate(self) -> str | None:
        # The rate is read per request, not frozen at import as DRF's class attribute is.
        self.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        return super().get_rate()

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends_at = (window + 1) * self.duration
        try:
            count = counter_from_settings().increment(f"{self.key}:{window}", self.duration + 1)
        except redis.RedisError as exc:
            # The limit protects the service; it does not guard data. While Redis is unreachable
            # the API keeps answering (the outbox and the broker report the outage themselves).
            logger.warning("api.throttle_unavailable", extra={"error": type(exc).__name__})
            return True
        return count <= self.num_requests

    def wait(self) -> float:
        return max(self.window_ends_at - self.now, 0.0)
