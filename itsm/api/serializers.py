"""Serializers of the tickets API (seed 003): ticket records, template metadata, requests."""

from __future__ import annotations

from rest_framework import serializers

from itsm.config import TICKET_PLATFORMS
from itsm.models import Ticket


class TicketSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    retries = serializers.SerializerMethodField()

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


class TemplateMetadataSerializer(serializers.Serializer):
    name = serializers.CharField()
    platform = serializers.CharField()
    source = serializers.CharField()
    engine = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    fields = serializers.DictField(child=serializers.CharField(allow_blank=True))
    variables = serializers.ListField(child=serializers.CharField())


class TemplateQuerySerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=TICKET_PLATFORMS, required=False)


class PreviewSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=TICKET_PLATFORMS)
    template_name = serializers.CharField(max_length=100)
    variables = serializers.DictField(child=serializers.JSONField(), required=False, default=dict)

    def validate_variables(self, value: dict) -> dict:
        if len(value) > 50:
            raise serializers.ValidationError("at most 50 variables")
        for name, item in value.items():
            if isinstance(item, dict | list):
                raise serializers.ValidationError(f"{name}: values must be text or numbers")
            if len(str(item)) > 32_000:
                raise serializers.ValidationError(f"{name}: at most 32,000 characters")
        return value


class FromTemplateSerializer(PreviewSerializer):
    job_id = serializers.CharField(max_length=200)
    dry_run = serializers.BooleanField(required=False, default=False)
    wait = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Wait (up to ITSM_API_WAIT_SECONDS) for the worker to deliver the ticket; "
        "then a rejection answers 502 and an unavailable platform 503.",
    )


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
    ticket = TicketSerializer()
