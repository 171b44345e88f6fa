"""Notifications of escalations (seed 004's ``notify_teams`` and ``create_linear_ticket``):
Slack messages to the owning teams, the ticket on the team's tracker (Linear or Jira), comments
on it, the scrum master's alerts, and the outbox handlers that deliver them in the worker.

Everything is queued through the itsm outbox (``itsm.public``) in the caller's transaction:
Slack or Linear being down loses nothing, and each message is delivered once.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.urls import reverse
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, HeaderBlock, SectionBlock

from escalation import metrics
from escalation.models import (
    JIRA_PRIORITY,
    LINEAR_PRIORITY,
    Escalation,
    FailureEvent,
    Notification,
    Team,
    Tracker,
)
from escalation.services import audit
from itsm import public

logger = logging.getLogger("escalation.notifications")

SLACK_KIND = "escalation.slack"
TICKET_KIND = "escalation.ticket"
COMMENT_KIND = "escalation.comment"
SCRUM_MASTER = "scrum_master"
URGENT_MARK, STANDARD_MARK = "🚨 URGENT", "⚠️ Standard"


def team_snapshot(team: Team) -> dict[str, Any]:
    return {
        "name": team.name,
        "display_name": str(team),
        "slack_channel": team.slack_channel,
        "oncall_handle": team.oncall_handle,
        "tracker": team.tracker,
        "linear_team": team.linear_team,
        "jira_project": team.jira_project,
    }


# --- links -------------------------------------------------------------------------------------


def failure_url(failure: FailureEvent) -> str:
    return settings.PORTAL_BASE_URL + reverse("escalation:failure-detail", args=[failure.pk])


def pull_request_url(failure: FailureEvent) -> str:
    if failure.pr_number and failure.repository.count("/") == 1:
        return f"https://github.com/{failure.repository}/pull/{failure.pr_number}"
    return ""


# --- notifications -----------------------------------------------------------------------------


def slack_blocks(
    escalation: Escalation, failure: FailureEvent, headline: str, team: dict[str, Any]
) -> list[dict]:
    """The seed's message: the headline, PR, owner; buttons to the PR, the failure's page and
    the override request form (built with slack_sdk's models, within Block Kit's limits)."""
    mark = URGENT_MARK if escalation.routing.get("urgent") else STANDARD_MARK
    lines = [
        f"*{mark}*: {headline}",
        f"*Repository*: {failure.repository}",
        f"*Job*: {failure.job} (run {failure.run_id}, attempt {failure.run_attempt})",
    ]
    if failure.pr_number:
        lines.append(f"*PR*: #{failure.pr_number}")
    owner = team.get("oncall_handle") or team.get("display_name") or team.get("name", "")
    lines.append(f"*Owner*: {owner}")
    if record := escalation.sla_record():
        lines.append(f"*SLA*: due {record.deadline.isoformat(timespec='minutes')}")
    if failure.evidence:
        first = failure.evidence[0]
        lines.append(f"*Evidence* (line {first['line']}): `{str(first['text'])[:300]}`")
    buttons = []
    if pr := pull_request_url(failure):
        buttons.append(ButtonElement(text="View PR", url=pr, action_id="view_pr"))
    page = failure_url(failure)
    buttons.append(ButtonElement(text="View failure", url=page, action_id="view_failure"))
    if escalation.routing.get("override_policy") != "zero_tolerance":
        buttons.append(
            ButtonElement(
                text="Request override",
                url=f"{page}#override",
                action_id="request_override",
                value=f"override_{escalation.failure_type}",
            )
        )
    blocks = [
        HeaderBlock(text=f"CI failure: {escalation.routing.get('title', '')}"[:150]),
        SectionBlock(text="\n".join(lines)[:3000]),
        ActionsBlock(elements=buttons),
    ]
    return [block.to_dict() for block in blocks]


def queue_slack(
    escalation: Escalation,
    failure: FailureEvent,
    team: dict[str, Any],
    headline: str,
    *,
    kind: str,
    key: str,
    recipient: str = "",
) -> Notification:
    text = f"{URGENT_MARK if escalation.routing.get('urgent') else STANDARD_MARK}: {headline}"
    message = public.enqueue(
        SLACK_KIND,
        "slack",
        {
            "escalation_id": escalation.pk,
            "team": team.get("name", ""),
            "text": text[:3000],
            "blocks": slack_blocks(escalation, failure, headline, team),
        },
        idempotency_key=key,
    )
    return Notification.objects.create(
        escalation=escalation,
        channel=Notification.Channel.SLACK,
        kind=kind,
        team=team.get("name", ""),
        recipient=recipient or team.get("slack_channel", ""),
        outbox_message=message,
    )


def notify_opened(escalation: Escalation, failure: FailureEvent) -> None:
    routing = escalation.routing
    headline = f"{routing['title']} in {failure.repository}"
    if failure.pr_number:
        headline += f" PR #{failure.pr_number}"
    for team in routing["teams"]:
        queue_slack(
            escalation, failure, team, headline,
            kind="opened", key=f"esc:{escalation.pk}:opened:{team['name']}",
        )  # fmt: skip
    if routing.get("notify_author") and failure.author:
        # The seed's get_code_author: the author is told on the owning team's channel by handle.
        author = {
            **(routing["teams"][0] if routing["teams"] else {}),
            "oncall_handle": f"@{failure.author}",
        }
        queue_slack(
            escalation, failure, author, f"{headline} (your change)",
            kind="author", key=f"esc:{escalation.pk}:author", recipient=f"@{failure.author}",
        )  # fmt: skip
    queue_ticket(escalation, failure)


def ticket_fields(escalation: Escalation, failure: FailureEvent) -> tuple[str, dict[str, Any]]:
    """The tracker and the ticket's fields, as the seed's create_linear_ticket words it."""
    routing = escalation.routing
    team = routing.get("ticket_team") or {}
    tracker = team.get("tracker", Tracker.NONE)
    started = escalation.first_seen_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    evidence = "\n".join(f"    {item['line']}: {item['text']}" for item in failure.evidence[:5])
    description = (
        f"{failure.repository}: {failure.job} failed (run {failure.run_id}, attempt "
        f"{failure.run_attempt}, commit {failure.commit or 'unknown'}).\n\n"
        f"Evidence (rule {failure.rule_name or 'none'}):\n{evidence or '    (no matching line)'}\n\n"
        f"**Failure Type**: {failure.failure_type}\n**SLA Timer**: Started at {started}\n"
        f"**Auto-escalation**: Enabled\n\nPortal: {failure_url(failure)}"
    )
    if pr := pull_request_url(failure):
        description += f"\nPR: {pr}"
    title = f"CI Failure: {routing.get('title', failure.failure_type)}"
    labels = ["ci-failure", "escalation-active", failure.failure_type]
    if tracker == Tracker.LINEAR:
        return tracker, {
            "team": team.get("linear_team") or "",
            "title": title,
            "description": description,
            "priority": LINEAR_PRIORITY.get(escalation.priority, 3),
            "labels": labels,
        }
    if tracker == Tracker.JIRA:
        return tracker, {
            "project": team.get("jira_project") or settings.ITSM_ENDPOINTS.get("JIRA_PROJECT_KEY"),
            "summary": f"{title} in {failure.repository}"[:255],
            "description": description,
            "issue_type": "Task",
            "priority": JIRA_PRIORITY.get(escalation.priority, "3"),
            "labels": labels,
        }
    return Tracker.NONE, {}


def queue_ticket(escalation: Escalation, failure: FailureEvent) -> Notification | None:
    tracker, fields = ticket_fields(escalation, failure)
    if tracker == Tracker.NONE:
        return None
    return queue_tracker_ticket(
        escalation, tracker, fields, outbox_kind=TICKET_KIND, kind="ticket",
        payload={"escalation_id": escalation.pk}, idempotency_key=f"esc:{escalation.pk}:ticket",
    )  # fmt: skip


def queue_tracker_ticket(
    escalation: Escalation,
    tracker: str,
    fields: dict[str, Any],
    *,
    outbox_kind: str,
    kind: str,
    payload: dict[str, Any],
    idempotency_key: str,
) -> Notification:
    """Queues a ticket for the escalation's ticket team in ``tracker`` and records it: the
    escalation's own ticket and an override's follow-up alike."""
    message = public.enqueue(
        outbox_kind,
        tracker,
        {**payload, "tracker": tracker, "fields": fields},
        idempotency_key=idempotency_key,
    )
    return Notification.objects.create(
        escalation=escalation,
        channel=tracker,
        kind=kind,
        team=(escalation.routing.get("ticket_team") or {}).get("name", ""),
        recipient=str(fields.get("team") or fields.get("project") or ""),
        outbox_message=message,
    )


def comment_on_ticket(escalation: Escalation, body: str, *, kind: str, key: str) -> None:
    """A comment on the escalation's ticket, delivered once it exists."""
    if escalation.tracker == Tracker.NONE:
        return
    message = public.enqueue(
        COMMENT_KIND,
        escalation.tracker,
        {"escalation_id": escalation.pk, "body": body[:30_000]},
        idempotency_key=key[:64],
    )
    Notification.objects.create(
        escalation=escalation,
        channel=escalation.tracker,
        kind=kind,
        team=(escalation.routing.get("ticket_team") or {}).get("name", ""),
        recipient=escalation.tracker_key or "ticket",
        outbox_message=message,
    )


