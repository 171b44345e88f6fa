"""The export's lifecycle: start, retry, fail, complete and the reaper, each state change in one place.

Every change of a session or a ticket goes through :func:`record` (django-helpdesk's habit): it
writes the ``ExportEvent`` (the audit trail) and, after commit, pushes a hint to the session's
WebSocket group. Progress is state, pushes are hints (DESIGN.md): the consumer re-reads the session
on every hint, so a lost push costs nothing.

The export itself runs in a Celery task (``exports.tasks.run_export``) whose Celery task id is the
session's ``export_task_id``: a task whose id is no longer the session's (a retry started since, a
message redelivered after the reaper failed the export) exits without touching anything.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from exports.errors import ExportRunning, RetriesExhausted, SessionNotExportable
from exports.models import ExportEvent, ExportSession, ExportTicket, TicketDependency
from portal import live

logger = logging.getLogger("exports.lifecycle")

Status = ExportSession.Status
Category = ExportSession.ErrorCategory

RETRIED = "export_retried"
STARTED = "export_started"
FAILED = "export_failed"
COMPLETED = "export_completed"
REAPED = "export_reaped"


def group_name(session_id: Any) -> str:
    """The channel-layer group of one session's progress socket."""
    return f"exports.session.{session_id}"


# --- the one entry point for state changes ------------------------------------------------------
def record(
    session: ExportSession | Any,
    kind: str,
    message: str = "",
    *,
    ticket: ExportTicket | None = None,
    actor: Any = None,
    from_status: str = "",
    to_status: str = "",
    data: dict[str, Any] | None = None,
) -> ExportEvent:
    """Writes the audit row and, after commit, pushes a hint to the session's progress socket."""
    session_id = session.pk if isinstance(session, ExportSession) else session
    event = audit_row(
        session_id, kind, message, ticket=ticket, actor=actor,
        from_status=from_status, to_status=to_status, data=data,
    )  # fmt: skip
    event.save(force_insert=True)
    transaction.on_commit(lambda: publish(session_id), robust=True)
    return event


def audit_row(
    session_id: Any,
    kind: str,
    message: str = "",
    *,
    ticket: ExportTicket | None = None,
    actor: Any = None,
    from_status: str = "",
    to_status: str = "",
    data: dict[str, Any] | None = None,
) -> ExportEvent:
    """An unsaved audit row (:func:`record` saves one, :func:`record_many` several)."""
    return ExportEvent(
        session_id=session_id,
        ticket=ticket,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        message=message[:2000],
        data=data or {},
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )


def record_many(session_id: Any, events: list[ExportEvent]) -> None:
    """Several audit rows (from :func:`audit_row`) in one INSERT, and one hint after commit: a
    step that changes many tickets at once (a bulk chunk) is one change for the socket."""
    if events:
        ExportEvent.objects.bulk_create(events)
        transaction.on_commit(lambda: publish(session_id), robust=True)


def publish(session_id: Any) -> None:
    """A hint to the session's open sockets: "read the state again"."""
    live.publish(group_name(session_id), {"type": "export.changed"})


# --- settings, read per call ---------------------------------------------------------------------
def ticket_delay_seconds() -> float:
    return float(getattr(settings, "EXPORT_TICKET_DELAY_SECONDS", 1.5))


def stale_after() -> timedelta:
    return timedelta(minutes=float(getattr(settings, "EXPORT_STALE_MINUTES", 10)))


def max_tickets() -> int:
    return int(getattr(settings, "EXPORT_MAX_TICKETS", 500))


# --- dispatching the task --------------------------------------------------------------------------
Dispatcher = Callable[[str, str], None]


def send_to_worker(session_id: str, task_id: str) -> None:
    """Queues ``exports.run_export`` by name (the services never import the tasks module); the
    Celery task id is the session's ``export_task_id``. Through the registered task when the
    worker's app knows it, so ``CELERY_TASK_ALWAYS_EAGER`` runs it in place."""
    from celery import current_app

    task = current_app.tasks.get("exports.run_export")
    if task is None:
        current_app.send_task("exports.run_export", args=[session_id, task_id], task_id=task_id)
    else:
        task.apply_async(args=[session_id, task_id], task_id=task_id)


_dispatcher: Dispatcher = send_to_worker


def set_dispatcher(dispatcher: Dispatcher | None) -> None:
    """Tests run the export inline or record the call; ``None`` restores the worker."""
    global _dispatcher
    _dispatcher = dispatcher or send_to_worker


def dispatch_after_commit(session_id: Any, task_id: Any) -> None:
    sid, tid = str(session_id), str(task_id)
    transaction.on_commit(lambda: _dispatcher(sid, tid))


