"""The itsm app's public face: the only names other apps (escalation, exports) import from itsm.

- **Outbox**: :func:`enqueue` a registered kind inside your transaction (:func:`outbox_kinds` lists
  them: ``slack.post``, ``jira.comment``, ``jira.transition``, ``servicenow.comment``,
  ``linear.create``, ``github.rerun``, ``ticket.create``); register a kind of your own with
  :func:`outbox_handler`. Delivery is exactly once per idempotency key, after commit, retried
  while the platform is down.
- **Tickets**: :func:`open_ticket` (fields you composed) and :func:`create_from_template`
  record a ``Ticket`` and queue its creation; :func:`sla_state` says where its SLA stands.
- **Clients**: :func:`client_for` gives a platform's client, which implements
  :class:`PlatformClient` (create, read_status, comment, transition, link); for calls made in
  a worker task, never in a request.
- **Slack**: :func:`build_blocks` makes a Block Kit message within Slack's limits.
- **Types and errors**: the values and exceptions those return and raise.
"""

from __future__ import annotations

from itsm.clients import SlackClient, client_class, client_for
from itsm.clients.interface import (
    COMMENT,
    CREATE,
    LINK,
    READ_STATUS,
    TRANSITION,
    PlatformClient,
    Ref,
)
from itsm.clients.slack import build_blocks
from itsm.config import Endpoint
from itsm.errors import (
    FieldError,
    ItsmError,
    NotConfigured,
    RetryableError,
    TemplateError,
    UpstreamRejected,
    ValidationFailed,
)
from itsm.models import OutboxMessage, Ticket
from itsm.outbox import HANDLERS, enqueue, is_redelivery
from itsm.outbox import handler as outbox_handler
from itsm.services.sla import state_of as sla_state
from itsm.services.tickets import create_from_template, open_ticket, sent_fields
from itsm.types import CallLog, CreatedTicket, PlatformView, RateLimitHint, TicketRef
from portal.redaction import register_secrets


def slack_client_for(webhook_url: str = "", **kwargs) -> SlackClient:
    """A Slack client posting to ``webhook_url`` (a team's own incoming webhook), or to the
    portal's ``SLACK_WEBHOOK_URL`` when it is empty. The URL is the credential: it is masked
    wherever it could appear, like every configured secret."""
    if not webhook_url:
        return client_for("slack", **kwargs)
    register_secrets(webhook_url)
    return SlackClient(Endpoint("slack", webhook_url), **kwargs)


def outbox_kinds() -> list[str]:
    """Every kind :func:`enqueue` accepts now."""
    return sorted(HANDLERS)


__all__ = [
    "COMMENT",
    "CREATE",
    "LINK",
    "READ_STATUS",
    "TRANSITION",
    "CallLog",
    "CreatedTicket",
    "FieldError",
    "ItsmError",
    "NotConfigured",
    "OutboxMessage",
    "PlatformClient",
    "PlatformView",
    "RateLimitHint",
    "Ref",
    "RetryableError",
    "TemplateError",
    "Ticket",
    "TicketRef",
    "UpstreamRejected",
    "ValidationFailed",
    "build_blocks",
    "client_class",
    "client_for",
    "create_from_template",
    "enqueue",
    "is_redelivery",
    "open_ticket",
    "outbox_handler",
    "outbox_kinds",
    "sent_fields",
    "sla_state",
    "slack_client_for",
]