def notify_scrum_master(escalation: Escalation, headline: str, *, kind: str, key: str) -> None:
    team = Team.objects.filter(name=SCRUM_MASTER).first()
    snapshot = team_snapshot(team) if team else {"name": SCRUM_MASTER}
    failure = escalation.failures.order_by("-created_at").first()
    if failure is None:
        return
    queue_slack(escalation, failure, snapshot, headline, kind=kind, key=key)


# --- outbox handlers (run in the worker) -------------------------------------------------------


@public.outbox_handler(SLACK_KIND)
def deliver_slack(message) -> dict[str, Any]:
    team = Team.objects.filter(name=message.payload.get("team", "")).first()
    webhook = team.slack_webhook_url if team else ""
    with public.slack_client_for(webhook) as client:
        client.post_message(message.payload["text"], message.payload.get("blocks"))
    metrics.NOTIFICATIONS_DELIVERED.labels(channel="slack").inc()
    return {"posted": True, "team": message.payload.get("team", "")}


def create_queued_ticket(message):
    """Creates the ticket a message of :func:`queue_tracker_ticket` carries, exactly once: a
    redelivery looks for it by its idempotency key first."""
    with public.client_for(message.payload["tracker"]) as client:
        return client.create(
            message.payload["fields"],
            idempotency_key=message.idempotency_key,
            reconcile_first=public.is_redelivery(message),
        )


