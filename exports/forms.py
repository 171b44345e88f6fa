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
from exports.errors import ExportError
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


def read_new_session(form: forms.Form, cleaned: dict[str, Any]) -> rules.SessionInput | None:
    """The session ``form``'s fields describe, read by the API's serializer and checked by the
    service's rules of tickets as a set; problems become the form's errors (None then)."""
    for name, value in list(cleaned.items()):
        if isinstance(value, str) and (problem := check_text(value)):
            form.add_error(name, f"This text {problem}.")
    if form.errors:
        return None
    try:
        tickets = json.loads(cleaned["tickets"])
    except ValueError as exc:
        form.add_error("tickets", f"Not valid JSON: {exc}")
        return None
    body = SessionCreateSerializer(
        data={
            "jira_project_key": cleaned["jira_project_key"],
            "name": cleaned.get("name") or "",
            "tickets": tickets,
        }
    )
    if not body.is_valid():
        for field, detail in body.errors.items():
            target = field if field in form.fields else None
            for line in flatten_errors(detail, "" if target else field):
                form.add_error(target, line)
        return None
    session = body.to_session()
    try:
        rules.check_tickets(session.tickets)
    except ExportError as refusal:
        form.add_error("tickets", refusal.message)
        for path, problem in refusal.fields().items():
            form.add_error("tickets", f"{path}: {problem}")
        return None
    return rules.SessionInput(
        jira_project_key=session.jira_project_key,
        name=session.name,
        tickets=session.tickets,
        export_mode=cleaned.get("export_mode") or ExportSession.Mode.SEQUENTIAL,
    )


def tickets_field() -> forms.CharField:
    return forms.CharField(
        label="Tickets (JSON)",
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
        initial=json.dumps(EXAMPLE_TICKETS, indent=2),
        help_text=(
            "A list of tickets: order, title, description_html, and optionally assignee, sprint, "
            "priority, labels (no spaces) and depends_on (a list of orders)."
        ),
        strip=False,
    )


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
    tickets = tickets_field()

    session_input: rules.SessionInput | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self.session_input = read_new_session(self, cleaned)
        return cleaned


class SessionAdminForm(forms.ModelForm):
    """The admin's add form: the same fields and rules as the new-session page."""

    name = forms.CharField(
        label="Name", max_length=rules.MAX_NAME, required=False,
        help_text="Optional; defaults to the project and today's date.",
    )  # fmt: skip
    tickets = tickets_field()

    class Meta:
        model = ExportSession
        fields = ["jira_project_key", "export_mode"]

    session_input: rules.SessionInput | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self.session_input = read_new_session(self, cleaned)
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
