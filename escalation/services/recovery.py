"""Recovery and retry (seed 004's ``attempt_auto_recovery`` and ``intelligent_retry``).

An escalation whose routing snapshot names a recovery action gets attempt 1 when it opens; each
attempt waits the seed's exponential backoff (``2**n * 60`` s: 60 s, 120 s, 240 s ...) after the
previous outcome. The leader's sweep (every minute) takes each due attempt with a conditional
UPDATE (``scheduled`` → ``running``), so two sweeps at once run it exactly once.

- ``database_probe``: connect to ``ESCALATION_DATABASE_PROBE_URL`` (5 s timeout) and ``SELECT 1``;
  success resolves the escalation as ``auto_recovered``. A probe that finds the database down
  confirms the infrastructure issue for the override service (``overrides.confirm_by_probe``).
- ``rerun_failed_jobs``: queue GitHub's "re-run failed jobs" through the outbox (once per attempt);
  the attempt succeeds when a later attempt of the job passes (``job_passed``) and fails when it
  fails again (``job_failed``). One that hears neither within ``ESCALATION_RERUN_TIMEOUT``
  seconds of being taken fails as timed out (``time_out_reruns``, run by the same sweep).

A failed attempt schedules the next one until ``ESCALATION_RECOVERY_MAX_ATTEMPTS``; past it the
scrum master is notified. Every step is on the escalation's timeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import psycopg
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from escalation.models import Escalation, FailureEvent, RecoveryAction, RecoveryAttempt
from escalation.services import audit, notifications, overrides, sla
from itsm import public
from portal.redaction import redact_text

logger = logging.getLogger("escalation.recovery")

PROBE_TIMEOUT_SECONDS = 5
SWEEP_BATCH = 200
RERUN_KIND = "github.rerun"
Status = RecoveryAttempt.Status


def max_attempts() -> int:
    return max(1, int(getattr(settings, "ESCALATION_RECOVERY_MAX_ATTEMPTS", 3)))


def rerun_timeout() -> timedelta:
    """How long a queued re-run may go without a report of the job's next attempt."""
    return timedelta(seconds=max(60, int(getattr(settings, "ESCALATION_RERUN_TIMEOUT", 1800))))


def backoff(attempt: int) -> timedelta:
    """The wait before ``attempt`` (1-based): the seed's ``2**retry_count * 60`` seconds."""
    return timedelta(seconds=2 ** (attempt - 1) * 60)


# --- scheduling ----------------------------------------------------------------------------------


def schedule_first(escalation: Escalation, failure: FailureEvent) -> RecoveryAttempt | None:
    """Attempt 1 of the escalation's recovery action, if its routing names one."""
    action = (escalation.routing or {}).get("recovery_action") or RecoveryAction.NONE
    if action == RecoveryAction.NONE:
        return None
    return _schedule(escalation, failure, action, 1, failure.created_at)


def _schedule(
    escalation: Escalation, failure: FailureEvent, action: str, number: int, after: datetime
) -> RecoveryAttempt:
    attempt = RecoveryAttempt.objects.create(
        escalation=escalation,
        failure=failure,
        action=action,
        attempt=number,
        scheduled_for=after + backoff(number),
    )
    audit.record(
        "recovery_scheduled",
        f"Recovery attempt {number}/{max_attempts()} ({attempt.get_action_display()}) scheduled "
        f"for {attempt.scheduled_for.isoformat(timespec='seconds')} "
        f"(backoff {int(backoff(number).total_seconds())} s)",
        escalation=escalation,
        failure=failure,
        data={
            "attempt": number,
            "action": action,
            "scheduled_for": attempt.scheduled_for.isoformat(),
        },
    )
    return attempt


# --- the sweep -----------------------------------------------------------------------------------

Dispatcher = Callable[[int], None]
_dispatcher: Dispatcher | None = None


def set_dispatcher(dispatcher: Dispatcher | None) -> None:
    """``escalation.tasks`` hands claimed attempts to the worker; unset, they run inline."""
    global _dispatcher
    _dispatcher = dispatcher


def claim(attempt_id: int, now: datetime) -> bool:
    """Takes a due attempt: the conditional UPDATE is the claim, so it runs exactly once."""
    return bool(
        RecoveryAttempt.objects.filter(
            pk=attempt_id, status=Status.SCHEDULED, scheduled_for__lte=now
        ).update(status=Status.RUNNING, started_at=now)
    )


def run_due(now: datetime | None = None) -> list[int]:
    """Fails the re-runs that timed out (``time_out_reruns``), then claims the due attempts and
    runs each (in the worker when a dispatcher is set). Returns the ids claimed by this call."""
    now = now or timezone.now()
    time_out_reruns(now)
    due = list(
        RecoveryAttempt.objects.filter(status=Status.SCHEDULED, scheduled_for__lte=now)
        .order_by("scheduled_for", "id")
        .values_list("id", flat=True)[:SWEEP_BATCH]
    )
    claimed = [attempt_id for attempt_id in due if claim(attempt_id, now)]
    for attempt_id in claimed:
        if _dispatcher is not None:
            _dispatcher(attempt_id)
        else:
            execute(attempt_id)
    return claimed


