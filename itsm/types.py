"""Values that cross module boundaries in the itsm app, defined once.

Clients return them, services store them, other apps read them through ``itsm.public``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Attempt:
    """One attempt of a logical call, as the ticket record's retry metadata keeps it."""

    attempt: int
    at: str
    outcome: str  # ok | existing | retryable | rejected
    status_code: int | None = None
    error: str = ""
    delay_seconds: float = 0.0  # the wait that followed this attempt


@dataclass
class CallLog:
    """Attempts of one logical call, kept on the ticket record as its retry metadata."""

    attempts: list[Attempt] = field(default_factory=list)
    reconciled: bool = False  # the result was found by idempotency marker, not created now

    @property
    def retries(self) -> int:
        return max(len(self.attempts) - 1, 0)

    def as_list(self) -> list[dict[str, Any]]:
        return [asdict(a) for a in self.attempts]


@dataclass(frozen=True)
class CreatedTicket:
    """What a create returns (seed 003's ``TicketCreationResult``), with the call's attempts."""

    platform: str
    id: str
    key: str
    url: str
    reconciled: bool = False
    log: CallLog = field(default_factory=CallLog, compare=False)


@dataclass(frozen=True)
class TicketRef:
    """An object on a platform: its id (ServiceNow's sys_id, Linear's UUID, Jira's numeric id)
    and its human key (``OPS-7``, ``INC0010001``, ``PLT-12``). Each client uses the one its
    API addresses objects by."""

    id: str
    key: str = ""


@dataclass(frozen=True)
class PlatformView:
    """What a platform says about a ticket, for the SLA check; times are None where it does
    not say."""

    responded: bool
    resolved: bool
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    status: str = ""  # the platform's own name for the state, for display


@dataclass(frozen=True)
class RateLimitHint:
    """What a platform's last answer said about its rate limit (Jira's ``X-RateLimit-*`` headers,
    INTEGRATIONS.md §1a), for callers that pace a long series of calls."""

    near_limit: bool
    remaining: int | None = None
    limit: int | None = None
    reason: str = ""

    @property
    def pressing(self) -> bool:
        """Less than 20 % of the budget left (what ``X-RateLimit-NearLimit`` means)."""
        if self.near_limit:
            return True
        return self.remaining is not None and bool(self.limit) and self.remaining < 0.2 * self.limit