# --- starting -------------------------------------------------------------------------------------
@dataclass
class StartResult:
    session: ExportSession
    started: bool  # False: it was running already (the seed's ExportAlreadyRunningResponse)
    total_tickets: int = 0
    dependencies: int = 0


def estimated_minutes(tickets: int, dependencies: int) -> int:
    """The seed's estimate: tickets x the delay, plus the dependency links."""
    seconds = tickets * (ticket_delay_seconds() + 0.5) + dependencies * 0.5
    return max(1, math.ceil(seconds / 60))


def _locked(session_id: Any) -> ExportSession:
    return ExportSession.objects.select_for_update().get(pk=session_id)


def start_export(session_id: Any, actor: Any = None) -> StartResult:
    """Starts the export of a draft session (the seed's start SQL), or answers with the running one.

    Idempotent: a second call while it runs changes nothing and returns the running task.
    """
    with transaction.atomic():
        session = _locked(session_id)
        if session.status == Status.EXPORTING:
            return StartResult(session, started=False)
        if session.status == Status.COMPLETED:
            raise SessionNotExportable("This session has been exported already.")
        if session.status == Status.EXPORT_FAILED:
            raise SessionNotExportable(
                "This session's export failed: retry it (POST /api/jira/retry-failed/...)."
            )
        total = session.tickets.count()
        if total == 0:
            raise SessionNotExportable("The session has no tickets to export.")
        if total > max_tickets():
            raise SessionNotExportable(
                f"A session exports at most {max_tickets()} tickets; this one has {total}."
            )
        now = timezone.now()
        previous = session.status
        session.status = Status.EXPORTING
        session.current_stage = "jira_export"
        session.export_task_id = uuid.uuid4()
        session.export_started_at = now
        session.failed_at_ticket_order = None
        session.current_ticket_title = ""
        session.save()
        record(
            session, STARTED, f"Export to {session.jira_project_key} started.",
            actor=actor, from_status=previous, to_status=session.status,
            data={"task_id": str(session.export_task_id)},
        )  # fmt: skip
        dispatch_after_commit(session.pk, session.export_task_id)
        return StartResult(
            session, started=True, total_tickets=total,
            dependencies=TicketDependency.objects.filter(blocked__session=session).count(),
        )  # fmt: skip


# --- retrying -------------------------------------------------------------------------------------
def retries_used(session: ExportSession) -> int:
    return session.events.filter(kind=RETRIED).count()


@dataclass
class RetryResult:
    session: ExportSession
    retry_attempt: int
    remaining_retries: int
    resuming_from_ticket_order: int
    preserved_successful_tickets: int


def retry_export(session_id: Any, actor: Any = None) -> RetryResult:
    """Resumes a failed export at the ticket it failed on; created Jira issues are kept.

    409 while it runs, 422 for a session that did not fail or past the third retry.
    """
    with transaction.atomic():
        session = _locked(session_id)
        if session.status == Status.EXPORTING:
            raise ExportRunning("The export is running; retry once it has failed.")
        if session.status != Status.EXPORT_FAILED:
            raise SessionNotExportable("Only a failed export can be retried.")
        used = retries_used(session)
        if used >= ExportSession.MAX_RETRIES:
            first = session.first_error_at or session.export_failed_at
            raise RetriesExhausted(
                max_retries=ExportSession.MAX_RETRIES,
                used=used,
                first_error_at=first.isoformat().replace("+00:00", "Z") if first else None,
            )
        preserved = session.tickets.exclude(jira_ticket_key="").count()
        resume_from = session.failed_at_ticket_order or 0
        session.status = Status.EXPORTING
        session.current_stage = "jira_export"
        session.export_task_id = uuid.uuid4()
        session.export_started_at = timezone.now()
        session.current_ticket_title = ""
        session.save()
        record(
            session, RETRIED, f"Retry {used + 1} resumes at ticket #{resume_from}.",
            actor=actor, from_status=Status.EXPORT_FAILED, to_status=Status.EXPORTING,
            data={"task_id": str(session.export_task_id), "retry_attempt": used + 1,
                  "resuming_from_ticket_order": resume_from, "preserved": preserved},
        )  # fmt: skip
        dispatch_after_commit(session.pk, session.export_task_id)
        return RetryResult(
            session,
            retry_attempt=used + 1,
            remaining_retries=ExportSession.MAX_RETRIES - used - 1,
            resuming_from_ticket_order=resume_from,
            preserved_successful_tickets=preserved,
        )


# --- the running export's own writes -----------------------------------------------------------
def running(session_id: Any, task_id: Any):
    """The session's rows while ``task_id`` is its export: every write of the running export
    goes through this filter, so a stale task (retried, reaped) changes nothing."""
    return ExportSession.objects.filter(
        pk=session_id, status=Status.EXPORTING, export_task_id=task_id
    )


