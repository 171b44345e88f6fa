"""The one entry point for every change to an escalation or a failure (django-helpdesk's habit):
it writes the timeline row, so the audit trail cannot be skipped, and after commit pushes a hint
to the open CI pages (the pages reload their state; a lost push costs nothing)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from escalation.models import Escalation, EscalationEvent, FailureEvent
from portal import live

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
    live.publish(CI_GROUP, hint)
