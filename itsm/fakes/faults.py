"""Fault rules: make the fakes fail, slow down or hang up the way real services do.

A rule matches requests by platform (and optionally by path substring and method), decides whether it
fires (the next ``count`` matches, or each match with probability ``rate`` from a seeded random
generator) and then adds latency, answers with an error status, or drops the connection without a
byte. ``mode="after"`` processes the request first (the issue is really created) and only then fails,
which is the ambiguous case a client's idempotency has to survive.

The table is not thread-safe on its own: the server calls it under the state lock.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

PLATFORMS = ("jira", "servicenow", "slack", "linear", "github")
MODES = ("before", "after")


class InvalidFaultRule(ValueError):
    """The control API was given a rule it cannot honour."""


@dataclass
class FaultRule:
    platform: str
    status: int | None = None
    rate: float | None = None
    seed: int | None = None
    count: int | None = None
    retry_after: float | None = None
    latency_ms: float = 0.0
    drop: bool = False
    mode: str = "before"
    path_contains: str | None = None
    method: str | None = None
    id: int = 0
    fired: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    @property
    def fails(self) -> bool:
        """True when the rule breaks the request, False when it only adds latency."""
        return self.drop or self.status is not None

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.count <= 0

    def matches(self, platform: str, method: str, path: str) -> bool:
        if self.exhausted or platform != self.platform:
            return False
        if self.method and method.upper() != self.method:
            return False
        return not (self.path_contains and self.path_contains not in path)

    def rolls(self) -> bool:
        """Whether a matching request is hit: always under a count, by chance under a rate."""
        if self.rate is None:
            return True
        return self._random.random() < self.rate

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_random")
        return data


def parse_rule(data: Any, rule_id: int) -> FaultRule:
    """Build a rule from the control API's JSON, rejecting anything ambiguous."""
    if not isinstance(data, dict):
        raise InvalidFaultRule("a fault rule is a JSON object")
    known = {
        "platform",
        "status",
        "rate",
        "seed",
        "count",
        "retry_after",
        "latency_ms",
        "drop",
        "mode",
        "path_contains",
        "method",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidFaultRule(f"unknown fault rule fields: {', '.join(unknown)}")
    platform = data.get("platform")
    if platform not in PLATFORMS:
        raise InvalidFaultRule(f"platform must be one of {', '.join(PLATFORMS)}")
    status = data.get("status")
    if status is not None and (
        not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599
    ):
        raise InvalidFaultRule("status must be an integer HTTP error status (400-599)")
    rate = data.get("rate")
    if rate is not None and (not _is_number(rate) or not 0 <= rate <= 1):
        raise InvalidFaultRule("rate must be a number between 0 and 1")
    count = data.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise InvalidFaultRule("count must be a non-negative integer")
    retry_after = data.get("retry_after")
    if retry_after is not None and (not _is_number(retry_after) or retry_after < 0):
        raise InvalidFaultRule("retry_after must be a non-negative number of seconds")
    latency_ms = data.get("latency_ms", 0) or 0
    if not _is_number(latency_ms) or latency_ms < 0:
        raise InvalidFaultRule("latency_ms must be a non-negative number")
    drop = data.get("drop", False)
    if not isinstance(drop, bool):
        raise InvalidFaultRule("drop must be true or false")
    mode = data.get("mode", "before")
    if mode not in MODES:
        raise InvalidFaultRule("mode must be 'before' or 'after'")
    if status is None and not drop and not latency_ms:
        raise InvalidFaultRule("a rule needs at least one of status, drop or latency_ms")
    for name in ("path_contains", "method"):
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidFaultRule(f"{name} must be a non-empty string")
    seed = data.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise InvalidFaultRule("seed must be an integer")
    method = data.get("method")
    return FaultRule(
        platform=platform,
        status=status,
        rate=rate,
        seed=seed,
        count=count,
        retry_after=retry_after,
        latency_ms=float(latency_ms),
        drop=drop,
        mode=mode,
        path_contains=data.get("path_contains"),
        method=method.upper() if method else None,
        id=rule_id,
        _random=random.Random(seed),  # noqa: S311 - fault injection, not cryptography
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class FaultDecision:
    """What the matching rules say about one request."""

    latency_seconds: float = 0.0
    rule: FaultRule | None = None

    @property
    def fails(self) -> bool:
        return self.rule is not None


class FaultTable:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self._next_id = 1

    def add(self, data: Any) -> FaultRule:
        rule = parse_rule(data, self._next_id)
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def decide(self, platform: str, method: str, path: str) -> FaultDecision:
        """Fire the rules that match: sum their latency; the first failing rule wins.

        A failing rule that loses to an earlier one is not consumed, so ``count`` means "the next N
        requests this rule breaks", whatever other rules do.
        """
        decision = FaultDecision()
        for rule in self.rules:
            if not rule.matches(platform, method, path):
                continue
            if rule.fails and decision.rule is not None:
                continue
            if not rule.rolls():
                continue
            rule.fired += 1
            if rule.count is not None:
                rule.count -= 1
            decision.latency_seconds += rule.latency_ms / 1000
            if rule.fails:
                decision.rule = rule
        return decision

    def as_json(self) -> list[dict[str, Any]]:
        return [rule.as_json() for rule in self.rules]
