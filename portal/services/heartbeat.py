"""Heartbeats: proof that beat dispatches and a worker executes, shown on the dashboard."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from portal.models import Heartbeat
from portal.services.status import publish_status

HEARTBEATS_KEPT = timedelta(days=2)


def record_heartbeat(worker: str, beat_identity: str = "", fencing_token: int | None = None):
    Heartbeat.objects.filter(ran_at__lt=timezone.now() - HEARTBEATS_KEPT).delete()
    heartbeat = Heartbeat.objects.create(
        worker=worker, beat_identity=beat_identity, fencing_token=fencing_token
    )
    transaction.on_commit(publish_status)
    return heartbeat
