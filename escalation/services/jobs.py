"""Background jobs that have a Jira ticket, and what happens when one fails (seed 002).

A job kind is a function registered with ``@background_job("name")``; it receives a
:class:`JobContext` (its parameters: the ticket description's ``Key: value`` lines read with the
Jira client's ``parse_description``, overridden by the job's own) and returns a small dict kept as
the job's result, or raises.

:func:`run_job_with_failure_handling` runs one job exactly once:

1. The claim: a conditional UPDATE (``pending`` → ``running``); a second worker, or a redelivered
   task, finds the job taken and leaves it alone.
2. The ticket is read once (its description and links). A job whose ticket is blocked by open
   issues (``get_blockers``, each blocker's status read) is not started: it becomes ``blocked``
   and says which issues block it; the sweep looks again every few minutes. A Jira that does not
   answer postpones the job (back to ``pending``, looked at again by the sweep); a ticket Jira
   refuses to show fails the job without touching the ticket.
3. The job's function runs. On failure: the error is logged, the failed state is saved first in
   its own transaction (always, whatever Jira does), then, in a second one, a comment with the
   failure's details (job, error, time, attempt) and a transition to the first available of
   ``ESCALATION_JOB_FAILURE_STATES`` are queued through the outbox, once per failure (the
   outbox's idempotency keys and ``failure_reported_attempt``). A Jira outage loses nothing: the
   outbox delivers when Jira answers again; if even queuing failed, the sweep queues it.

The sweep (:func:`sweep_waiting_jobs`, every minute on the leader) re-queues jobs that wait
(blocked or postponed), fails jobs whose worker was lost, and reports failures not queued yet.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from escalation.models import BackgroundJob, JobEvent
from escalation.services import daily_reports
from itsm import public
from portal.redaction import redact_text

logger = logging.getLogger("escalation.jobs")

Status = BackgroundJob.Status
COMMENT_KIND = "jira.comment"
TRANSITION_KIND = "jira.transition"
# The task's time limit (SoftTimeLimitExceeded fails the job, in the prefork pool; the threads
# pool enforces none). A job still "running" ESCALATION_JOB_LOST_AFTER_SECONDS (default: the
# limit plus 5 min) after its claim or start lost its worker, and the sweep fails it.
TIME_LIMIT_SECONDS = 30 * 60
SWEEP_BATCH = 200
MAX_ERROR_CHARS = 1000


# --- the registry of job kinds ---------------------------------------------------------------------


@dataclass(frozen=True)
class JobContext:
    """What a job's function is given."""

    job_id: int
    name: str
    kind: str
    jira_key: str
    attempt: int
    parameters: dict[str, Any]  # the ticket's description fields, then the job's own on top
    ticket_fields: dict[str, Any] = field(default_factory=dict)  # the description as parsed


JobFunction = Callable[[JobContext], dict[str, Any] | None]


@dataclass(frozen=True)
class JobKind:
    name: str
    function: JobFunction
    description: str


KINDS: dict[str, JobKind] = {}


def background_job(name: str, *, description: str = "") -> Callable[[JobFunction], JobFunction]:
    """Registers ``function`` as the job kind ``name``; a second kind with the same name is a bug."""

    def register(function: JobFunction) -> JobFunction:
        existing = KINDS.get(name)
        if existing is not None and existing.function is not function:
            raise ValueError(f"job kind {name!r} is already registered")
        text = description or (function.__doc__ or "").strip().split("\n")[0]
        KINDS[name] = JobKind(name, function, text)
        return function

    return register


def job_kinds() -> list[JobKind]:
    return [KINDS[name] for name in sorted(KINDS)]


@background_job("escalation.daily_reports", description="Compute the daily reports that are due")
def compute_daily_reports(context: JobContext) -> dict[str, Any]:
    return {"days": [day.isoformat() for day in daily_reports.compute_due_reports()]}


# --- settings ----------------------------------------------------------------------------------------


def failure_states() -> list[str]:
    """The ticket states a failed job's ticket is moved to: the first its workflow allows."""
    states = getattr(settings, "ESCALATION_JOB_FAILURE_STATES", None) or ["Failed", "Blocked"]
    return [str(state) for state in states]


