"""The transactional outbox: external work recorded with the change that needs it, delivered later.

Business code calls :func:`enqueue` inside its transaction; nothing leaves the process until the
transaction commits. Then a Celery task delivers the message through a registered handler (which
uses an itsm client, so the retry policy, idempotency key, metrics and redaction apply). A
platform that stays down only postpones delivery: the message keeps its place with a growing
``next_attempt_at`` and the leader's periodic sweep picks it up again. A message is claimed by a
conditional UPDATE (one winner, on SQLite and PostgreSQL alike) that pushes its
``next_attempt_at`` past the delivery, so no two workers deliver it at once and a crashed
delivery is retried after the claim lapses. Handlers are idempotent by the message's key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from itsm.errors import ItsmError, NotConfigured, RetryableError
from itsm.models import OutboxMessage, Ticket
from portal.redaction import redact, redact_text

logger = logging.getLogger("itsm.outbox")

Handler = Callable[[OutboxMessage], dict[str, Any] | None]
HANDLERS: dict[str, Handler] = {}

CLAIM_SECONDS = 5 * 60  # longer than one delivery with all its retries (total timeout 60 s)
MAX_BACKOFF_SECONDS = 15 * 60


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Registers the function that delivers messages of ``kind``."""

    def register(function: Handler) -> Handler:
        HANDLERS[kind] = function
        return function

    return register


def enqueue(
    kind: str,
    platform: str,
    payload: dict[str, Any] | None = None,
    *,
    idempotency_key: str,
    ticket: Ticket | None = None,
) -> OutboxMessage:
    """Writes the message (in the caller's transaction) and schedules its delivery on commit.

    The same ``idempotency_key`` twice returns the first message: a replayed request never
    queues a second delivery.
    """
    if kind not in HANDLERS:
        raise ValueError(f"no outbox handler for {kind!r}")
    message, created = OutboxMessage.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={
            "kind": kind,
            "platform": platform,
            "payload": redact(payload or {}),
            "ticket": ticket,
        },
    )
    if created:
        from itsm import tasks

        # robust: a broker outage must not fail the committed request; the sweep delivers later.
        transaction.on_commit(lambda: tasks.deliver_outbox_message.delay(message.pk), robust=True)
    return message


def backoff_seconds(attempts: int) -> float:
    """30 s, 60 s, 120 s ... capped at 15 minutes, between deliveries of a message."""
    return float(min(30 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


def claim(message_id: int, now: datetime | None = None) -> bool:
    """Takes the message for one delivery. The attempt is counted here, before any call, so a
    delivery that dies half-way (a killed worker) still tells the next one to look first."""
    now = now or timezone.now()
    return bool(
        OutboxMessage.objects.filter(
            pk=message_id, status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now
        ).update(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS), attempts=F("attempts") + 1)
    )


def is_redelivery(message: OutboxMessage) -> bool:
    """True when an earlier delivery of this message may have reached the platform."""
    return message.attempts > 1


def deliver(message_id: int) -> str:
    """Delivers one message if it is due and nobody else holds it; returns its status after."""
    if not claim(message_id):
        return "skipped"
    message = OutboxMessage.objects.select_related("ticket").get(pk=message_id)
    # Anything else than an ItsmError is a bug, not the platform: it propagates, the message stays
    # pending (the claim lapses) and the task fails loudly.
    try:
        result = HANDLERS[message.kind](message) or {}
    except (RetryableError, NotConfigured) as exc:
        delay = backoff_seconds(message.attempts)
        if isinstance(exc, RetryableError) and exc.retry_after:
            delay = max(delay, exc.retry_after)  # a quota that resets in an hour means an hour
        _record_failure(
            message, exc, "itsm.outbox.postponed", logging.WARNING,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )  # fmt: skip
        return OutboxMessage.Status.PENDING
    except ItsmError as exc:  # rejected or invalid: retrying cannot help
        _record_failure(
            message, exc, "itsm.outbox.dead", logging.ERROR, status=OutboxMessage.Status.DEAD
        )
        return OutboxMessage.Status.DEAD
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxMessage.Status.DELIVERED,
        delivered_at=timezone.now(),
        last_error="",
        result=redact(result),
    )
    return OutboxMessage.Status.DELIVERED


def _record_failure(
    message: OutboxMessage, exc: Exception, event: str, level: int, **changes: Any
) -> None:
    error = redact_text(str(exc))
    OutboxMessage.objects.filter(pk=message.pk).update(last_error=error[:2000], **changes)
    logger.log(
        level,
        event,
        extra={
            "event": event,
            "kind": message.kind,
            "message_id": message.pk,
            "attempts": message.attempts,
            "error": error,
        },
    )


def due_message_ids(now: datetime | None = None, limit: int = 100) -> list[int]:
    now = now or timezone.now()
    return list(
        OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def sweep(now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Delivers every due message (the leader's periodic job); returns counts by status."""
    counts: dict[str, int] = {}
    for message_id in due_message_ids(now, limit):
        status = deliver(message_id)
        counts[status] = counts.get(status, 0) + 1
    return counts


def retry_now(message_ids: list[int]) -> int:
    """Operator action: make pending or dead messages due now (a dead one gets another try) and
    queue their delivery."""
    from itsm import tasks

    ids = list(
        OutboxMessage.objects.filter(
            pk__in=message_ids,
            status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.DEAD],
        ).values_list("id", flat=True)
    )
    OutboxMessage.objects.filter(pk__in=ids).update(
        status=OutboxMessage.Status.PENDING, next_attempt_at=timezone.now()
    )
    for message_id in ids:
        transaction.on_commit(
            lambda message_id=message_id: tasks.deliver_outbox_message.delay(message_id),
            robust=True,
        )
    return len(ids)
