"""Celery tasks of the itsm app: load by id, call one service, nothing else."""

from __future__ import annotations

from celery import shared_task

from itsm import outbox
from itsm.services import sla


@shared_task(name="itsm.deliver_outbox_message", ignore_result=True)
def deliver_outbox_message(message_id: int) -> str:
    return outbox.deliver(message_id)


@shared_task(name="itsm.sweep_outbox", ignore_result=True)
def sweep_outbox() -> dict[str, int]:
    return outbox.sweep()


@shared_task(name="itsm.check_slas", ignore_result=True)
def check_slas() -> dict:
    return sla.check_slas()
