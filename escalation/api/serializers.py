"""Serializers of ``/api/v1/ci/``: what a CI system reports, and failures and escalations out."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse as api_reverse

from escalation.models import Escalation, FailureEvent, FailureType, OverrideRequest, SlaRecord

REPOSITORY_PATTERN = r"^[\w.-]+(?:/[\w.-]+)*$"


class LogField(serializers.CharField):
    """A log's text, megabytes long. DRF's CharField checks each character for NUL and
    surrogates in a Python loop (~0.1 s a megabyte); the API's JSON parser has already refused
    both for every string of the body (portal.text), so those two validators are left out."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [
            validator
            for validator in self.validators
            if type(validator).__name__
            not in ("ProhibitNullCharactersValidator", "ProhibitSurrogateCharactersValidator")
        ]


class FailureReportSerializer(serializers.Serializer):
    """``POST /api/v1/ci/failures``: one failed job. The log comes inline (``log``, text) or as a
    multipart upload of the same name."""

    repository = serializers.RegexField(
        REPOSITORY_PATTERN, max_length=200, help_text="owner/name, e.g. acme/shop"
    )
    pr_number = serializers.IntegerField(
        min_value=1, max_value=2_147_483_647, required=False, allow_null=True
    )
    commit = serializers.RegexField(
        r"^[0-9a-fA-F]{4,64}$", required=False, allow_blank=True, default=""
    )
    workflow = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    job = serializers.CharField(max_length=200)
    run_id = serializers.RegexField(r"^[\w.-]{1,64}$", help_text="The CI system's run id")
    run_attempt = serializers.IntegerField(min_value=1, max_value=10_000, default=1)
    exit_code = serializers.IntegerField(
        min_value=-2_147_483_648, max_value=2_147_483_647, required=False, allow_null=True
    )
    log = LogField(
        required=False, allow_blank=True, trim_whitespace=False, default="",
        help_text="The job's log as text (or upload it as a multipart file field named log).",
    )  # fmt: skip
    changed_files = serializers.ListField(
        child=serializers.CharField(max_length=500), max_length=10_000, required=False, default=list
    )
    author = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    def validate_job(self, value: str) -> str:
        if "\n" in value or "\r" in value:
            raise serializers.ValidationError("The job name is one line.")
        return value.strip()


class JobPassedSerializer(serializers.Serializer):
    """``POST /api/v1/ci/job-passed``: a job passed; earlier failed attempts on the same commit
    were flaky."""

    repository = serializers.RegexField(REPOSITORY_PATTERN, max_length=200)
    commit = serializers.RegexField(r"^[0-9a-fA-F]{4,64}$")
    job = serializers.CharField(max_length=200)
    run_attempt = serializers.IntegerField(min_value=1, max_value=10_000)


class ReclassifySerializer(serializers.Serializer):
    failure_type = serializers.ChoiceField(choices=FailureType.choices)
    justification = serializers.CharField(min_length=5, max_length=1000)


class ResolveSerializer(serializers.Serializer):
    reason = serializers.CharField(min_length=3, max_length=200)


class SlaCorrectionSerializer(serializers.Serializer):
    started_at = serializers.DateTimeField(help_text="The correct start of the SLA timer")
    reason = serializers.CharField(min_length=5, max_length=500)


class SlaSerializer(serializers.ModelSerializer):
    remaining_seconds = serializers.SerializerMethodField()

    class Meta:
        model = SlaRecord
        fields = [
            "status", "started_at", "deadline", "resolved_at", "exceeded_at",
            "assigned_teams", "remaining_seconds",
        ]  # fmt: skip
        read_only_fields = fields

    def get_remaining_seconds(self, record: SlaRecord) -> int | None:
        from escalation.services.sla import remaining_seconds

        if record.status != SlaRecord.Status.ACTIVE:
            return None
        return remaining_seconds(record)


