"""Celery tasks of the escalation app: load by id, call one service, nothing else."""

from __future__ import annotations

from celery import shared_task

from escalation.services import (
    daily_reports,
    fulfillment,
    jobs,
    overrides,
    recovery,
    sla,
    webhooks,
)


@shared_task(name="escalation.sweep_due_slas", ignore_result=True, soft_time_limit=50)
def sweep_due_slas() -> int:
    return sla.sweep_due_slas()


@shared_task(name="escalation.escalate_sla_misses", ignore_result=True)
def escalate_sla_misses(record_ids: list[int]) -> int:
    return sla.escalate_misses(record_ids)


@shared_task(name="escalation.refresh_trackers", ignore_result=True, soft_time_limit=50)
def refresh_trackers() -> int:
    return sla.refresh_from_trackers()


@shared_task(name="escalation.escalate_waiting_overrides", ignore_result=True, soft_time_limit=50)
def escalate_waiting_overrides() -> int:
    return overrides.escalate_waiting_overrides()


@shared_task(name="escalation.run_due_recoveries", ignore_result=True, soft_time_limit=50)
def run_due_recoveries() -> int:
    return len(recovery.run_due())


# A database probe may wait its 5 s timeout: each attempt runs in its own task.
@shared_task(name="escalation.run_recovery_attempt", ignore_result=True, soft_time_limit=60)
def run_recovery_attempt(attempt_id: int) -> str:
    return recovery.execute(attempt_id)


def queue_recovery(attempt_id: int) -> None:
    run_recovery_attempt.delay(attempt_id)


recovery.set_dispatcher(queue_recovery)


def queue_misses(record_ids: list[int]) -> None:
    escalate_sla_misses.delay(record_ids)


sla.set_miss_dispatcher(queue_misses)


@shared_task(
    bind=True,
    name="escalation.report_github_job",
    ignore_result=True,
    max_retries=webhooks.LOG_FETCH_RETRIES,
    # Two GitHub calls (the log's redirect, then the file), each bounded by the ITSM timeouts.
    soft_time_limit=180,
)
def report_github_job(self, job: dict) -> str:
    """A failed GitHub job from the webhook: its log fetched, then the failure reported. Retried
    with back-off while GitHub has no log to give; the last try reports it without one."""
    final_attempt = self.request.retries >= self.max_retries
    try:
        return webhooks.report_github_job(job, final_attempt=final_attempt)
    except webhooks.LogNotReady as exc:
        delay = webhooks.log_fetch_backoff(self.request.retries)
        raise self.retry(exc=exc, countdown=delay) from exc


def queue_github_job(job: dict) -> None:
    report_github_job.delay(job)


webhooks.set_dispatcher(queue_github_job)


@shared_task(name="escalation.compute_daily_reports", ignore_result=True, soft_time_limit=120)
def compute_daily_reports() -> list[str]:
    return [day.isoformat() for day in daily_reports.compute_due_reports()]


# Background jobs with a Jira ticket (seed 002): acknowledged after they finish, so a lost worker's
# job is delivered again; the claim in services.jobs makes the redelivery run nothing twice.
@shared_task(
    name="escalation.run_background_job",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=jobs.TIME_LIMIT_SECONDS,
    time_limit=jobs.TIME_LIMIT_SECONDS + 60,
)
def run_background_job(job_id: int) -> str:
    return jobs.run_job(job_id)


@shared_task(name="escalation.sweep_background_jobs", ignore_result=True, soft_time_limit=50)
def sweep_background_jobs() -> dict[str, int]:
    return jobs.sweep_waiting_jobs()


def queue_job(job_id: int) -> None:
    run_background_job.delay(job_id)


jobs.set_dispatcher(queue_job)


# Catalog requests (seed 000): acknowledged after they finish, so a lost worker's request is
# delivered again; each component's claim in services.fulfillment keeps it from running twice.
@shared_task(
    name="escalation.fulfill_catalog_request",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=600,
    time_limit=660,
)
def fulfill_catalog_request(request_id: str) -> str:
    return fulfillment.fulfill(request_id)


@shared_task(name="escalation.sweep_stalled_requests", ignore_result=True, soft_time_limit=50)
def sweep_stalled_requests() -> dict[str, int]:
    return fulfillment.sweep_stalled_requests()


def queue_catalog_request(request_id: str) -> None:
    fulfill_catalog_request.delay(request_id)


fulfillment.set_dispatcher(queue_catalog_request)