def lost_after() -> timedelta:
    """How long a job may stay running before the sweep counts its worker as lost."""
    default = TIME_LIMIT_SECONDS + 5 * 60
    return timedelta(seconds=int(getattr(settings, "ESCALATION_JOB_LOST_AFTER_SECONDS", default)))


def recheck_after() -> timedelta:
    """How long a blocked or postponed job waits before the sweep looks at it again."""
    return timedelta(seconds=max(30, int(getattr(settings, "ESCALATION_JOB_RECHECK_SECONDS", 300))))


# --- making and queuing jobs ---------------------------------------------------------------------

Dispatcher = Callable[[int], None]
_dispatcher: Dispatcher | None = None


def set_dispatcher(dispatcher: Dispatcher | None) -> None:
    """``escalation.tasks`` hands queued jobs to the worker; unset, they run here after commit."""
    global _dispatcher
    _dispatcher = dispatcher


def _dispatch_on_commit(job_id: int) -> None:
    def dispatch() -> None:
        if _dispatcher is not None:
            _dispatcher(job_id)
        else:
            run_job(job_id)

    # robust: a broker outage must not undo the change; the sweep queues the job again.
    transaction.on_commit(dispatch, robust=True)


def record(
    job: BackgroundJob, kind: str, message: str, *, actor: Any = None, data: dict | None = None
) -> JobEvent:
    """The job's timeline row (the one entry point, so the trail cannot be skipped)."""
    return JobEvent.objects.create(
        job=job,
        kind=kind,
        message=message[:500],
        data=data or {},
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )


def create_job(
    name: str,
    kind: str,
    jira_key: str = "",
    parameters: dict[str, Any] | None = None,
    *,
    actor: Any = None,
) -> BackgroundJob:
    """A new pending job, queued for the worker after commit (a pending job always runs: if the
    queue loses it, the sweep queues it again)."""
    if kind not in KINDS:
        raise ValueError(f"no job kind {kind!r}")
    with transaction.atomic():
        job = BackgroundJob.objects.create(
            name=name,
            kind=kind,
            jira_key=jira_key,
            parameters=parameters or {},
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        record(job, "created", f"Job {name} ({kind}) created", actor=actor)
        _dispatch_on_commit(job.pk)
    return job


def request_run(job_ids: Iterable[int], *, actor: Any = None) -> tuple[list[int], list[int]]:
    """An operator's "Run now": every selected job that is not running becomes pending and is
    queued after commit. Returns (queued ids, refused ids: running ones)."""
    queued, refused = [], []
    now = timezone.now()
    with transaction.atomic():
        for job in BackgroundJob.objects.filter(pk__in=list(job_ids)).order_by("id"):
            changed = (
                BackgroundJob.objects.filter(pk=job.pk)
                .exclude(status=Status.RUNNING)
                .update(status=Status.PENDING, detail="Queued to run now", updated_at=now)
            )
            if not changed:
                refused.append(job.pk)
                continue
            record(job, "run_requested", f"Run now asked (was {job.status})", actor=actor)
            _dispatch_on_commit(job.pk)
            queued.append(job.pk)
    return queued, refused


# --- running -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobOutcome:
    status: str  # the job's status afterwards, or "skipped" when this call did not run it
    message: str


class TicketUnreadable(Exception):
    """Jira answered, but refused the job's ticket (unknown key, no permission)."""


@dataclass(frozen=True)
class TicketCheck:
    open_blockers: list[str]
    fields: dict[str, Any]


def check_ticket(key: str) -> TicketCheck:
    """Reads the ticket once (description and links), then the status of each blocker.

    Raises ``RetryableError``/``NotConfigured`` when Jira cannot be asked now, and
    :class:`TicketUnreadable` when it answers no."""
    try:
        with public.client_for("jira") as client:
            issue = client.get_issue(key, ["description", "issuelinks"])
            fields = client.parse_description(issue)
            open_blockers = [
                blocker
                for blocker in client.get_blockers(issue)
                if not client.read_status(blocker).resolved
            ]
    except (public.RetryableError, public.NotConfigured):
        raise
    except public.ItsmError as exc:
        raise TicketUnreadable(exc.message) from exc
    return TicketCheck(open_blockers, fields)


def claim(job_id: int, now: datetime | None = None) -> bool:
    """Takes a pending job: the conditional UPDATE is the claim, so one caller runs it."""
    now = now or timezone.now()
    return bool(
        BackgroundJob.objects.filter(pk=job_id, status=Status.PENDING).update(
            status=Status.RUNNING, updated_at=now, detail="Checking its ticket"
        )
    )


def run_job(job_id: int) -> str:
    """The worker's entry point (the task): runs the job if it is pending. A redelivery finds it
    running or finished and runs nothing, but reports a failure still unreported and fails a
    job whose worker was lost. Returns the job's status afterwards."""
    job = BackgroundJob.objects.filter(pk=job_id).first()
    if job is None:
        return "missing"
    if job.status == Status.FAILED:
        report_failure(job)
        return job.status
    if job.status == Status.RUNNING and job.updated_at <= timezone.now() - lost_after():
        fail_lost(job)
        return Status.FAILED
    if job.status != Status.PENDING:
        return job.status
    outcome = run_job_with_failure_handling(job)
    if outcome.status == "skipped":  # taken by another worker meanwhile
        job.refresh_from_db()
        return job.status
    return outcome.status


def run_job_with_failure_handling(job: BackgroundJob) -> JobOutcome:
    """Runs ``job`` once, as the module's docstring says; the outcome says what happened."""
    if not claim(job.pk):
        job.refresh_from_db()
        return JobOutcome("skipped", f"Job #{job.pk} is {job.status}: not started again")
    job.refresh_from_db()
    fields: dict[str, Any] = {}
    if job.jira_key:
        try:
            check = check_ticket(job.jira_key)
        except (public.RetryableError, public.NotConfigured) as exc:
            return _postpone(job, exc)
        except Exception as exc:  # Jira refused the ticket, or a bug: the job fails, alone
            return _fail(job, error_text(exc), started=False, report=False)
        if check.open_blockers:
            return _block(job, check.open_blockers)
        fields = check.fields

    now = timezone.now()
    started_run = BackgroundJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        attempts=F("attempts") + 1,
        started_at=now,
        finished_at=None,
        detail="Running",
        updated_at=now,
    )
    job.refresh_from_db()
    if not started_run:  # declared lost while its ticket was read: not started after all
        return JobOutcome("skipped", f"Job #{job.pk} is {job.status}: not started")
    record(job, "started", f"Attempt {job.attempts} started", data={"attempt": job.attempts})
    kind = KINDS.get(job.kind)
    context = JobContext(
        job_id=job.pk,
        name=job.name,
        kind=job.kind,
        jira_key=job.jira_key,
        attempt=job.attempts,
        parameters={**fields, **(job.parameters or {})},
        ticket_fields=fields,
    )
    started = time.monotonic()
    try:
        if kind is None:
            raise LookupError(f"no job kind {job.kind!r} is registered")
        result = kind.function(context) or {}
        if not isinstance(result, dict):
            result = {"value": result}
        json.dumps(result)  # a result the database cannot store fails the job here, not later
    except Exception as exc:  # the job's own failure, whatever it is
        logger.exception(
            "escalation.jobs.failed: job %s (%s) attempt %s",
            job.pk, job.kind, job.attempts,
            extra={"event": "escalation.jobs.failed", "job_id": job.pk, "jira_key": job.jira_key},
        )  # fmt: skip
        return _fail(job, error_text(exc))
    seconds = time.monotonic() - started
    now = timezone.now()
    with transaction.atomic():
        if not _finish(
            job,
            status=Status.SUCCEEDED,
            finished_at=now,
            result=result,
            last_error="",
            detail=f"Succeeded in {seconds:.1f} s",
            updated_at=now,
        ):
            return _late(job, f"Succeeded in {seconds:.1f} s")
        record(job, "succeeded", f"Attempt {job.attempts} succeeded in {seconds:.1f} s")
    logger.info(
        "escalation.jobs.succeeded: job %s (%s) attempt %s",
        job.pk, job.kind, job.attempts,
        extra={"event": "escalation.jobs.succeeded", "job_id": job.pk},
    )  # fmt: skip
    return JobOutcome(Status.SUCCEEDED, f"Job #{job.pk} succeeded")