def heartbeat(session_id: Any, task_id: Any, **fields: Any) -> bool:
    """Marks progress (``updated_at``, which the reaper reads) and returns whether the export is
    still this task's."""
    return bool(running(session_id, task_id).update(updated_at=timezone.now(), **fields))


@dataclass
class ExportFailure:
    """Why an export stopped, in the seed's words: a category, a message and what to do."""

    category: str
    user_message: str
    recovery_actions: list[str] = field(default_factory=list)
    kind: str = "critical"  # auth | network | critical | validation | ticket | reaped

    def as_dict(self) -> dict[str, Any]:
        return {
            "error_category": self.category,
            "user_message": self.user_message,
            "recovery_actions": self.recovery_actions,
            "kind": self.kind,
        }


def fail_export(
    session_id: Any,
    task_id: Any,
    failure: ExportFailure,
    failed_at_ticket_order: int | None,
    *,
    now: datetime | None = None,
) -> bool:
    """The seed's failure SQL (status ``export_failed``, ``export_failed_at``,
    ``failed_at_ticket_order``, ``export_retry_count + 1``) with the category, message and
    recovery actions. False when the export was not this task's any more."""
    now = now or timezone.now()
    with transaction.atomic():
        session = running(session_id, task_id).select_for_update().first()
        if session is None:
            return False
        elapsed = (
            (now - session.export_started_at).total_seconds() if session.export_started_at else 0
        )
        ExportSession.objects.filter(pk=session.pk).update(
            status=Status.EXPORT_FAILED,
            export_failed_at=now,
            failed_at_ticket_order=failed_at_ticket_order,
            export_retry_count=F("export_retry_count") + 1,
            first_error_at=session.first_error_at or now,
            error_category=failure.category,
            error_message=failure.user_message,
            recovery_actions=failure.recovery_actions,
            processing_seconds=F("processing_seconds") + max(elapsed, 0.0),
            current_ticket_title="",
            updated_at=now,
        )
        record(
            session, FAILED if failure.kind != "reaped" else REAPED, failure.user_message,
            from_status=Status.EXPORTING, to_status=Status.EXPORT_FAILED,
            data={**failure.as_dict(), "failed_at_ticket_order": failed_at_ticket_order,
                  "task_id": str(task_id)},
        )  # fmt: skip
    return True


def complete_export(session_id: Any, task_id: Any, *, now: datetime | None = None) -> bool:
    """The seed's completion SQL: ``completed``, ``completed_at``, the task id cleared."""
    now = now or timezone.now()
    with transaction.atomic():
        session = running(session_id, task_id).select_for_update().first()
        if session is None:
            return False
        elapsed = (
            (now - session.export_started_at).total_seconds() if session.export_started_at else 0
        )
        ExportSession.objects.filter(pk=session.pk).update(
            current_stage="completed",
            status=Status.COMPLETED,
            completed_at=now,
            export_task_id=None,
            failed_at_ticket_order=None,
            error_category="",
            error_message="",
            recovery_actions=[],
            current_ticket_title="",
            processing_seconds=F("processing_seconds") + max(elapsed, 0.0),
            updated_at=now,
        )
        record(
            session, COMPLETED, "Export completed.",
            from_status=Status.EXPORTING, to_status=Status.COMPLETED,
            data={"task_id": str(task_id)},
        )  # fmt: skip
    return True


# --- the reaper -------------------------------------------------------------------------------------
REAPED_FAILURE = ExportFailure(
    Category.TEMPORARY,
    "The export stopped making progress (its worker was lost). Retry to resume where it stopped.",
    ["Retry the export: it resumes at the ticket it stopped on", "Check that the workers run"],
    kind="reaped",
)


def reap_stuck_exports(now: datetime | None = None) -> list[str]:
    """Fails exports that made no progress for ``EXPORT_STALE_MINUTES`` (a worker killed mid-export),
    as ``temporary`` with a retry available. Runs on the leader (beat); the conditional update in
    :func:`fail_export` is the claim, so two reapers never fail one export twice."""
    now = now or timezone.now()
    stuck = ExportSession.objects.filter(
        status=Status.EXPORTING, updated_at__lt=now - stale_after()
    ).values_list("pk", "export_task_id")
    reaped = []
    for session_id, task_id in stuck:
        failed_at = (
            ExportTicket.objects.filter(session_id=session_id, jira_ticket_key="")
            .order_by("order")
            .values_list("order", flat=True)
            .first()
        )
        if fail_export(session_id, task_id, REAPED_FAILURE, failed_at, now=now):
            reaped.append(str(session_id))
            logger.warning("exports.reaped", extra={"session": str(session_id)})
    return reaped
