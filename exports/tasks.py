"""Celery tasks of the exports app: load by id, call one service, nothing else.

``exports.run_export`` is acked late and rejected back to the queue when its worker is lost, so a
killed worker's export is delivered again (its task id still the session's: it resumes, and every
create it may have sent is looked up by its marker first). Its time limits and the broker's
``visibility_timeout`` come from settings (``CELERY_TASK_ANNOTATIONS``, docs/exports.md), so a long
export is never handed to a second worker while it runs. The reaper fails exports that stopped
making progress, for the case no worker picks the message up again.
"""

from __future__ import annotations

from celery import shared_task

from exports.services import engine, lifecycle


@shared_task(
    bind=True,
    name="exports.run_export",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def run_export(self, session_id: str, task_id: str) -> str:
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    return engine.run_export(session_id, task_id, redelivered=redelivered)


@shared_task(name="exports.reap_stuck_exports", ignore_result=True, soft_time_limit=50)
def reap_stuck_exports() -> int:
    return len(lifecycle.reap_stuck_exports())
