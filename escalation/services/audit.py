"""The one entry point for every change to an escalation or a failure (django-helpdesk's habit):
it writes the timeline row, so the audit trail cannot be skipped, and after commit pushes a hint
to the open CI pages (the pages reload their state; a lost push costs nothing)."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from escalation.models import Escalation, EscalationEvent, FailureEvent

logger = logging.getLogger("escalation.audit")

CI_GROUP = "escalation.ci"


def record(
    kind: str,
    message: str,
    *,
    escalation: Escalation | None = None,
    failure: FailureEvent | None = None,
    actor: Any = None,
    data: dict[str, Any] | None = None,
    push: bool = True,
) -> EscalationEvent:
    """Writes the timeline row and, after commit, pushes a hint to the open CI pages (``push=False``
    when another record of the same transaction pushes one anyway)."""
    event = EscalationEvent.objects.create(
        escalation=escalation,
        failure=failure,
        kind=kind,
        message=message[:500],
        data=data or {},
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )
    hint = {
        "type": "ci.changed",
        "kind": kind,
        "escalation": escalation.pk if escalation else None,
        "failure": failure.pk if failure else None,
    }
    if push:
        transaction.on_commit(lambda: publish(hint), robust=True)
    return event


def publish(hint: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(CI_GROUP, hint)
    except Exception:  # a push is a hint: the pages poll too
        logger.warning("escalation: live update not sent", exc_info=True)
