"""Celery tasks of the itsm app: load by id, call one service, nothing else.

Importing this module registers the delivery task as the outbox's dispatcher.
"""

from __future__ import annotations

from celery import shared_task

from itsm import outbox
from itsm.services import sla

SWEEP_TIME_LIMIT = 60  # a sweep only claims and queues; far below the global task limit


@shared_task(name="itsm.deliver_outbox_message", ignore_result=True)
def deliver_outbox_message(message_id: int, token: str | None = None) -> str:
    return outbox.deliver(message_id, token)


@shared_task(
    name="itsm.sweep_outbox",
    ignore_result=True,
    soft_time_limit=SWEEP_TIME_LIMIT,
    time_limit=SWEEP_TIME_LIMIT + 15,
)
def sweep_outbox() -> dict[str, int]:
    return outbox.sweep()


@shared_task(name="itsm.check_slas", ignore_result=True)
def check_slas() -> dict:
    return sla.check_slas()


def queue_delivery(message_id: int, token: str | None) -> None:
    deliver_outbox_message.delay(message_id, token)


outbox.set_dispatcher(queue_delivery)
