"""The portal's own live status: who leads beat, and when a worker last ran a heartbeat."""

from __future__ import annotations

import logging

from portal import live
from portal.leader import LeaseRecord, backend_from_settings
from portal.models import Heartbeat

logger = logging.getLogger(__name__)

STATUS_GROUP = "portal.status"


def beat_lease() -> LeaseRecord | None:
    """The scheduler's lease as the configured backend (database or Redis) holds it now."""
    from portal.beat import BEAT_LEASE_NAME

    try:
        return backend_from_settings().get(BEAT_LEASE_NAME)
    except Exception:
        logger.warning("cannot read the beat lease", exc_info=True)
        return None


def status_snapshot() -> dict:
    lease = beat_lease()
    # A released or expired lease has no leader, whatever name it still carries.
    live = lease is not None and lease.is_held_by_other(identity="")
    # The dashboard's "last worker heartbeat": the one place that reads it.
    heartbeat = Heartbeat.objects.order_by("-ran_at").first()
    return {
        "beat_leader": lease.holder_identity if live else "",
        "beat_fencing_token": lease.lease_transitions if lease else None,
        "last_heartbeat": heartbeat.ran_at.isoformat() if heartbeat else None,
        "last_heartbeat_worker": heartbeat.worker if heartbeat else "",
    }


def publish_status() -> None:
    """Push the current snapshot to every open dashboard (a hint: pages reload it on connect)."""
    live.publish(STATUS_GROUP, {"type": "status.changed", "status": status_snapshot()})
