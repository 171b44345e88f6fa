"""Running the outbox the way the leader's sweep and the worker do, inside a test.

Without ``REDIS_URL`` Celery's broker is ``memory://`` and ``.delay`` only queues, so tests run
the sweep and then each delivery it queued, in this process.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from django.test import TestCase

from itsm import outbox, tasks


def sweep_now(now: datetime | None = None, limit: int = outbox.SWEEP_LIMIT) -> dict[str, int]:
    """The sweep, then every delivery it queued; returns the deliveries' statuses counted."""
    queued: list[tuple[int, str | None]] = []
    outbox.set_dispatcher(lambda message_id, token: queued.append((message_id, token)))
    try:
        with TestCase.captureOnCommitCallbacks(execute=True):
            outbox.sweep(now, limit)
    finally:
        outbox.set_dispatcher(tasks.queue_delivery)
    return dict(Counter(outbox.deliver(message_id, token) for message_id, token in queued))