def _finish(job: BackgroundJob, **changes: Any) -> bool:
    """The outcome of this run, written only while the job is still this run's (running, same
    attempt): a run that outlived :func:`lost_after` was failed as lost meanwhile."""
    return bool(
        BackgroundJob.objects.filter(
            pk=job.pk, status=Status.RUNNING, attempts=job.attempts
        ).update(**changes)
    )


def _late(job: BackgroundJob, outcome: str) -> JobOutcome:
    """A run that ended after the sweep declared it lost: its outcome goes on the timeline only."""
    record(
        job, "late_outcome", f"Attempt {job.attempts} ended after it was declared lost: {outcome}"
    )
    logger.warning(
        "escalation.jobs.late_outcome: job %s attempt %s: %s", job.pk, job.attempts, outcome,
        extra={"event": "escalation.jobs.late_outcome", "job_id": job.pk},
    )  # fmt: skip
    job.refresh_from_db()
    return JobOutcome(job.status, outcome)


def error_text(exc: BaseException) -> str:
    reason = str(exc).strip()
    text = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
    return redact_text(text)[:MAX_ERROR_CHARS]


def _postpone(job: BackgroundJob, exc: Exception) -> JobOutcome:
    minutes = max(1, int(recheck_after().total_seconds() // 60))
    detail = (
        f"Not started: Jira did not answer ({error_text(exc)}); tried again within {minutes} min"
    )
    with transaction.atomic():
        BackgroundJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            status=Status.PENDING, detail=detail[:500], updated_at=timezone.now()
        )
        record(job, "postponed", detail)
    logger.warning(
        "escalation.jobs.postponed: job %s: %s", job.pk, detail,
        extra={"event": "escalation.jobs.postponed", "job_id": job.pk},
    )  # fmt: skip
    return JobOutcome(Status.PENDING, detail)


def _block(job: BackgroundJob, blockers: list[str]) -> JobOutcome:
    names = ", ".join(blockers)
    detail = f"Not started: {job.jira_key} is blocked by open issues {names}"
    with transaction.atomic():
        BackgroundJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            status=Status.BLOCKED, detail=detail[:500], updated_at=timezone.now()
        )
        record(job, "blocked", detail, data={"blockers": blockers})
    logger.warning(
        "escalation.jobs.blocked: job %s: %s", job.pk, detail,
        extra={"event": "escalation.jobs.blocked", "job_id": job.pk, "blockers": blockers},
    )  # fmt: skip
    return JobOutcome(Status.BLOCKED, detail)


def _fail(
    job: BackgroundJob, error: str, *, started: bool = True, report: bool = True
) -> JobOutcome:
    """Saves the failed state first, in its own transaction, then queues the ticket's update.
    Queuing may fail (the database briefly gone): the failure stays saved and the sweep reports
    it later."""
    now = timezone.now()
    attempt_text = f"attempt {job.attempts}" if started else "before it started"
    detail = f"Failed ({attempt_text}): {error}"
    with transaction.atomic():
        if not _finish(
            job,
            status=Status.FAILED,
            last_error=error,
            detail=detail[:500],
            failed_at=now,
            finished_at=now,
            updated_at=now,
            # Nothing to say on a ticket Jira refused: counted as reported.
            **({} if report else {"failure_reported_attempt": job.attempts}),
        ):
            return _late(job, detail)
        record(job, "failed", detail, data={"attempt": job.attempts, "error": error})
    job.refresh_from_db()
    if report:
        try:
            report_failure(job)
        except Exception:  # the failed state is saved; the sweep queues the report again
            logger.exception(
                "escalation.jobs.report_not_queued: job %s", job.pk,
                extra={"event": "escalation.jobs.report_not_queued", "job_id": job.pk},
            )  # fmt: skip
    return JobOutcome(Status.FAILED, detail)


def failure_comment(job: BackgroundJob, states: list[str]) -> str:
    """The comment on the ticket: ``Key: value`` lines, so ``parse_description`` reads it back."""
    failed_at = job.failed_at or timezone.now()
    link = f"{settings.PORTAL_BASE_URL}/admin/escalation/backgroundjob/{job.pk}/change/"
    return "\n".join(
        [
            f"Background job failed: {job.name}",
            f"Job: {job.name} (#{job.pk}, kind {job.kind})",
            f"Attempt: {job.attempts}",
            f"Failed at: {failed_at.astimezone(UTC).isoformat(timespec='seconds')}",
            f"Error: {job.last_error or 'unknown'}",
            f"Moved to the first available of: {', '.join(states)}",
            f"Details: {link}",
        ]
    )


