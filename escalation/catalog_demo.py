"""The demo service catalog for ``make run`` (``manage.py load_demo`` calls
``load_demo_catalog`` through ``settings.PORTAL_DEMO_LOADERS``).

- ``demo-onboarding`` (bundle, four components): a Jira access ticket, a Slack welcome, an HR
  account through ``http-request``, a ServiceNow laptop order. The third fails against the
  bundled fakes (they serve no HR system: the call answers 404), so submitting it shows an
  escalation: the request becomes ``escalated`` and the fake Jira receives the escalation ticket
  listing the two succeeded components, their resources and cleanup steps, and the request data.
- ``demo-service-check`` (bundle, three components, all succeed): the fakes' health through
  ``http-request``, a Linear issue that reads its answer, a Slack note.
- ``demo-hello`` (item, one component): a Slack message.

Idempotent: each run updates the demo bundles to the current fakes' address (their port may
change between runs).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from escalation.models import CatalogBundle, CatalogComponent

UNREACHABLE = "https://hr.example.invalid"  # not on any allow-list: refused, so it still fails


def fakes_origin() -> str:
    """The bundled fakes' address (the Jira fake's origin), or "" when Jira is a real one."""
    base = settings.ITSM_ENDPOINTS.get("JIRA_BASE_URL") or ""
    parts = urlsplit(base)
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and parts.path.rstrip("/") == "/jira":
        return f"{parts.scheme}://{parts.netloc}"
    return ""


def demo_bundles(origin: str) -> list[dict[str, Any]]:
    hr = f"{origin}/hr/api/v1/accounts" if origin else f"{UNREACHABLE}/api/v1/accounts"
    health = f"{origin}/_fake/health" if origin else f"{UNREACHABLE}/health"
    return [
        {
            "name": "demo-onboarding",
            "version": "1.2.0",
            "kind": CatalogBundle.Kind.BUNDLE,
            "title": "Onboard a new employee (demo: fails at step 3)",
            "description": "Access ticket, welcome message, HR account, laptop. The HR system is "
            "not part of the demo, so step 3 fails and the request is escalated to Jira.",
            "inputs": [
                {"name": "full_name", "label": "Full name", "required": True},
                {"name": "email", "label": "E-mail", "required": True},
                {"name": "start_date", "label": "Start date", "required": False,
                 "help": "YYYY-MM-DD"},
            ],
            "components": [
                ("access_ticket", "jira-ticket", {
                    "ticket": {
                        "project": "DEMO", "issueType": "Task", "priority": "Medium",
                        "summaryTemplate": "Grant system access to {{ request.data.full_name }}",
                        "descriptionTemplate": "New employee {{ request.data.full_name }} "
                        "({{ request.data.email }}) starts {{ request.data.start_date | "
                        "default('soon') }}. Requested by {{ request.user.username }}.",
                        "labels": ["onboarding"],
                    }
                }, "Close the access ticket as Won't Do and revoke any access already granted."),
                ("welcome_message", "slack-message", {
                    "message": {
                        "text": "Welcome {{ request.data.full_name }}! Access is tracked in "
                        "{{ components.access_ticket.output.key }}."
                    }
                }, "Post a follow-up in the channel: the onboarding is delayed."),
                ("hr_account", "http-request", {
                    "request": {
                        "method": "POST", "url": hr, "expect": [201],
                        "json": {
                            "name": "{{ request.data.full_name }}",
                            "email": "{{ request.data.email }}",
                            "access_ticket": "{{ components.access_ticket.output.key }}",
                        },
                    }
                }, "Delete the HR account for the employee if it was created."),
                ("laptop_order", "servicenow-ticket", {
                    "ticket": {
                        "short_description": "Laptop for {{ request.data.full_name }}",
                        "description": "Access ticket {{ components.access_ticket.output.key }}",
                        "priority": "4",
                    }
                }, "Cancel the laptop request in ServiceNow."),
            ],
        },
        {
            "name": "demo-service-check",
            "version": "1.0.0",
            "kind": CatalogBundle.Kind.BUNDLE,
            "title": "Check a service and record it (demo: succeeds)",
            "description": "Calls the fakes' health endpoint, files a Linear issue with the "
            "answer and posts to Slack.",
            "inputs": [{"name": "service", "label": "Service", "required": True}],
            "components": [
                ("health", "http-request", {"request": {"method": "GET", "url": health}},
                 "Nothing to clean up: a read-only call."),
                ("status_issue", "linear-issue", {
                    "issue": {
                        "team": "PLT", "priority": 4,
                        "title": "Service check for {{ request.data.service }}",
                        "description": "Health answered {{ components.health.output.status_code }}"
                        " (ok: {{ components.health.output.json.ok }}).",
                    }
                }, "Cancel the Linear issue."),
                ("notify", "slack-message", {
                    "message": {
                        "text": "{{ request.data.service }} checked: "
                        "{{ components.status_issue.output.key }}"
                    }
                }, "Post a correction in the channel."),
            ],
        },
        {
            "name": "demo-hello",
            "version": "1.0.0",
            "kind": CatalogBundle.Kind.ITEM,
            "title": "Say hello on Slack (demo item)",
            "description": "One Slack message.",
            "inputs": [{"name": "text", "label": "Message", "required": True}],
            "components": [
                ("hello", "slack-message",
                 {"message": {"text": "{{ request.user.username }} says: {{ request.data.text }}"}},
                 "Delete the message in Slack."),
            ],
        },
    ]  # fmt: skip


@transaction.atomic
def load_demo_catalog() -> str:
    origin = fakes_origin()
    names = []
    for spec in demo_bundles(origin):
        components = spec.pop("components")
        bundle, _ = CatalogBundle.objects.update_or_create(name=spec["name"], defaults=spec)
        bundle.components.all().delete()
        CatalogComponent.objects.bulk_create(
            CatalogComponent(
                bundle=bundle,
                position=position,
                component_id=component_id,
                action_type=action_type,
                config=config,
                cleanup_instructions=cleanup,
            )
            for position, (component_id, action_type, config, cleanup) in enumerate(
                components, start=1
            )
        )
        names.append(bundle.name)
    return f"Demo service catalog: {', '.join(names)} (submit one at /ci/requests/new/)"
