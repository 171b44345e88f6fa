"""Grouping and routing (seed 004's ``route_failure`` and ``notify_teams``): a failure joins the
open escalation of its fingerprint or opens one; an opened escalation snapshots its routing,
starts its SLA and notifies its teams (Slack) and its tracker (Linear or Jira); a repeat comments
on the existing ticket instead of notifying again.

Every outbound message goes through the itsm outbox (``itsm.public``) in the caller's
transaction: Slack or Linear being down loses nothing, and each message is delivered once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from escalation import metrics
from escalation.models import (
    Escalation,
    FailureEvent,
    RoutingRule,
    Team,
    Tracker,
)
from escalation.services import audit, notifications, recovery, sla

logger = logging.getLogger("escalation.routing")


# --- the routing snapshot ----------------------------------------------------------------------


def routing_for(failure_type: str) -> dict[str, Any]:
    """The routing matrix row of ``failure_type`` as a plain snapshot (the ``unknown`` row when
    the type has none), with each team's contact details."""
    rows = {
        row.failure_type: row
        for row in RoutingRule.objects.prefetch_related("teams")
        .select_related("ticket_team")
        .filter(failure_type__in=[failure_type, "unknown"])
    }
    rule = rows.get(failure_type) or rows.get("unknown")
    if rule is None:
        return {
            "failure_type": failure_type,
            "title": failure_type.replace("_", " ").title(),
            "teams": [],
            "ticket_team": None,
            "priority": "LOW",
            "sla_minutes": 8 * 60,
            "urgent": False,
            "notify_author": False,
            "override_policy": "qa_approval",
            "recovery_action": "none",
        }
    teams = list(rule.teams.all())
    ticket_team = rule.ticket_team or (teams[0] if teams else None)
    return {
        "failure_type": failure_type,
        "title": rule.title,
        "teams": [notifications.team_snapshot(team) for team in teams],
        "ticket_team": notifications.team_snapshot(ticket_team) if ticket_team else None,
        "priority": rule.priority,
        "sla_minutes": rule.sla_minutes,
        "urgent": rule.urgent,
        "notify_author": rule.notify_author,
        "override_policy": rule.override_policy,
        "recovery_action": rule.recovery_action,
    }


def team_names(routing: dict[str, Any]) -> list[str]:
    return [team["name"] for team in routing.get("teams", [])]


# --- grouping ----------------------------------------------------------------------------------


def open_or_attach_escalation(failure: FailureEvent) -> tuple[Escalation, bool]:
    """Attaches the failure to the open escalation of its repository and fingerprint, or opens
    one (routed, with its SLA and notifications). Returns ``(escalation, opened)``.

    Two reports of one new fingerprint at once: the partial unique constraint lets one open it;
    the other attaches to it.
    """
    for _ in range(3):
        existing = open_escalation_of(failure.repository, failure.fingerprint)
        if existing is not None:
            attach(existing, failure)
            return existing, False
        try:
            with transaction.atomic():
                return open_escalation(failure), True
        except IntegrityError:
            continue  # opened by a concurrent report a moment ago: attach to it
    raise RuntimeError("could not open or attach an escalation")  # pragma: no cover


def open_escalation_of(repository: str, fingerprint: str) -> Escalation | None:
    """The open escalation of a repository and fingerprint, locked for the caller's transaction."""
    return (
        Escalation.objects.select_for_update()
        .filter(repository=repository, fingerprint=fingerprint, status=Escalation.Status.OPEN)
        .first()
    )


