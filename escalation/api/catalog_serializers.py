"""Serializers of the service catalog API (``escalation.api.catalog``)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from escalation.models import CatalogBundle, CatalogComponent, ComponentExecution, Request
from escalation.services import catalog


class CatalogComponentSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="component_id")
    type = serializers.CharField(source="action_type")
    config = serializers.SerializerMethodField()

    class Meta:
        model = CatalogComponent
        fields = ["id", "position", "type", "config", "cleanup_instructions"]

    def get_config(self, component: CatalogComponent) -> dict[str, Any]:
        return catalog.shown_config(component.config)


class CatalogItemSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="name")
    components = CatalogComponentSerializer(many=True, read_only=True)
    inputs = serializers.SerializerMethodField()

    class Meta:
        model = CatalogBundle
        fields = ["id", "name", "kind", "version", "title", "description", "inputs", "components"]

    def get_inputs(self, bundle: CatalogBundle) -> list[dict[str, Any]]:
        return catalog.declared_inputs(bundle)


class RequestCreateSerializer(serializers.Serializer):
    """Strict: unknown keys are refused, ``request_data`` must be a JSON object."""

    catalog_item_id = serializers.CharField(max_length=255)
    request_data = serializers.JSONField(required=False, default=dict)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        if not isinstance(attrs.get("request_data"), dict):
            raise serializers.ValidationError({"request_data": ["Must be a JSON object."]})
        return attrs


class ComponentExecutionSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="component_id")

    class Meta:
        model = ComponentExecution
        fields = [
            "id",
            "position",
            "action_type",
            "status",
            "resources",
            "output",
            "error",
            "started_at",
            "finished_at",
        ]


class RequestSerializer(serializers.ModelSerializer):
    """A row of the seed's ``requests`` table, as it is."""

    class Meta:
        model = Request
        fields = [
            "id",
            "catalog_item_id",
            "user_id",
            "status",
            "request_data",
            "created_at",
            "updated_at",
            "completed_at",
            "escalation_ticket_id",
            "escalation_timestamp",
        ]


class RequestDetailSerializer(RequestSerializer):
    bundle_version = serializers.CharField(source="fulfillment.bundle_version", read_only=True)
    components = ComponentExecutionSerializer(source="executions", many=True, read_only=True)

    class Meta(RequestSerializer.Meta):
        fields = [*RequestSerializer.Meta.fields, "bundle_version", "components"]


class EscalationComponentSerializer(serializers.Serializer):
    id = serializers.CharField()
    position = serializers.IntegerField()
    action_type = serializers.CharField()
    status = serializers.CharField()
    resources = serializers.ListField(child=serializers.CharField())
    error = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class CleanupSerializer(serializers.Serializer):
    id = serializers.CharField()
    action_type = serializers.CharField()
    resources = serializers.ListField(child=serializers.CharField())
    instructions = serializers.CharField()


class EscalationTicketSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True)
    url = serializers.CharField()
    state = serializers.CharField(help_text="not escalated, queued, created or refused")
    last_error = serializers.CharField()
    summary = serializers.CharField()


class EscalationDetailSerializer(serializers.Serializer):
    request_id = serializers.CharField()
    status = serializers.CharField()
    escalated_at = serializers.DateTimeField(allow_null=True)
    bundle = serializers.DictField()
    failed_component = serializers.CharField()
    error = serializers.CharField()
    failed_at = serializers.DateTimeField(allow_null=True)
    ticket = EscalationTicketSerializer()
    components = EscalationComponentSerializer(many=True)
    cleanup = CleanupSerializer(many=True)
    request_data = serializers.JSONField()