def time_out_reruns(now: datetime | None = None) -> list[int]:
    """Re-run attempts taken more than ``ESCALATION_RERUN_TIMEOUT`` ago that heard neither a pass
    nor a failure of the job's next attempt: each fails as timed out, then follows the failed
    path (the next attempt after its backoff, or the scrum master past the maximum). ``fail``'s
    conditional UPDATE (``running`` → ``failed``) is the claim: a report arriving at the same
    moment, or a second sweep, finds it taken. Returns the ids this call failed."""
    now = now or timezone.now()
    timeout = rerun_timeout()
    stale = RecoveryAttempt.objects.select_related("escalation", "failure").filter(
        status=Status.RUNNING,
        action=RecoveryAction.RERUN_FAILED_JOBS,
        started_at__lte=now - timeout,
    )
    timed_out = []
    for attempt in stale.order_by("started_at", "id")[:SWEEP_BATCH]:
        minutes = int(timeout.total_seconds() // 60)
        if attempt.detail:
            detail = f"timed out: no report of the re-run within {minutes} min ({attempt.detail})"
        else:
            detail = f"timed out: the re-run was not queued within {minutes} min"
        if attempt.escalation.status != Escalation.Status.OPEN:
            # Resolved by hand meanwhile: nothing is owed, the attempt is not a failure.
            if _finish(attempt, Status.CANCELLED, "the escalation was resolved meanwhile", now):
                timed_out.append(attempt.pk)
        elif fail(attempt, detail, now=now):
            timed_out.append(attempt.pk)
    return timed_out


def execute(attempt_id: int, now: datetime | None = None) -> str:
    """Runs one claimed attempt's action; returns its status afterwards."""
    attempt = RecoveryAttempt.objects.select_related("escalation", "failure").get(pk=attempt_id)
    if attempt.status != Status.RUNNING:
        return attempt.status
    escalation = attempt.escalation
    if escalation.status != Escalation.Status.OPEN:
        _finish(attempt, Status.CANCELLED, "the escalation was resolved before it ran", now)
        return attempt.status
    if attempt.action == RecoveryAction.DATABASE_PROBE:
        ok, detail = probe_database()
        if ok:
            with transaction.atomic():
                _finish(attempt, Status.SUCCEEDED, detail, now)
                sla.resolve(escalation, "auto_recovered", now=now)
        else:
            if detail != NO_PROBE:  # the probe ran and found the database down
                overrides.confirm_by_probe(escalation, detail)
            fail(attempt, detail, now=now, retry=detail != NO_PROBE)
        return attempt.status
    if attempt.action == RecoveryAction.RERUN_FAILED_JOBS:
        return _rerun(attempt, now)
    fail(attempt, f"unknown recovery action {attempt.action!r}", now=now, retry=False)
    return attempt.status


# --- the actions -----------------------------------------------------------------------------------

NO_PROBE = "no probe configured"


def probe_database(url: str | None = None) -> tuple[bool, str]:
    """The configured health probe: a connection within 5 s that answers ``SELECT 1``."""
    url = url if url is not None else getattr(settings, "ESCALATION_DATABASE_PROBE_URL", "")
    if not url:
        return False, NO_PROBE
    try:
        with psycopg.connect(url, connect_timeout=PROBE_TIMEOUT_SECONDS) as conn:
            row = conn.execute("SELECT 1").fetchone()
    except psycopg.Error as exc:
        # The driver's message names the host, never the password; redacted all the same.
        return False, redact_text(f"probe failed: {str(exc).strip()}")[:400]
    if row != (1,):
        return False, f"probe answered {row!r}"
    return True, "database answered SELECT 1"


def github_run(failure: FailureEvent) -> tuple[str, str, str] | None:
    owner, _, repo = failure.repository.partition("/")
    if failure.source != FailureEvent.Source.GITHUB or not owner or not repo:
        return None
    if not failure.run_id.isdigit():
        return None
    return owner, repo, failure.run_id


def _rerun(attempt: RecoveryAttempt, now: datetime | None) -> str:
    run = github_run(attempt.failure)
    if run is None:
        fail(attempt, "not a GitHub Actions run: nothing to re-run", now=now, retry=False)
        return attempt.status
    owner, repo, run_id = run
    with transaction.atomic():
        # One re-run per attempt, whatever the redeliveries of this task: the first run marks it
        # queued (a conditional UPDATE); the outbox's key covers the retries of the delivery.
        queued = RecoveryAttempt.objects.filter(
            pk=attempt.pk, status=Status.RUNNING, detail=""
        ).update(detail=f"re-run of run {run_id} queued")
        if not queued:
            return Status.RUNNING
        public.enqueue(
            RERUN_KIND,
            "github",
            {"owner": owner, "repo": repo, "run_id": run_id},
            idempotency_key=f"esc:{attempt.escalation_id}:recovery:{attempt.attempt}:rerun",
        )
        audit.record(
            "recovery_started",
            f"Recovery attempt {attempt.attempt}: re-run of the failed jobs of run {run_id} "
            f"in {owner}/{repo} queued",
            escalation=attempt.escalation,
            failure=attempt.failure,
            data={"attempt": attempt.attempt, "run_id": run_id},
        )
    return Status.RUNNING


# --- outcomes ----------------------------------------------------------------------------------


def _finish(attempt: RecoveryAttempt, status: str, detail: str, now: datetime | None) -> bool:
    now = now or timezone.now()
    changed = RecoveryAttempt.objects.filter(
        pk=attempt.pk, status__in=[Status.RUNNING, Status.SCHEDULED]
    ).update(status=status, detail=detail[:500], finished_at=now)
    if not changed:
        return False
    attempt.status, attempt.detail, attempt.finished_at = status, detail[:500], now
    audit.record(
        f"recovery_{status}",
        f"Recovery attempt {attempt.attempt} ({attempt.get_action_display()}) {status}: {detail}",
        escalation=attempt.escalation,
        failure=attempt.failure,
        data={"attempt": attempt.attempt, "action": attempt.action, "status": status},
    )
    return True


def fail(
    attempt: RecoveryAttempt,
    detail: str,
    *,
    now: datetime | None = None,
    retry: bool = True,
    failure: FailureEvent | None = None,
) -> bool:
    """The attempt failed: the next one after its backoff, or past the maximum (or when a retry
    cannot help) the scrum master is told. False when it had finished already."""
    now = now or timezone.now()
    with transaction.atomic():
        if not _finish(attempt, Status.FAILED, detail, now):
            return False
        escalation = attempt.escalation
        if escalation.status != Escalation.Status.OPEN:
            return True
        if retry and attempt.attempt < max_attempts():
            _schedule(
                escalation, failure or attempt.failure, attempt.action, attempt.attempt + 1, now
            )
            return True
        escalate(attempt, detail)
    return True


def escalate(attempt: RecoveryAttempt, detail: str) -> None:
    escalation = attempt.escalation
    headline = (
        f"Auto-recovery failed after {attempt.attempt} attempt(s) "
        f"({attempt.get_action_display()}): {detail}"
    )
    notifications.notify_scrum_master(
        escalation, headline, kind="recovery_failed", key=f"esc:{escalation.pk}:recovery_failed"
    )
    audit.record(
        "recovery_escalated",
        headline,
        escalation=escalation,
        failure=attempt.failure,
        data={"attempts": attempt.attempt, "action": attempt.action},
    )
    logger.warning(
        "escalation.recovery_failed: escalation %s after %s attempt(s)",
        escalation.pk, attempt.attempt,
        extra={"event": "escalation.recovery_failed", "escalation": escalation.pk},
    )  # fmt: skip


def job_passed(
    marked: Iterable[FailureEvent], run_attempt: int, *, now: datetime | None = None
) -> int:
    """Hook of ``ingest.record_job_passed``: the re-runs of the failures found flaky worked."""
    count = 0
    attempts = RecoveryAttempt.objects.select_related("escalation", "failure").filter(
        status=Status.RUNNING,
        action=RecoveryAction.RERUN_FAILED_JOBS,
        failure__in=[failure.pk for failure in marked],
    )
    for attempt in attempts:
        detail = f"attempt {run_attempt} of {attempt.failure.job} passed"
        count += _finish(attempt, Status.SUCCEEDED, detail, now)
    return count


def job_failed(failure: FailureEvent, *, now: datetime | None = None) -> int:
    """Hook of ``ingest.report_failure``: a later attempt of a re-run job failed again."""
    if failure.run_attempt <= 1:
        return 0  # a first attempt re-runs nothing: no query on the common path
    count = 0
    attempts = RecoveryAttempt.objects.select_related("escalation", "failure").filter(
        status=Status.RUNNING,
        action=RecoveryAction.RERUN_FAILED_JOBS,
        failure__repository=failure.repository,
        failure__job=failure.job,
        failure__run_id=failure.run_id,
        failure__run_attempt__lt=failure.run_attempt,
    )
    for attempt in attempts:
        fail(
            attempt,
            f"attempt {failure.run_attempt} of {failure.job} failed again",
            now=now or failure.created_at,
            failure=failure,
        )
        count += 1
    return count
