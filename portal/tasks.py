"""Periodic housekeeping of the portal itself."""

from __future__ import annotations

import socket

from celery import shared_task

from portal.services.heartbeat import record_heartbeat


@shared_task(name="portal.record_heartbeat", bind=True)
def record_heartbeat_task(self) -> int:
    request = self.request
    headers = request.headers or {}
    token = getattr(request, "portal_fencing_token", None) or headers.get("portal_fencing_token")
    beat = getattr(request, "portal_beat_identity", None) or headers.get("portal_beat_identity")
    return record_heartbeat(
        worker=request.hostname or socket.gethostname(),
        beat_identity=beat or "",
        fencing_token=token,
    ).pk
