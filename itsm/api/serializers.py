"""Serializers of the tickets API (seed 003): ticket records, template metadata, requests.

Every string a caller sends that is stored or echoed back (job id, template name, variable names
and values) passes through :func:`portal.redaction.redact_text` here, at the edge: a token pasted
into a job id is kept as ``[REDACTED]``, never in a row, a log line or an error message. Invalid
text (lone surrogates, NUL, control characters) was already refused by the API's parser.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from itsm.config import TICKET_PLATFORMS
from itsm.models import Ticket
from portal.redaction import redact_text

MAX_VARIABLES = 50
MAX_VARIABLE_LENGTH = 32_000


class TextField(serializers.CharField):
    """Text only (DRF's CharField would turn ``0`` into ``"0"``), redacted when it is kept."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return redact_text(super().to_internal_value(data))


class QueryChoiceField(serializers.ChoiceField):
    """A choice in a query string where an empty value (``?platform=``) is an invalid choice,
    not an absent parameter."""

    def get_value(self, dictionary: Any) -> Any:
        if self.field_name in dictionary:
            return dictionary[self.field_name]
        return super().get_value(dictionary)


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": MAX_VARIABLES,
        "additionalProperties": {
            "anyOf": [
                {"type": "string", "maxLength": MAX_VARIABLE_LENGTH},
                {"type": "number"},
                {"type": "boolean"},
            ],
            "nullable": True,
        },
        "description": (
            f"Template variables: at most {MAX_VARIABLES}, each text (at most "
            f"{MAX_VARIABLE_LENGTH:,} characters), a number, a boolean or null (left out)."
        ),
    }
)
class VariablesField(serializers.Field):
    """``{name: value}``: text, numbers and booleans (null counts as not supplied); names and
    text values redacted."""

    default_error_messages = {
        "not_an_object": "Expected an object of variable names to values.",
        "too_many": f"at most {MAX_VARIABLES} variables",
        "not_a_value": "{name}: values must be text, numbers, booleans or null",
        "too_long": "{name}: at most {limit:,} characters",
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_an_object")
        if len(data) > MAX_VARIABLES:
            self.fail("too_many")
        variables: dict[str, Any] = {}
        for name, value in data.items():
            shown = redact_text(str(name))
            if value is not None and not isinstance(value, str | int | float | bool):
                self.fail("not_a_value", name=shown)
            if len(str(value)) > MAX_VARIABLE_LENGTH:
                self.fail("too_long", name=shown, limit=MAX_VARIABLE_LENGTH)
            variables[shown] = redact_text(value) if isinstance(value, str) else value
        return variables

    def to_representation(self, value: Any) -> Any:
        return value


class TicketSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    retries = serializers.SerializerMethodField()
    # The model's URLField would be documented as a URI, but a ticket has no link until the
    # platform has created it.
    external_url = serializers.CharField(
        read_only=True, help_text="The ticket's page on its platform; empty until it is created."
    )

    class Meta:
        model = Ticket
        fields = [
            "id", "platform", "status", "job_id", "template_name", "template_source",
            "variables", "fields", "external_id", "external_key", "external_url",
            "attempts", "retries", "retry_metadata", "error", "priority", "created_by",
            "created_at", "updated_at", "sent_at", "sla_response_due_at", "sla_due_at",
            "first_response_at", "resolved_at", "sla_breached", "sla_breached_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_retries(self, ticket: Ticket) -> int:
        """Attempts that failed transiently and were tried again (or redelivered later)."""
        return sum(1 for a in ticket.retry_metadata if a.get("outcome") == "retryable")


class FromTemplateTicketSerializer(TicketSerializer):
    """A ticket as from-template answers it: a dry run's is never saved, so it has no id yet."""

    id = serializers.IntegerField(read_only=True, allow_null=True, help_text="null for a dry run.")
    updated_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="null for a dry run."
    )


class TemplateMetadataSerializer(serializers.Serializer):
    name = serializers.CharField()
    platform = serializers.CharField()
    source = serializers.CharField()
    engine = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    fields = serializers.DictField(child=serializers.CharField(allow_blank=True))
    variables = serializers.ListField(child=serializers.CharField())


class TemplateQuerySerializer(serializers.Serializer):
    platform = QueryChoiceField(
        choices=TICKET_PLATFORMS, required=False, help_text="Only this platform's templates."
    )


class PreviewSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=TICKET_PLATFORMS)
    template_name = TextField(max_length=100)
    variables = VariablesField(required=False, default=dict)


class FromTemplateSerializer(PreviewSerializer):
    job_id = TextField(max_length=200)
    dry_run = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if isinstance(self.initial_data, dict) and "wait" in self.initial_data:
            # Said out loud: a caller still sending it would otherwise take a pending ticket
            # for a delivered one.
            raise serializers.ValidationError(
                {"wait": "no longer supported: poll GET /api/v1/tickets/{id} (the Location)"}
            )
        return attrs


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class PreviewResultSerializer(serializers.Serializer):
    fields = serializers.DictField(child=serializers.CharField(allow_blank=True))
    variables = serializers.ListField(child=serializers.CharField())
    missing = serializers.ListField(child=serializers.CharField())
    errors = FieldErrorSerializer(many=True)
    ok = serializers.BooleanField()


class FromTemplateResultSerializer(serializers.Serializer):
    created = serializers.BooleanField()
    dry_run = serializers.BooleanField()
    template = TemplateMetadataSerializer()
    ticket = FromTemplateTicketSerializer()