def report_failure(job: BackgroundJob) -> bool:
    """Queues the comment and the transition for the job's latest failure, once: the conditional
    UPDATE of ``failure_reported_attempt`` and the outbox keys make a repeat do nothing. Returns
    whether this call queued them."""
    if job.status != Status.FAILED or job.failure_reported_attempt >= job.attempts:
        return False
    if not job.jira_key:
        BackgroundJob.objects.filter(pk=job.pk).update(failure_reported_attempt=job.attempts)
        return False
    states = failure_states()
    with transaction.atomic():
        taken = BackgroundJob.objects.filter(
            pk=job.pk, status=Status.FAILED, failure_reported_attempt__lt=job.attempts
        ).update(failure_reported_attempt=job.attempts)
        if not taken:
            return False
        prefix = f"escalation:job:{job.pk}:{job.attempts}"
        public.enqueue(
            COMMENT_KIND,
            "jira",
            {"key": job.jira_key, "body": failure_comment(job, states)},
            idempotency_key=f"{prefix}:comment",
        )
        public.enqueue(
            TRANSITION_KIND,
            "jira",
            {"key": job.jira_key, "preferred": states},
            idempotency_key=f"{prefix}:transition",
        )
        record(
            job,
            "failure_reported",
            f"Comment and transition to {' / '.join(states)} queued for {job.jira_key}",
            data={"attempt": job.attempts, "states": states},
        )
    job.failure_reported_attempt = job.attempts
    return True


def fail_lost(job: BackgroundJob) -> bool:
    """A job left running past its time limit: its worker is gone. Failed (not run again) and
    reported; the conditional UPDATE makes a second sweep or a redelivery do nothing."""
    now = timezone.now()
    minutes = int(lost_after().total_seconds() // 60)
    error = f"WorkerLost: no outcome within {minutes} min of its start"
    with transaction.atomic():
        changed = BackgroundJob.objects.filter(
            pk=job.pk, status=Status.RUNNING, updated_at__lte=now - lost_after()
        ).update(
            status=Status.FAILED,
            last_error=error,
            detail=f"Failed (attempt {job.attempts}): {error}",
            failed_at=now,
            finished_at=now,
            updated_at=now,
        )
        if not changed:
            return False
        record(job, "failed", error, data={"attempt": job.attempts, "error": error})
    job.refresh_from_db()
    report_failure(job)
    return True


# --- the sweep -----------------------------------------------------------------------------------


def sweep_waiting_jobs(now: datetime | None = None) -> dict[str, int]:
    """The leader's minute job: re-queues blocked and postponed jobs whose wait is over, fails
    jobs whose worker was lost, and queues failure reports that were not queued."""
    now = now or timezone.now()
    counts = {"requeued": 0, "lost": 0, "reported": 0}
    waiting = BackgroundJob.objects.filter(
        status__in=[Status.PENDING, Status.BLOCKED], updated_at__lte=now - recheck_after()
    ).order_by("updated_at", "id")
    for job in waiting[:SWEEP_BATCH]:
        with transaction.atomic():
            taken = BackgroundJob.objects.filter(
                pk=job.pk, status=job.status, updated_at=job.updated_at
            ).update(status=Status.PENDING, updated_at=now)
            if taken:
                if job.status == Status.BLOCKED:
                    record(job, "recheck", "Its ticket's blockers are checked again")
                _dispatch_on_commit(job.pk)
                counts["requeued"] += 1
    lost = BackgroundJob.objects.filter(status=Status.RUNNING, updated_at__lte=now - lost_after())
    for job in lost.order_by("updated_at", "id")[:SWEEP_BATCH]:
        counts["lost"] += fail_lost(job)
    unreported = BackgroundJob.objects.filter(
        status=Status.FAILED, failure_reported_attempt__lt=F("attempts")
    ).exclude(jira_key="")
    for job in unreported.order_by("failed_at", "id")[:SWEEP_BATCH]:
        counts["reported"] += report_failure(job)
    return counts