def open_escalation(failure: FailureEvent) -> Escalation:
    routing = routing_for(failure.failure_type)
    now = failure.created_at
    ticket_team = routing["ticket_team"] or {}
    escalation = Escalation.objects.create(
        repository=failure.repository,
        fingerprint=failure.fingerprint,
        signature=failure.signature,
        failure_type=failure.failure_type,
        priority=routing["priority"],
        routing=routing,
        first_seen_at=now,
        last_seen_at=now,
        tracker=ticket_team.get("tracker", Tracker.NONE),
    )
    escalation.teams.set(Team.objects.filter(name__in=team_names(routing)))
    FailureEvent.objects.filter(pk=failure.pk).update(escalation=escalation)
    failure.escalation = escalation
    record = sla.start_sla(escalation, now)
    audit.record(
        "opened",
        f"Escalation opened for {failure.failure_type}: {routing['title']}, "
        f"{routing['priority']}, SLA {routing['sla_minutes']} min "
        f"(due {record.deadline.isoformat(timespec='minutes')})",
        escalation=escalation,
        failure=failure,
        data={"routing": routing},
    )
    notifications.notify_opened(escalation, failure)
    recovery.schedule_first(escalation, failure)
    metrics.ESCALATIONS_OPENED.labels(failure_type=escalation.failure_type).inc()
    return escalation


def attach(escalation: Escalation, failure: FailureEvent) -> None:
    now = failure.created_at
    Escalation.objects.filter(pk=escalation.pk).update(
        occurrences=escalation.occurrences + 1, last_seen_at=max(now, escalation.last_seen_at)
    )
    escalation.occurrences += 1
    escalation.last_seen_at = max(now, escalation.last_seen_at)
    if failure.escalation_id != escalation.pk:  # recorded with it already, on the ingest path
        FailureEvent.objects.filter(pk=failure.pk).update(escalation=escalation)
    failure.escalation = escalation
    audit.record(
        "grouped",
        f"Occurrence {escalation.occurrences} joined the escalation "
        f"({failure.job} #{failure.run_id}.{failure.run_attempt})",
        escalation=escalation,
        failure=failure,
    )
    notifications.comment_on_ticket(
        escalation,
        f"Occurrence {escalation.occurrences} at {now.isoformat(timespec='seconds')}: "
        f"{failure.job} in {failure.repository} (run {failure.run_id}, attempt "
        f"{failure.run_attempt}, commit {failure.commit[:12] or 'unknown'}).\n"
        f"{notifications.failure_url(failure)}",
        kind="repeat",
        key=f"esc:{escalation.pk}:repeat:{failure.pk}",
    )


# --- reclassification --------------------------------------------------------------------------


def reclassify_failure(
    failure: FailureEvent,
    new_type: str,
    justification: str,
    *,
    actor: Any = None,
    now: datetime | None = None,
) -> Escalation:
    """The seed's ``reclassify_failure``: a new type, re-routed, the SLA adjusted, audited.

    The failure leaves its escalation (which keeps its other occurrences) for the open escalation
    of its new fingerprint, or a new one routed for the new type.
    """
    from escalation.errors import NotReclassifiable
    from escalation.services.classify import fingerprint_of

    if new_type == failure.failure_type:
        raise NotReclassifiable(f"The failure is already classified as {new_type}.")
    if failure.status != FailureEvent.Status.OPEN:
        raise NotReclassifiable(
            f"The failure is {failure.get_status_display().lower()}: reclassifying it would "
            "open and notify a new escalation for settled work."
        )
    now = now or timezone.now()
    old_type, old_escalation = failure.failure_type, failure.escalation
    with transaction.atomic():
        failure.failure_type = new_type
        failure.fingerprint = fingerprint_of(new_type, failure.signature)
        failure.save(update_fields=["failure_type", "fingerprint"])
        if old_escalation is not None:
            remaining = old_escalation.failures.exclude(pk=failure.pk).count()
            if remaining == 0 and old_escalation.status == Escalation.Status.OPEN:
                sla.resolve(
                    old_escalation, f"reclassified as {new_type}", actor=actor, now=now,
                    within_sla_only_if_due=False,
                )  # fmt: skip
            elif remaining:
                Escalation.objects.filter(pk=old_escalation.pk).update(occurrences=remaining)
        escalation, _ = open_or_attach_escalation(failure)
        audit.record(
            "reclassified",
            f"Reclassified from {old_type} to {new_type}: {justification}",
            escalation=escalation,
            failure=failure,
            actor=actor,
            data={
                "from": old_type,
                "to": new_type,
                "justification": justification,
                "previous_escalation": old_escalation.pk if old_escalation else None,
            },
        )
    return escalation
