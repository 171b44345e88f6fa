"""Celery tasks of the escalation app: load by id, call one service, nothing else."""

from __future__ import annotations

from celery import shared_task

from escalation.services import sla


@shared_task(name="escalation.sweep_due_slas", ignore_result=True, soft_time_limit=50)
def sweep_due_slas() -> int:
    return sla.sweep_due_slas()


@shared_task(name="escalation.refresh_trackers", ignore_result=True, soft_time_limit=50)
def refresh_trackers() -> int:
    return sla.refresh_from_trackers()
