"""Forms of the exports pages and admin: a new session, a ticket's edit, an attachment.

They hold no rule of their own: a new session is read by the API's serializer (the same field
rules, the same messages) and created by ``exports.services.sessions``; a ticket's edit is
checked by the service's field rules.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from exports.api.sessions_serializers import SessionCreateSerializer
from exports.models import ExportSession
from exports.services import sessions as rules
from portal.text import check_text

EXAMPLE_TICKETS = [
    {
        "order": 1,
        "title": "Create the product catalog",
        "description_html": "<p>Set up the <strong>catalog</strong> service.</p>",
        "labels": ["catalog"],
    },
    {
        "order": 2,
        "title": "Configure product fields",
        "description_html": "<ul><li>size</li><li>colour</li></ul>",
        "priority": "High",
        "depends_on": [1],
    },
]


def flatten_errors(detail: Any, path: str = "") -> list[str]:
    """DRF's nested errors as ``"tickets.1.labels: ..."`` lines, for a form to show."""
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            lines += flatten_errors(value, f"{path}.{key}" if path else str(key))
        return lines
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [f"{path}: {' '.join(str(item) for item in detail)}" if path else str(detail)]
        lines = []
        for index, item in enumerate(detail):
            if item:
                lines += flatten_errors(item, f"{path}.{index}" if path else str(index))
        return lines
    return [f"{path}: {detail}" if path else str(detail)]


class NewSessionForm(forms.Form):
    """The project, a name, and the tickets as JSON (the API's shape, so a planning tool's
    export pastes straight in); each ticket is then reviewed and edited on the session's page."""

    jira_project_key = forms.CharField(
        label="Jira project key", max_length=32, help_text="e.g. OPS",
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "spellcheck": "false"}),
    )  # fmt: skip
    name = forms.CharField(
        label="Name", max_length=rules.MAX_NAME, required=False,
        help_text="Optional; defaults to the project and today's date.",
    )  # fmt: skip
    export_mode = forms.ChoiceField(
        label="Export mode", choices=ExportSession.Mode.choices,
        initial=ExportSession.Mode.SEQUENTIAL,
        help_text="Bulk creates up to 50 issues per call to Jira.",
    )  # fmt: skip
    tickets = forms.CharField(
        label="Tickets (JSON)",
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
        initial=json.dumps(EXAMPLE_TICKETS, indent=2),
        help_text=(
            "A list of tickets: order, title, description_html, and optionally assignee, sprint, "
            "priority, labels (no spaces) and depends_on (a list of orders)."
        ),
        strip=False,
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            if isinstance(value, str) and (problem := check_text(value)):
                self.add_error(name, f"This text {problem}.")
        if self.errors:
            return cleaned
        try:
            tickets = json.loads(cleaned["tickets"])
        except ValueError as exc:
            self.add_error("tickets", f"Not valid JSON: {exc}")
            return cleaned
        body = SessionCreateSerializer(
            data={
                "jira_project_key": cleaned["jira_project_key"],
                "name": cleaned.get("name", ""),
                "tickets": tickets,
            }
        )
        if not body.is_valid():
            for field, detail in body.errors.items():
                target = field if field in self.fields else None
                for line in flatten_errors(detail, "" if target else field):
                    self.add_error(target, line)
            return cleaned
        session = body.to_session()
        self.session_input = rules.SessionInput(
            jira_project_key=session.jira_project_key,
            name=session.name,
            tickets=session.tickets,
            export_mode=cleaned["export_mode"],
        )
        return cleaned


class TicketHtmlForm(forms.Form):
    """The review page's edit of a ticket's HTML description."""

    description_html = forms.CharField(
        label="Description (HTML)",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "code"}),
    )

    def clean_description_html(self) -> str:
        value = self.cleaned_data["description_html"]
        problem = rules.field_problems({"description_html": value}).get("description_html")
        if problem:
            raise forms.ValidationError(problem)
        return value


class AttachmentForm(forms.Form):
    file = forms.FileField(label="Attachment")
