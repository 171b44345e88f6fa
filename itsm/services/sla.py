"""SLA tracking on ticket records: deadlines at creation, a periodic check for breaches.

Targets (minutes to first response and to resolution, by priority) come from
``config/itsm_config.json``. The check runs on the leader only (beat), claims rows with
``SELECT ... FOR UPDATE SKIP LOCKED`` where the database has it, and refreshes open tickets'
response and resolution times from their platform before judging them: ``REFRESH_BATCH`` a run,
round-robin (least recently checked first), with the platform's own timestamps where it has them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from itsm import metrics
from itsm.clients import client_for
from itsm.config import PRIORITY_NAMES, TICKET_PLATFORMS, get_config
from itsm.errors import ItsmError, UpstreamRejected
from itsm.models import Ticket
from itsm.types import TicketRef

logger = logging.getLogger("itsm.sla")

PRIORITY_BY_NAME = {name.lower(): rank for rank, name in PRIORITY_NAMES.items()}
DEFAULT_PRIORITY = "3"
REFRESH_BATCH = 50
# Least recently checked first, never checked before all; among equals the earliest deadline.
# NULLs are placed explicitly: SQLite sorts them first and PostgreSQL last.
REFRESH_ORDER = (
    F("sla_checked_at").asc(nulls_first=True),
    F("sla_due_at").asc(nulls_last=True),
    "id",
)
REFRESH_FIELDS = ["first_response_at", "resolved_at", "sla_checked_at", "updated_at"]
# A platform answering these for a ticket it created no longer has it (deleted, or a fake
# restarted empty): the ticket is marked once instead of warned about at every check.
GONE_STATUS_CODES = (404, 410)


def priority_rank(priority: str) -> str:
    value = str(priority or "").strip().lower()
    if value in PRIORITY_BY_NAME:
        return PRIORITY_BY_NAME[value]
    return value if value in PRIORITY_NAMES else DEFAULT_PRIORITY


def set_deadlines(ticket: Ticket, start: datetime) -> None:
    targets = get_config().sla
    rank = priority_rank(ticket.priority)
    response = targets.response_minutes_by_priority.get(rank)
    resolution = targets.resolution_minutes_by_priority.get(rank)
    ticket.created_at = start
    ticket.sla_response_due_at = start + timedelta(minutes=response) if response else None
    ticket.sla_due_at = start + timedelta(minutes=resolution) if resolution else None


def is_breached(ticket: Ticket, now: datetime) -> bool:
    if ticket.resolved_at is None and ticket.sla_due_at and ticket.sla_due_at <= now:
        return True
    responded = ticket.first_response_at
    due = ticket.sla_response_due_at
    return bool(due and ((responded is None and due <= now) or (responded and responded > due)))


def state_of(ticket: Ticket) -> str:
    """The SLA state pages and lists show: ``breached``, ``met`` (resolved in time) or ``open``."""
    if ticket.sla_breached:
        return "breached"
    if ticket.resolved_at is not None:
        return "met"
    return "open"


def _open_tickets():
    return Ticket.objects.filter(platform__in=TICKET_PLATFORMS, resolved_at__isnull=True).exclude(
        status__in=[Ticket.Status.FAILED, Ticket.Status.MISSING]
    )


def refresh_from_platform(ticket: Ticket, now: datetime) -> bool:
    """Fills ``first_response_at``/``resolved_at`` from the platform's view; True if changed.

    The platform's own times are used where it has them, "now" (when the check saw the change)
    where it has not; never a time later than now, since the change was seen by then.
    """
    if ticket.status != Ticket.Status.CREATED or not ticket.external_id:
        return False
    with client_for(ticket.platform) as client:
        view = client.read_status(TicketRef(ticket.external_id, ticket.external_key))
    changed = False
    resolved_at = min(view.resolved_at or now, now) if view.resolved else None
    if resolved_at and ticket.resolved_at is None:
        ticket.resolved_at = resolved_at
        changed = True
    if (view.responded or view.resolved) and ticket.first_response_at is None:
        responded_at = min(view.responded_at or now, now)
        # Resolving a ticket answers it: a response is never later than the resolution.
        if ticket.resolved_at is not None:
            responded_at = min(responded_at, ticket.resolved_at)
        ticket.first_response_at = responded_at
        changed = True
    return changed


def _claim_refresh_batch(now: datetime) -> list[Ticket]:
    """The next ``REFRESH_BATCH`` open tickets in round-robin order, stamped as checked at ``now``.

    Stamping in the claim's transaction (rows locked, others skipped where the database can)
    means an overlapping run takes the next tickets instead of the same ones, and a ticket whose
    platform call fails still goes to the back of the queue instead of blocking it.
    """
    with transaction.atomic():
        batch = _open_tickets().filter(status=Ticket.Status.CREATED).order_by(*REFRESH_ORDER)
        if connection.features.has_select_for_update_skip_locked:
            batch = batch.select_for_update(skip_locked=True)
        tickets = list(batch[:REFRESH_BATCH])
        Ticket.objects.filter(pk__in=[ticket.pk for ticket in tickets]).update(sla_checked_at=now)
    for ticket in tickets:
        ticket.sla_checked_at = now
    return tickets


LAST_LOOK_BATCH = 200


def _breach_candidates(now: datetime):
    return (
        _open_tickets()
        .filter(sla_breached=False)
        .filter(
            Q(sla_due_at__lte=now)
            | Q(sla_response_due_at__lte=now, first_response_at__isnull=True)
            # A response that came late, possibly seen only in this run's refresh.
            | Q(first_response_at__gt=F("sla_response_due_at"))
        )
    )


def _refresh(ticket: Ticket, now: datetime) -> bool:
    try:
        if refresh_from_platform(ticket, now):
            ticket.save(update_fields=REFRESH_FIELDS)
            return True
    except UpstreamRejected as exc:
        if exc.status_code in GONE_STATUS_CODES:
            _mark_missing(ticket, now, exc)
        else:
            _refresh_failed(ticket, exc)
    except ItsmError as exc:
        _refresh_failed(ticket, exc)
    return False


def _refresh_failed(ticket: Ticket, exc: ItsmError) -> None:
    label = ticket.external_key or ticket.external_id
    logger.warning(
        "itsm.sla.refresh_failed: ticket %s (%s %s): %s",
        ticket.pk, ticket.platform, label, exc.message,
        extra={
            "event": "itsm.sla.refresh_failed",
            "ticket": ticket.pk,
            "platform": ticket.platform,
            "external_key": label,
            "error": exc.message,
        },
    )  # fmt: skip


def _mark_missing(ticket: Ticket, now: datetime, exc: UpstreamRejected) -> None:
    """The platform no longer knows the ticket: say so once, and stop checking it."""
    marked = Ticket.objects.filter(pk=ticket.pk, status=Ticket.Status.CREATED).update(
        status=Ticket.Status.MISSING,
        error={**(ticket.error or {}), "missing": exc.as_dict(), "missing_since": now.isoformat()},
        updated_at=now,
    )
    if marked:
        ticket.status = Ticket.Status.MISSING
        label = ticket.external_key or ticket.external_id
        logger.warning(
            "itsm.sla.ticket_missing: ticket %s (%s %s) is no longer on the platform: %s",
            ticket.pk, ticket.platform, label, exc.message,
            extra={
                "event": "itsm.sla.ticket_missing",
                "ticket": ticket.pk,
                "platform": ticket.platform,
                "external_key": label,
                "error": exc.message,
            },
        )  # fmt: skip


def check_slas(now: datetime | None = None, *, refresh: bool = True) -> dict[str, Any]:
    """The periodic SLA check: refresh, flag new breaches (the ``/metrics`` gauges read them)."""
    now = now or timezone.now()
    refreshed = 0
    if refresh:
        batch = _claim_refresh_batch(now)
        refreshed += sum(_refresh(ticket, now) for ticket in batch)
        # A last look at each ticket about to be judged that the rotation has not reached: it
        # may have been answered or resolved in time, and a breach is never taken back.
        last_look = (
            _breach_candidates(now)
            .filter(status=Ticket.Status.CREATED)
            .exclude(pk__in=[ticket.pk for ticket in batch])
            .order_by("id")[:LAST_LOOK_BATCH]
        )
        for ticket in last_look:
            ticket.sla_checked_at = now
            if _refresh(ticket, now):
                refreshed += 1
            else:
                Ticket.objects.filter(pk=ticket.pk).update(sla_checked_at=now)
    newly_breached = 0
    with transaction.atomic():
        candidates = _breach_candidates(now)
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        for ticket in candidates:
            if is_breached(ticket, now):
                ticket.sla_breached = True
                ticket.sla_breached_at = now
                ticket.save(update_fields=["sla_breached", "sla_breached_at", "updated_at"])
                metrics.SLA_BREACHES_TOTAL.labels(platform=ticket.platform).inc()
                newly_breached += 1
                logger.warning(
                    "itsm.sla.breached",
                    extra={
                        "event": "itsm.sla.breached",
                        "ticket": ticket.pk,
                        "platform": ticket.platform,
                    },
                )
    return {"refreshed": refreshed, "newly_breached": newly_breached}


def open_and_breached_by_platform() -> dict[str, tuple[int, int]]:
    """(open, breached) counts of tracked tickets by platform; read by ``/metrics``."""
    rows = (
        _open_tickets()
        .values("platform")
        .annotate(open=Count("id"), breached=Count("id", filter=Q(sla_breached=True)))
    )
    seen = {row["platform"]: (row["open"], row["breached"]) for row in rows}
    return {platform: seen.get(platform, (0, 0)) for platform in TICKET_PLATFORMS}