class EscalationSerializer(serializers.ModelSerializer):
    sla = SlaSerializer(read_only=True)
    # Empty until the ticket exists: text, not a URI format that "" would break.
    tracker_url = serializers.CharField(read_only=True)
    teams = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    links = serializers.SerializerMethodField()

    class Meta:
        model = Escalation
        fields = [
            "id", "repository", "failure_type", "status", "priority", "fingerprint", "signature",
            "occurrences", "first_seen_at", "last_seen_at", "resolved_at", "resolution", "teams",
            "tracker", "tracker_key", "tracker_url", "sla", "routing", "links",
        ]  # fmt: skip
        read_only_fields = fields

    def get_links(self, escalation: Escalation) -> dict[str, str]:
        request = self.context.get("request")
        return {
            "self": api_reverse("api:ci-escalation-detail", args=[escalation.pk], request=request),
            "failures": api_reverse("api:ci-failure-list", request=request)
            + f"?escalation={escalation.pk}",
            "page": _absolute(
                request, reverse("escalation:escalation-detail", args=[escalation.pk])
            ),
        }


def _absolute(request, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


class FailureSerializer(serializers.ModelSerializer):
    escalation = serializers.PrimaryKeyRelatedField(read_only=True)
    job_url = serializers.CharField(read_only=True)  # empty when the CI system gave none
    links = serializers.SerializerMethodField()

    class Meta:
        model = FailureEvent
        fields = [
            "id", "repository", "pr_number", "commit", "workflow", "job", "run_id", "run_attempt",
            "exit_code", "author", "changed_files", "source", "job_url", "failure_type",
            "rule_name", "evidence", "log_excerpt", "log_bytes", "fingerprint", "signature",
            "failing_tests", "status", "escalation", "created_at", "links",
        ]  # fmt: skip
        read_only_fields = fields

    def get_links(self, failure: FailureEvent) -> dict[str, str | None]:
        request = self.context.get("request")
        return {
            "self": api_reverse("api:ci-failure-detail", args=[failure.pk], request=request),
            "escalation": api_reverse(
                "api:ci-escalation-detail", args=[failure.escalation_id], request=request
            )
            if failure.escalation_id
            else None,
            "page": _absolute(request, reverse("escalation:failure-detail", args=[failure.pk])),
        }


class FlakyTestSerializer(serializers.Serializer):
    repository = serializers.CharField()
    test = serializers.CharField()
    count = serializers.IntegerField()
    last_seen = serializers.DateTimeField()


# --- overrides and the gate ------------------------------------------------------------------


@extend_schema_field({"type": "string", "enum": OverrideRequest.Status.values})
class OverrideStatusField(serializers.ChoiceField):
    """The request's status, its enum inline (a named one would collide with the other models'
    "status" enums in the schema)."""

    def __init__(self, **kwargs):
        super().__init__(choices=OverrideRequest.Status.choices, **kwargs)


class OverrideRequestCreateSerializer(serializers.Serializer):
    """``POST /api/v1/ci/failures/{id}/overrides``."""

    justification = serializers.CharField(min_length=10, max_length=2000)
    kind = serializers.ChoiceField(
        choices=OverrideRequest.Kind.choices, default=OverrideRequest.Kind.HOTFIX
    )


class OverrideDecisionSerializer(serializers.Serializer):
    reason = serializers.CharField(min_length=3, max_length=500)


class OverrideRequestSerializer(serializers.ModelSerializer):
    status = OverrideStatusField(read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )  # null until decided
    followup_url = serializers.CharField(read_only=True)  # empty until the ticket exists
    failure_type = serializers.CharField(source="failure.failure_type", read_only=True)
    repository = serializers.CharField(source="failure.repository", read_only=True)

    class Meta:
        model = OverrideRequest
        fields = [
            "id", "failure", "escalation", "repository", "failure_type", "kind", "justification",
            "requested_by", "status", "policy", "infrastructure_confirmed", "decided_by",
            "decided_at", "decision_reason", "escalated_at", "followup_key", "followup_url",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class GateSerializer(serializers.Serializer):
    """``GET /api/v1/ci/failures/{id}/gate``: may the pipeline proceed past this failure?"""

    failure = serializers.IntegerField()
    failure_type = serializers.CharField()
    allowed = serializers.BooleanField()
    reason = serializers.CharField()
    policy = serializers.CharField()
    override = OverrideRequestSerializer(allow_null=True)
