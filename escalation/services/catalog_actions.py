"""What each catalog action type does with its rendered configuration (docs/service.md,
"Multi-Action Fulfillment Engine"). Run in the worker only: tickets, issues and Slack messages go
through ``itsm.public`` clients; ``http-request`` through the guarded client of
``services.http_actions``.

Each action returns an :class:`ActionResult`: the resources it created (what an operator would
have to clean up) and the output later components read as ``components.<id>.output``.

Configurations (every string a Jinja2 template, ``services.catalog_templates``):

- ``jira-ticket``: ``{"ticket": {"project", "issueType", "priority", "summaryTemplate",
  "descriptionTemplate", "labels"}}`` (the seed's shape);
- ``servicenow-ticket``: ``{"ticket": {"short_description", "description", "priority",
  "assignment_group", ...}}``;
- ``linear-issue``: ``{"issue": {"team", "title", "description", "priority", "labels"}}``;
- ``slack-message``: ``{"message": {"text", "webhook_url" (optional)}}``;
- ``http-request``: ``{"request": {"method", "url", "headers", "json" or "body", "expect"}}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from escalation.models import ActionType
from escalation.services import http_actions
from itsm import public
from portal.redaction import redact_text


@dataclass
class ActionResult:
    resources: list[str] = field(default_factory=list)
    output: dict[str, Any] = field(default_factory=dict)


class ActionConfigError(ValueError):
    """A configuration that cannot be run: a missing section or field, a wrong type."""


def _section(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    section = config.get(name)
    if not isinstance(section, dict):
        raise ActionConfigError(f"config.{name} must be an object")
    return section


def _required(section: Mapping[str, Any], path: str, *names: str) -> None:
    for name in names:
        if section.get(name) in (None, ""):
            raise ActionConfigError(f"{path}.{name} is required")


def jira_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """The itsm Jira client's logical fields from a (rendered) ``jira-ticket`` configuration."""
    ticket = _section(config, "ticket")
    _required(ticket, "config.ticket", "project", "summaryTemplate")
    fields: dict[str, Any] = {
        "project": str(ticket["project"]),
        "summary": str(ticket["summaryTemplate"]).strip()[:255],
        "issue_type": str(ticket.get("issueType") or "Task"),
    }
    if ticket.get("descriptionTemplate"):
        fields["description"] = str(ticket["descriptionTemplate"])
    if ticket.get("priority"):
        fields["priority"] = str(ticket["priority"])
    if ticket.get("labels"):
        fields["labels"] = [str(label) for label in ticket["labels"]]
    return fields


def servicenow_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    ticket = _section(config, "ticket")
    _required(ticket, "config.ticket", "short_description")
    return {key: str(value) for key, value in ticket.items() if value not in (None, "")}


def linear_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    issue = _section(config, "issue")
    _required(issue, "config.issue", "team", "title")
    fields: dict[str, Any] = {
        "team": str(issue["team"]),
        "title": str(issue["title"]).strip(),
        "description": str(issue.get("description") or ""),
    }
    if issue.get("priority") not in (None, ""):
        try:
            fields["priority"] = int(issue["priority"])
        except (TypeError, ValueError) as exc:
            raise ActionConfigError("config.issue.priority must be a number 0-4") from exc
    if issue.get("labels"):
        fields["labels"] = [str(label) for label in issue["labels"]]
    return fields


def slack_message(config: Mapping[str, Any]) -> tuple[str, str]:
    message = _section(config, "message")
    _required(message, "config.message", "text")
    return str(message["text"]), str(message.get("webhook_url") or "")


def http_request(config: Mapping[str, Any]) -> dict[str, Any]:
    request = _section(config, "request")
    _required(request, "config.request", "url")
    headers = request.get("headers") or {}
    if not isinstance(headers, dict):
        raise ActionConfigError("config.request.headers must be an object")
    expect = request.get("expect") or []
    if not isinstance(expect, list) or not all(str(code).isdigit() for code in expect):
        raise ActionConfigError("config.request.expect must be a list of status codes")
    method = str(request.get("method") or "GET").upper()
    if method not in http_actions.METHODS:
        raise ActionConfigError(f"config.request.method must be one of {http_actions.METHODS}")
    return {
        "method": method,
        "url": str(request["url"]),
        "headers": {str(k): str(v) for k, v in headers.items()},
        "json_body": request.get("json"),
        "body": str(request["body"]) if request.get("body") is not None else None,
        "expect": tuple(int(code) for code in expect),
    }


# What checks a configuration's shape, per action type (the admin runs these on save, on a
# sample render, so a missing section is refused before anything runs).
SHAPES: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    ActionType.JIRA_TICKET: jira_fields,
    ActionType.SERVICENOW_TICKET: servicenow_fields,
    ActionType.LINEAR_ISSUE: linear_fields,
    ActionType.SLACK_MESSAGE: slack_message,
    ActionType.HTTP_REQUEST: http_request,
}


def _ticket(platform: str, fields: dict[str, Any], key: str, redelivery: bool) -> ActionResult:
    with public.client_for(platform) as client:
        created = client.create(fields, idempotency_key=key, reconcile_first=redelivery)
    return ActionResult(
        resources=[f"{platform.title()} {created.key}"],
        output={"id": created.id, "key": created.key, "url": created.url},
    )


def run(
    action_type: str, config: Mapping[str, Any], *, idempotency_key: str, redelivery: bool = False
) -> ActionResult:
    """Runs one action with its rendered configuration; raises on failure (ItsmError,
    HttpActionRefused/Failed, ActionConfigError)."""
    if action_type == ActionType.JIRA_TICKET:
        return _ticket("jira", jira_fields(config), idempotency_key, redelivery)
    if action_type == ActionType.SERVICENOW_TICKET:
        return _ticket("servicenow", servicenow_fields(config), idempotency_key, redelivery)
    if action_type == ActionType.LINEAR_ISSUE:
        return _ticket("linear", linear_fields(config), idempotency_key, redelivery)
    if action_type == ActionType.SLACK_MESSAGE:
        text, webhook = slack_message(config)
        with public.slack_client_for(webhook) as client:
            client.post_message(text)
        return ActionResult(
            resources=[f"Slack message: {text[:80]}"], output={"posted": True, "text": text}
        )
    if action_type == ActionType.HTTP_REQUEST:
        arguments = http_request(config)
        result = http_actions.call(
            arguments["method"],
            arguments["url"],
            headers=arguments["headers"],
            body=arguments["body"],
            json_body=arguments["json_body"],
            expect=arguments["expect"],
        )
        # The URL may carry a key (?api_key=): the requester reads resources and output. The
        # answer itself is left whole, a later component may read a token from it.
        shown_url = redact_text(result.url)
        return ActionResult(
            resources=[f"{arguments['method']} {shown_url} ({result.status_code})"],
            output={**result.as_output(), "url": shown_url},
        )
    raise ActionConfigError(f"unknown action type {action_type!r}")
