"""The transactional outbox: external work recorded with the change that needs it, delivered later.

Business code calls :func:`enqueue` inside its transaction; nothing leaves the process until the
transaction commits. Then a Celery task delivers the message through a registered handler (which
uses an itsm client, so the retry policy, idempotency key, metrics and redaction apply). A
platform that stays down only postpones delivery: the message keeps its place with a growing
``next_attempt_at`` and the leader's periodic sweep picks it up again. A message is claimed by a
conditional UPDATE (one winner, on SQLite and PostgreSQL alike) that pushes its
``next_attempt_at`` past the delivery and stamps a claim token, so no two workers deliver it at
once and a crashed delivery is retried after the claim lapses; a delivery whose claim lapsed
and was taken again cannot overwrite the newer one's outcome. Handlers are idempotent by the
message's key.

The sweep only claims due messages and hands each to its own task: one slow or unreachable
platform holds back nothing else, and a sweep is a few quick queries whatever the backlog.
Any failure of one message (a platform's refusal, a bug in a handler, a payload that cannot be
encoded) is recorded on that message with its reason and never stops the others.

This module does not import the tasks (no cycle): ``itsm.tasks`` registers the function that
queues a delivery with :func:`set_dispatcher` when it is imported.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
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
# Queues the delivery of (message id, claim token or None); set by itsm.tasks.
Dispatcher = Callable[[int, str | None], None]
HANDLERS: dict[str, Handler] = {}
_dispatcher: Dispatcher | None = None

CLAIM_SECONDS = 5 * 60  # longer than one delivery with all its retries (total timeout 60 s)
MAX_BACKOFF_SECONDS = 15 * 60
SWEEP_LIMIT = 500  # messages claimed by one sweep; the rest wait for the next (every 15 s)
SWEEP_BUDGET_SECONDS = 10.0
# A handler that fails with something else than an ItsmError (a bug, a payload it cannot use)
# is tried this many times, then kept as dead with its reason for an operator.
MAX_UNEXPECTED_FAILURES = 5


def set_dispatcher(dispatcher: Dispatcher) -> None:
    """How deliveries are queued (``itsm.tasks`` registers its Celery task)."""
    global _dispatcher
    _dispatcher = dispatcher


def dispatch(message_id: int, token: str | None = None) -> None:
    if _dispatcher is None:
        raise RuntimeError("no outbox dispatcher: itsm.tasks was not imported")
    _dispatcher(message_id, token)


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
        # robust: a broker outage must not fail the committed request; the sweep delivers later.
        transaction.on_commit(lambda: dispatch(message.pk), robust=True)
    return message


def backoff_seconds(attempts: int) -> float:
    """30 s, 60 s, 120 s ... capped at 15 minutes, between deliveries of a message."""
    return float(min(30 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


def claim(message_id: int, now: datetime | None = None) -> str | None:
    """Takes the message for one delivery; returns the claim's token, or None if it is not due
    or someone else holds it. The attempt is counted here, before any call, so a delivery that
    dies half-way (a killed worker) still tells the next one to look first."""
    now = now or timezone.now()
    token = uuid.uuid4().hex
    claimed = OutboxMessage.objects.filter(
        pk=message_id, status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now
    ).update(
        next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS),
        attempts=F("attempts") + 1,
        claim_token=token,
    )
    return token if claimed else None


def is_redelivery(message: OutboxMessage) -> bool:
    """True when an earlier delivery of this message may have reached the platform."""
    return message.attempts > 1


def deliver(message_id: int, token: str | None = None) -> str:
    """Delivers one message; returns its status after (``skipped`` when it was not ours).

    Without ``token`` the message is claimed here (if it is due and free); with one, the sweep
    claimed it already and the delivery goes ahead only while that claim is still the current.
    """
    if token is None:
        token = claim(message_id)
        if token is None:
            return "skipped"
    message = (
        OutboxMessage.objects.select_related("ticket")
        .filter(pk=message_id, status=OutboxMessage.Status.PENDING, claim_token=token)
        .first()
    )
    if message is None:
        return "skipped"
    try:
        handler = HANDLERS.get(message.kind)
        if handler is None:
            raise LookupError(f"no outbox handler for {message.kind!r}")
        result = handler(message) or {}
    except (RetryableError, NotConfigured) as exc:
        delay = backoff_seconds(message.attempts)
        if isinstance(exc, RetryableError) and exc.retry_after:
            delay = max(delay, exc.retry_after)  # a quota that resets in an hour means an hour
        return _record_failure(
            message, token, exc, "itsm.outbox.postponed", logging.WARNING,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )  # fmt: skip
    except ItsmError as exc:  # rejected or invalid: retrying cannot help
        return _record_failure(
            message, token, exc, "itsm.outbox.dead", logging.ERROR,
            status=OutboxMessage.Status.DEAD,
        )  # fmt: skip
    except Exception as exc:  # a bug or an unusable payload: this message fails, alone
        # The traceback as text, redacted and made storable: an exception's message may carry
        # text no log handler can encode (a lone surrogate) or a credential.
        logger.error(
            "itsm.outbox.handler_crashed: message %s (%s)\n%s",
            message.pk, message.kind, storable(redact_text(traceback.format_exc())),
            extra={"event": "itsm.outbox.handler_crashed", "message_id": message.pk},
        )  # fmt: skip
        if message.attempts >= MAX_UNEXPECTED_FAILURES:
            return _record_failure(
                message, token, exc, "itsm.outbox.dead", logging.ERROR,
                status=OutboxMessage.Status.DEAD,
            )  # fmt: skip
        return _record_failure(
            message, token, exc, "itsm.outbox.postponed", logging.WARNING,
            next_attempt_at=timezone.now() + timedelta(seconds=backoff_seconds(message.attempts)),
        )  # fmt: skip
    OutboxMessage.objects.filter(pk=message.pk, claim_token=token).update(
        status=OutboxMessage.Status.DELIVERED,
        delivered_at=timezone.now(),
        last_error="",
        result=redact(storable(result)),
    )
    return OutboxMessage.Status.DELIVERED


def storable(value: Any) -> Any:
    """``value`` with any text that the database could not store (lone surrogates) replaced."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def _record_failure(
    message: OutboxMessage,
    token: str,
    exc: Exception,
    event: str,
    level: int,
    **changes: Any,
) -> str:
    """Stores why the delivery failed (never empty: the exception's type at least) and returns
    the message's status after."""
    reason = str(exc).strip()
    error = storable(
        redact_text(f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__)
    )
    OutboxMessage.objects.filter(pk=message.pk, claim_token=token).update(
        last_error=error[:2000], **changes
    )
    logger.log(
        level,
        "%s: message %s (%s): %s",
        event, message.pk, message.kind, error,
        extra={
            "event": event,
            "kind": message.kind,
            "message_id": message.pk,
            "attempts": message.attempts,
            "error": error,
        },
    )  # fmt: skip
    return changes.get("status", OutboxMessage.Status.PENDING)


def due_message_ids(now: datetime | None = None, limit: int = 100) -> list[int]:
    now = now or timezone.now()
    return list(
        OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def sweep(now: datetime | None = None, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """The leader's periodic job: claims every due message and queues each one's delivery as
    its own task; returns how many were queued."""
    queued = 0
    # Bounded by its own clock: the threads pool (Procfile's default) enforces no task time limit.
    stop_at = time.monotonic() + SWEEP_BUDGET_SECONDS
    for message_id in due_message_ids(now, limit):
        if time.monotonic() > stop_at:
            break
        token = claim(message_id, now)
        if token is not None:
            transaction.on_commit(
                lambda message_id=message_id, token=token: dispatch(message_id, token),
                robust=True,
            )
            queued += 1
    return {"queued": queued}


def retry_now(message_ids: list[int]) -> int:
    """Operator action: make pending or dead messages due now (a dead one gets another try) and
    queue their delivery."""
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
            lambda message_id=message_id: dispatch(message_id),
            robust=True,
        )
    return len(ids)
