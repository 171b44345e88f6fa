"""Outbox handlers for the platform writes other than ticket creation.

Other apps enqueue these kinds (``itsm.outbox.enqueue``) inside their transactions:

- ``slack.post``: ``{"text", "blocks"?}``
- ``jira.comment``: ``{"key", "body"}`` (text or ADF)
- ``jira.transition``: ``{"key", "preferred": [...]}``
- ``servicenow.comment``: ``{"sys_id", "text"}``
- ``linear.create``: ``{"team", "title", "description"?, "priority"?, "labels"?}`` (the message's
  idempotency key names the Linear issue, so a replay never creates a second)
- ``github.rerun``: ``{"owner", "repo", "run_id"}``
"""

from __future__ import annotations

from typing import Any

from itsm import outbox
from itsm.clients import client_for
from itsm.models import OutboxMessage


@outbox.handler("slack.post")
def post_to_slack(message: OutboxMessage) -> dict[str, Any]:
    with client_for("slack") as client:
        client.post_message(message.payload["text"], message.payload.get("blocks"))
    return {"posted": True}


@outbox.handler("jira.comment")
def comment_on_jira(message: OutboxMessage) -> dict[str, Any]:
    with client_for("jira") as client:
        comment = client.add_comment(
            message.payload["key"], message.payload["body"],
            reconcile_first=outbox.is_redelivery(message),
        )  # fmt: skip
    return {"comment_id": comment.get("id")}


@outbox.handler("jira.transition")
def transition_jira(message: OutboxMessage) -> dict[str, Any]:
    with client_for("jira") as client:
        chosen = client.transition(message.payload["key"], message.payload["preferred"])
    return {"transition": chosen}


@outbox.handler("servicenow.comment")
def comment_on_servicenow(message: OutboxMessage) -> dict[str, Any]:
    with client_for("servicenow") as client:
        client.add_comment(
            message.payload["sys_id"], message.payload["text"],
            reconcile_first=outbox.is_redelivery(message),
        )  # fmt: skip
    return {"commented": True}


@outbox.handler("linear.create")
def create_linear_issue(message: OutboxMessage) -> dict[str, Any]:
    with client_for("linear") as client:
        created = client.create(
            message.payload,
            idempotency_key=message.idempotency_key,
            reconcile_first=outbox.is_redelivery(message),
        )
    return {"id": created.id, "key": created.key, "url": created.url}


@outbox.handler("github.rerun")
def rerun_github_jobs(message: OutboxMessage) -> dict[str, Any]:
    payload = message.payload
    with client_for("github") as client:
        client.rerun_failed_jobs(payload["owner"], payload["repo"], payload["run_id"])
    return {"rerun": True}