@public.outbox_handler(TICKET_KIND)
def deliver_ticket(message) -> dict[str, Any]:
    escalation = Escalation.objects.get(pk=message.payload["escalation_id"])
    if escalation.tracker_key:
        return {"key": escalation.tracker_key, "already": True}
    tracker = message.payload["tracker"]
    created = create_queued_ticket(message)
    Escalation.objects.filter(pk=escalation.pk).update(
        tracker_id=created.id, tracker_key=created.key, tracker_url=created.url
    )
    audit.record(
        "ticket_created",
        f"{tracker.title()} ticket {created.key} created",
        escalation=escalation,
        data={"key": created.key, "url": created.url, "reconciled": created.reconciled},
    )
    metrics.NOTIFICATIONS_DELIVERED.labels(channel=tracker).inc()
    return {"key": created.key, "id": created.id, "url": created.url}


@public.outbox_handler(COMMENT_KIND)
def deliver_comment(message) -> dict[str, Any]:
    escalation = Escalation.objects.get(pk=message.payload["escalation_id"])
    if not escalation.tracker_key:
        # The ticket is still on its way (its own message may be postponed): try again later.
        raise public.RetryableError(
            f"escalation {escalation.pk} has no ticket yet", platform=escalation.tracker,
            retry_after=30, sent=False,
        )  # fmt: skip
    with public.client_for(escalation.tracker) as client:
        if not client.supports(public.COMMENT):
            return {"skipped": f"{escalation.tracker} comments are not supported"}
        client.comment(
            public.TicketRef(escalation.tracker_id, escalation.tracker_key),
            message.payload["body"],
            reconcile_first=public.is_redelivery(message),
        )
    metrics.NOTIFICATIONS_DELIVERED.labels(channel=escalation.tracker).inc()
    return {"commented": escalation.tracker_key}
