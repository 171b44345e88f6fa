"""Pacing an export: the seed's fixed delay between tickets, adapted to what Jira says.

The itsm client already honours ``Retry-After`` (and Jira's ``Beta-Retry-After``) between the
retries of one call, and keeps the last answer's ``X-RateLimit-*`` headers. Across calls the pacer
adds what a single call cannot see: each create whose attempts met a 429 doubles the gap between
tickets (at least the wait Jira asked for), an answer saying the budget is nearly spent
(``X-RateLimit-NearLimit``, or under 20 % remaining) widens it by half, each clean one brings it
back towards the configured delay (additive increase of the pause, multiplicative
return: the gap settles just under Jira's limit). A rate limit that outlives the client's retries
(a ``Retry-After`` longer than it will sleep) is waited out here, within a budget, instead of
failing the export.

Every wait is cut in slices that beat the export's heartbeat, so the reaper never takes a paced
export for a dead one, and a wait ends early when the export is no longer this task's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

HEARTBEAT_SECONDS = 20.0


class Superseded(Exception):
    """The export is no longer this task's (retried, reaped): stop without writing anything."""


class Pacer:
    def __init__(
        self,
        base_delay: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        beat: Callable[[], bool] = lambda: True,
        max_delay: float = 60.0,
        wait_budget: float = 600.0,
    ) -> None:
        self.base_delay = max(base_delay, 0.0)
        self.delay = self.base_delay
        self.sleep = sleep
        self.beat = beat
        self.max_delay = max_delay
        self.wait_budget = wait_budget
        self.waited_for_limits = 0.0
        self.rate_limited_calls = 0
        self.near_limit_calls = 0

    def observe(self, log: Any, hint: Any = None) -> None:
        """Adapts the gap to one call: its attempts (an ``itsm`` CallLog, or None) and the
        rate-limit headers of its answers (an ``itsm`` RateLimitHint, or None)."""
        attempts = list(getattr(log, "attempts", None) or [])
        limited = [a for a in attempts if getattr(a, "status_code", None) == 429]
        if limited:
            self.rate_limited_calls += 1
            asked = max((a.delay_seconds or 0.0) for a in limited)
            self.delay = min(max(self.delay * 2, 1.0, asked), self.max_delay)
        elif hint is not None and getattr(hint, "pressing", False):
            # Less than 20 % of Jira's budget left: slow down before it says 429.
            self.near_limit_calls += 1
            self.delay = min(max(self.delay * 1.5, 1.0), self.max_delay)
        elif self.delay > self.base_delay:
            self.delay = max(self.base_delay, self.delay * 0.75)

    def pause(self) -> None:
        """The gap after a ticket: the configured delay, or longer while Jira pushes back."""
        self.wait(self.delay)

    def may_wait_for_limit(self, seconds: float | None) -> bool:
        """Whether a rate limit of ``seconds`` can be waited out within the export's budget."""
        seconds = 1.0 if seconds is None else seconds
        return self.waited_for_limits + seconds <= self.wait_budget

    def wait_for_limit(self, seconds: float | None) -> None:
        seconds = 1.0 if seconds is None else seconds
        self.waited_for_limits += seconds
        self.rate_limited_calls += 1
        self.delay = min(max(self.delay * 2, 1.0), self.max_delay)
        self.wait(seconds)

    def wait(self, seconds: float) -> None:
        left = max(seconds, 0.0)
        while left > 0:
            step = min(left, HEARTBEAT_SECONDS)
            self.sleep(step)
            left -= step
            if not self.beat():
                raise Superseded
