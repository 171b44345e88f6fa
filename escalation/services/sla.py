"""SLA timers of escalations (seed 004's sla-timer.sh, ``escalate_sla_miss``, ``correct_sla_timer``).

An escalation's SLA record starts when it opens, with the routing snapshot's duration. The sweep
runs on the leader (beat) every minute; each due record is taken by a conditional UPDATE
(``status = active`` → ``sla_exceeded``), in batches claimed with ``FOR UPDATE SKIP LOCKED`` where
the database has it, so two sweeps at once still escalate each miss exactly once. Resolution comes
from the API, the admin, or the tracker's status (``refresh_from_trackers``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from escalation import metrics
from escalation.models import Escalation, EscalationEvent, FailureEvent, SlaRecord
from escalation.services import audit, notifications

logger = logging.getLogger("escalation.sla")

SWEEP_BATCH = 1_000
SWEEP_BUDGET_SECONDS = 40.0
TRACKER_REFRESH_BATCH = 50


def record_of(escalation: Escalation) -> SlaRecord | None:
    return escalation.sla_record()


def start_sla(escalation: Escalation, start: datetime) -> SlaRecord:
    minutes = int(escalation.routing.get("sla_minutes") or 0)
    return SlaRecord.objects.create(
        escalation=escalation,
        failure_type=escalation.failure_type,
        assigned_teams=[team["name"] for team in escalation.routing.get("teams", [])],
        started_at=start,
        deadline=start + timedelta(minutes=minutes),
    )


def remaining_seconds(record: SlaRecord, now: datetime | None = None) -> int:
    return int((record.deadline - (now or timezone.now())).total_seconds())


# --- the sweep -------------------------------------------------------------------------------

# Hands claimed record ids to the worker (``escalation.tasks`` registers its task); the sweep
# itself only claims, so it stays fast whatever the table's size and however many are due.
MissDispatcher = Callable[[list[int]], None]
_dispatcher: MissDispatcher | None = None
DISPATCH_CHUNK = 200


def set_miss_dispatcher(dispatcher: MissDispatcher) -> None:
    global _dispatcher
    _dispatcher = dispatcher


def _claim_due(now: datetime, batch: int) -> list[int]:
    """Takes up to ``batch`` due active records, earliest deadline first, in one statement: the
    conditional UPDATE is the claim (a record another sweep took is no longer active), rows are
    locked with SKIP LOCKED where the database can, and the partial index on active deadlines
    keeps it a short range scan over millions of records."""
    table = connection.ops.quote_name(SlaRecord._meta.db_table)
    lock = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    sql = (
        f"UPDATE {table} SET status = %s, exceeded_at = %s "  # noqa: S608 (names are ours)
        f"WHERE status = %s AND id IN (SELECT id FROM {table} WHERE status = %s "
        f"AND deadline <= %s ORDER BY deadline LIMIT %s{lock}) RETURNING id"
    )
    exceeded, active = SlaRecord.Status.SLA_EXCEEDED, SlaRecord.Status.ACTIVE
    with connection.cursor() as cursor:
        cursor.execute(sql, [exceeded, now, active, active, now, batch])
        return [row[0] for row in cursor.fetchall()]


def sweep_due_slas(
    now: datetime | None = None,
    *,
    batch: int = SWEEP_BATCH,
    dispatch: MissDispatcher | None = None,
) -> int:
    """Claims every active SLA record past its deadline, once, and hands them to the worker to
    escalate (``escalate_misses``); returns how many were claimed."""
    now = now or timezone.now()
    dispatch = dispatch or _dispatcher
    if dispatch is None:
        raise RuntimeError("no SLA miss dispatcher: escalation.tasks was not imported")
    claimed = 0
    # Bounded by its own clock: the threads pool enforces no task time limit. What is left is
    # claimed by the next sweep, a minute later.
    stop_at = time.monotonic() + SWEEP_BUDGET_SECONDS
    while time.monotonic() < stop_at:
        with transaction.atomic():
            ids = _claim_due(now, batch)
        # After the claim committed: a worker that reads the records sees them claimed.
        for offset in range(0, len(ids), DISPATCH_CHUNK):
            dispatch(ids[offset : offset + DISPATCH_CHUNK])
        claimed += len(ids)
        if len(ids) < batch:
            return claimed
    return claimed


def escalate_misses(record_ids: list[int]) -> int:
    """Escalates claimed records (the worker's half of the sweep); a record already escalated
    (a task run twice) is skipped. Returns how many were escalated now."""
    done = 0
    records = SlaRecord.objects.filter(
        pk__in=record_ids, status=SlaRecord.Status.SLA_EXCEEDED
    ).select_related("escalation")
    for record in records:
        with transaction.atomic():
            already = EscalationEvent.objects.filter(
                escalation_id=record.escalation_id, kind="sla_missed"
            ).exists()
            if not already:
                escalate_sla_miss(record, record.exceeded_at or timezone.now())
                done += 1
    return done


def escalate_sla_miss(record: SlaRecord, now: datetime) -> None:
    """The seed's ``escalate_sla_miss``: notify the scrum master, comment on the ticket, record."""
    escalation = record.escalation
    late = int((now - record.deadline).total_seconds() // 60)
    headline = (
        f"SLA MISS: {escalation.routing.get('title', escalation.failure_type)} in "
        f"{escalation.repository} (escalation #{escalation.pk}, due "
        f"{record.deadline.isoformat(timespec='minutes')}, {late} min late)"
    )
    notifications.notify_scrum_master(
        escalation, headline, kind="sla_miss", key=f"esc:{escalation.pk}:sla_miss"
    )
    notifications.comment_on_ticket(
        escalation,
        f"SLA_MISSED: the SLA of {escalation.routing.get('sla_minutes')} min ran out at "
        f"{record.deadline.isoformat(timespec='minutes')}. Escalating to management review.",
        kind="sla_miss",
        key=f"esc:{escalation.pk}:sla_miss_comment",
    )
    audit.record(
        "sla_missed",
        headline,
        escalation=escalation,
        data={"deadline": record.deadline.isoformat(), "late_minutes": late},
    )
    metrics.SLA_MISSES.labels(failure_type=escalation.failure_type).inc()


# --- resolution and correction -----------------------------------------------------------------


def resolve(
    escalation: Escalation,
    reason: str,
    *,
    actor: Any = None,
    now: datetime | None = None,
    within_sla_only_if_due: bool = True,
) -> bool:
    """Resolves an open escalation and closes its SLA record: ``resolved_within_sla`` before the
    deadline; a record already ``sla_exceeded`` stays so. False if it was not open."""
    now = now or timezone.now()
    with transaction.atomic():
        changed = Escalation.objects.filter(pk=escalation.pk, status=Escalation.Status.OPEN).update(
            status=Escalation.Status.RESOLVED, resolved_at=now, resolution=reason[:200]
        )
        if not changed:
            return False
        escalation.status, escalation.resolved_at = Escalation.Status.RESOLVED, now
        SlaRecord.objects.filter(escalation=escalation, status=SlaRecord.Status.ACTIVE).update(
            status=SlaRecord.Status.RESOLVED_WITHIN_SLA, resolved_at=now
        )
        SlaRecord.objects.filter(escalation=escalation, resolved_at__isnull=True).update(
            resolved_at=now
        )
        FailureEvent.objects.filter(escalation=escalation, status=FailureEvent.Status.OPEN).update(
            status=FailureEvent.Status.RESOLVED
        )
        audit.record("resolved", f"Resolved: {reason}", escalation=escalation, actor=actor)
    return True


def correct_sla_timer(
    escalation: Escalation, correct_start: datetime, reason: str, *, actor: Any = None
) -> SlaRecord:
    """The seed's ``correct_sla_timer``: a new start, the deadline recomputed from the routing
    snapshot's duration, the teams notified. A record already escalated stays escalated; an
    active one whose new deadline has passed is escalated by the next sweep."""
    with transaction.atomic():
        record = SlaRecord.objects.select_for_update().get(escalation=escalation)
        old = record.deadline
        record.started_at = correct_start
        record.deadline = correct_start + timedelta(
            minutes=int(escalation.routing.get("sla_minutes") or 0)
        )
        record.save(update_fields=["started_at", "deadline"])
        message = (
            f"SLA timer corrected: start {correct_start.isoformat(timespec='minutes')}, deadline "
            f"{old.isoformat(timespec='minutes')} → {record.deadline.isoformat(timespec='minutes')}"
            f" ({reason})"
        )
        audit.record(
            "sla_corrected",
            message,
            escalation=escalation,
            actor=actor,
            data={"old_deadline": old.isoformat(), "new_deadline": record.deadline.isoformat(),
                  "reason": reason},
        )  # fmt: skip
        stamp = record.deadline.strftime("%Y%m%d%H%M")
        for team in escalation.routing.get("teams", []):
            failure = escalation.failures.order_by("-created_at").first()
            if failure is not None:
                notifications.queue_slack(
                    escalation, failure, team, message,
                    kind="sla_corrected", key=f"esc:{escalation.pk}:sla:{stamp}:{team['name']}"[:64],
                )  # fmt: skip
    return record


# --- the tracker's status ----------------------------------------------------------------------


def refresh_from_trackers(now: datetime | None = None) -> int:
    """Resolves open escalations whose ticket is done on its tracker; returns how many.

    Reads the least recently seen first, a bounded batch a run (the leader runs it each minute).
    """
    from itsm import public

    now = now or timezone.now()
    open_with_ticket = (
        Escalation.objects.filter(status=Escalation.Status.OPEN)
        .exclude(tracker_key="")
        .order_by("last_seen_at")[:TRACKER_REFRESH_BATCH]
    )
    resolved = 0
    stop_at = time.monotonic() + SWEEP_BUDGET_SECONDS
    for escalation in open_with_ticket:
        if time.monotonic() > stop_at:  # the rest at the next refresh, a minute later
            break
        try:
            with public.client_for(escalation.tracker) as client:
                if not client.supports(public.READ_STATUS):
                    continue
                view = client.read_status(
                    public.TicketRef(escalation.tracker_id, escalation.tracker_key)
                )
        except public.ItsmError as exc:
            logger.warning(
                "escalation.tracker_refresh_failed: escalation %s (%s %s): %s",
                escalation.pk, escalation.tracker, escalation.tracker_key, exc.message,
            )  # fmt: skip
            continue
        if view.resolved and resolve(
            escalation, f"{escalation.tracker_key} is {view.status or 'done'}", now=now
        ):
            resolved += 1
    return resolved
