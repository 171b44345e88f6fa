"""Serializers of ``/api/v1/sessions``: a session and its tickets in, sessions out.

Strict on the way in: an unknown field, a string where a number belongs (or the reverse) and a
value the service's field rules refuse (``exports.services.sessions``: labels, titles, lengths,
text) answer 400 naming the field's path. The rules of the tickets as a set (orders, dependencies,
cycles) are the service's, answered 422.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exports.models import ExportSession, ExportTicket
from exports.services import sessions as rules


class StrictFieldsMixin:
    """Refuses fields the serializer does not declare (a typo must not be silently dropped)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))  # type: ignore[attr-defined]
            if unknown:
                raise serializers.ValidationError(
                    {name: "Unknown field." for name in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(serializers.CharField):
    """Text only: DRF's CharField would turn ``12`` or ``true`` into a string."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """Whole JSON numbers only: not ``"3"``, ``3.5`` or ``true``."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """``true`` or ``false``, not ``"yes"`` or ``1``."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def checked(problem_of):
    """A DRF validator from one of the service's ``*_problem`` functions."""

    def validate(value):
        if problem := problem_of(value):
            raise serializers.ValidationError(problem)

    return validate


class TicketCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    order = StrictIntegerField(
        min_value=0, max_value=rules.MAX_ORDER,
        help_text="The ticket's place in the session; unique within it.",
    )  # fmt: skip
    title = StrictCharField(
        max_length=rules.MAX_TITLE, trim_whitespace=False, validators=[checked(rules.title_problem)]
    )
    description_html = StrictCharField(
        allow_blank=True, trim_whitespace=False, max_length=rules.MAX_DESCRIPTION_HTML,
        help_text="The description as HTML; converted to ADF when exported.",
    )  # fmt: skip
    assignee = StrictCharField(
        required=False, allow_blank=True, default="", max_length=rules.MAX_ASSIGNEE,
        help_text="A Jira account id; an invalid one leaves the issue unassigned (a manual fix).",
    )  # fmt: skip
    sprint = StrictCharField(
        required=False, allow_blank=True, default="", max_length=rules.MAX_SPRINT,
        help_text="A sprint id or name; one not found leaves the issue out of sprints.",
    )  # fmt: skip
    priority = StrictCharField(
        required=False, allow_blank=True, default="", max_length=rules.MAX_PRIORITY,
        help_text="A priority name; one not available gives the project's default.",
    )  # fmt: skip
    labels = serializers.ListField(
        child=StrictCharField(trim_whitespace=False, validators=[checked(rules.label_problem)]),
        required=False, default=list, max_length=rules.MAX_LABELS,
        help_text="Jira labels: no spaces.",
    )  # fmt: skip
    depends_on = serializers.ListField(
        child=StrictIntegerField(min_value=0, max_value=rules.MAX_ORDER),
        required=False, default=list, max_length=rules.MAX_DEPENDENCIES,
        help_text="Orders of the tickets of this session that must come first (Blocks links).",
    )  # fmt: skip

    def validate_assignee(self, value: str) -> str:
        return self._line(value, rules.MAX_ASSIGNEE)

    def validate_sprint(self, value: str) -> str:
        return self._line(value, rules.MAX_SPRINT)

    def validate_priority(self, value: str) -> str:
        return self._line(value, rules.MAX_PRIORITY)

    @staticmethod
    def _line(value: str, max_length: int) -> str:
        if problem := rules.text_problem(value, max_length=max_length, single_line=True):
            raise serializers.ValidationError(problem)
        return value

    def to_ticket(self, data: dict[str, Any]) -> rules.TicketInput:
        return rules.TicketInput(
            order=data["order"],
            title=data["title"],
            description_html=data["description_html"],
            assignee=data["assignee"],
            sprint=data["sprint"],
            priority=data["priority"],
            labels=tuple(data["labels"]),
            depends_on=tuple(data["depends_on"]),
        )


class TicketUpdateSerializer(TicketCreateSerializer):
    """``PATCH /api/v1/sessions/{id}/tickets/{ticket_id}``: any of the editable fields (the order
    and the dependencies are the session's shape, fixed once created)."""

    order = None
    depends_on = None

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("partial", True)
        super().__init__(*args, **kwargs)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Send at least one field to change.")
        return attrs


class SessionCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    """``POST /api/v1/sessions``: a session and its tickets, created in one transaction."""

    jira_project_key = StrictCharField(
        max_length=32, help_text="The Jira project the tickets go to, e.g. OPS."
    )
    name = StrictCharField(
        required=False, allow_blank=True, default="", max_length=rules.MAX_NAME,
        help_text="Defaults to '<KEY> planning session <date>'.",
    )  # fmt: skip
    tickets = TicketCreateSerializer(many=True, allow_empty=False, max_length=rules.MAX_TICKETS)

    def validate_jira_project_key(self, value: str) -> str:
        key = rules.normalize_project_key(value)
        if problem := rules.project_key_problem(key):
            raise serializers.ValidationError(problem)
        return key

    def validate_name(self, value: str) -> str:
        if problem := rules.text_problem(value, max_length=rules.MAX_NAME, single_line=True):
            raise serializers.ValidationError(problem)
        return value

    def to_session(self) -> rules.SessionInput:
        data = self.validated_data
        child = self.fields["tickets"].child
        return rules.SessionInput(
            jira_project_key=data["jira_project_key"],
            name=data["name"],
            tickets=tuple(child.to_ticket(ticket) for ticket in data["tickets"]),
        )


# --- out ------------------------------------------------------------------------------------------


class AttachmentSerializer(serializers.Serializer):
    name = serializers.CharField()
    size = serializers.IntegerField(allow_null=True, help_text="Bytes; null if the file is gone.")
    uploaded_to_jira = serializers.BooleanField()


def attachment_of(ticket: ExportTicket) -> dict[str, Any] | None:
    if not ticket.attachment:
        return None
    try:
        size = ticket.attachment.size
    except OSError:
        size = None
    return {
        "name": ticket.attachment.name.rsplit("/", 1)[-1],
        "size": size,
        "uploaded_to_jira": ticket.attachment_uploaded,
    }


class ExportTicketSerializer(serializers.ModelSerializer):
    depends_on = serializers.SerializerMethodField(help_text="Orders this ticket depends on.")
    attachment = serializers.SerializerMethodField()
    # Empty until exported: text, not a URI format that "" would break.
    jira_ticket_url = serializers.CharField(read_only=True)

    class Meta:
        model = ExportTicket
        fields = [
            "id", "order", "title", "description_html", "issue_type", "assignee", "sprint",
            "priority", "labels", "depends_on", "attachment", "jira_export_status",
            "jira_ticket_key", "jira_ticket_url", "exported_at", "error_message",
        ]  # fmt: skip
        read_only_fields = fields

    def get_depends_on(self, ticket: ExportTicket) -> list[int]:
        return sorted(blocker.order for blocker in ticket.depends_on.all())

    @extend_schema_field(AttachmentSerializer(allow_null=True))
    def get_attachment(self, ticket: ExportTicket) -> dict[str, Any] | None:
        return attachment_of(ticket)


class SessionSummarySerializer(serializers.ModelSerializer):
    """A session in the list: counts, not tickets."""

    status = serializers.CharField(
        source="api_status", help_text="draft, exporting, completed or failed"
    )
    ticket_count = serializers.IntegerField(read_only=True)
    exported_count = serializers.IntegerField(read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportSession
        fields = [
            "id", "name", "jira_project_key", "status", "current_stage", "export_mode",
            "ticket_count", "exported_count", "export_retry_count", "created_by", "created_at",
            "completed_at", "page_url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_page_url(self, session: ExportSession) -> str:
        return reverse("exports:session-detail", args=[session.pk])


class SessionDetailSerializer(SessionSummarySerializer):
    """A session with its tickets, their export status and Jira keys."""

    tickets = ExportTicketSerializer(many=True, read_only=True)
    error_category = serializers.CharField(
        read_only=True,
        help_text="The last failure's category: user_fixable, admin_required, temporary ('' none)",
    )

    class Meta(SessionSummarySerializer.Meta):
        fields = [
            *SessionSummarySerializer.Meta.fields,
            "export_task_id", "export_started_at", "export_failed_at", "failed_at_ticket_order",
            "error_category", "error_message", "recovery_actions", "tickets",
        ]  # fmt: skip
        read_only_fields = fields
