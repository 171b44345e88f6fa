"""The portal's own live status: who leads beat, and when a worker last ran a heartbeat."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from portal.models import Lease

STATUS_GROUP = "portal.status"


def status_snapshot() -> dict:
    from portal.beat import BEAT_LEASE_NAME

    from portal.models import Heartbeat

    lease = Lease.objects.filter(name=BEAT_LEASE_NAME).first()
    heartbeat = Heartbeat.objects.order_by("-ran_at").first()
    return {
        "beat_leader": lease.holder_identity if lease else "",
        "beat_fencing_token": lease.lease_transitions if lease else None,
        "last_heartbeat": heartbeat.ran_at.isoformat() if heartbeat else None,
        "last_heartbeat_worker": heartbeat.worker if heartbeat else "",
    }


def publish_status() -> None:
    """Push the current snapshot to every open dashboard (a hint: pages reload it on connect)."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(
            STATUS_GROUP, {"type": "status.changed", "status": status_snapshot()}
        )
