"""The seed's models of the two validation endpoints, as serializers: ProjectValidationRequest and
ProjectValidationResponse (``POST /api/jira/validate-project``), AdfTestRequest and AdfTestResponse
(``POST /api/jira/test-adf-conversion/{session_id}``). Field names are the seed's, exactly; the
option shapes the seed leaves open (team members, priorities, warnings) are documented here."""

from __future__ import annotations

from rest_framework import serializers

from exports.api.sessions_serializers import (
    StrictBooleanField,
    StrictCharField,
    StrictFieldsMixin,
)
from exports.services import sessions as rules

# --- validate-project ---------------------------------------------------------------------------


class ProjectRequirementsSerializer(StrictFieldsMixin, serializers.Serializer):
    requires_sprint_assignment = StrictBooleanField()
    requires_assignee = StrictBooleanField()
    requires_priority_levels = StrictBooleanField()


class ProjectValidationRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    project_key = StrictCharField(max_length=32, help_text="A Jira project key, e.g. OPS.")
    user_requirements = ProjectRequirementsSerializer(
        help_text="What sessions need of the project: a missing one blocks, else it warns."
    )

    def validate_project_key(self, value: str) -> str:
        key = rules.normalize_project_key(value)
        if problem := rules.project_key_problem(key):
            raise serializers.ValidationError(problem)
        return key


class SprintOptionSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    state = serializers.CharField(help_text="active or future (closed sprints are not offered)")


class TeamMemberOptionSerializer(serializers.Serializer):
    account_id = serializers.CharField(help_text="The Jira account id a ticket's assignee takes.")
    display_name = serializers.CharField()


class PriorityOptionSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(help_text="The name a ticket's priority takes.")


class ValidationWarningSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="sprint, assignee or priority")
    message = serializers.CharField()


class ProjectValidationResponseSerializer(serializers.Serializer):
    project_key = serializers.CharField()
    project_name = serializers.CharField(allow_blank=True)
    validation_status = serializers.CharField(help_text="valid or invalid")
    can_create_tasks = serializers.BooleanField()
    can_view_project = serializers.BooleanField()
    available_sprints = SprintOptionSerializer(many=True)
    team_members = TeamMemberOptionSerializer(many=True)
    priority_levels = PriorityOptionSerializer(many=True)
    validation_warnings = ValidationWarningSerializer(many=True)
    blocking_issues = serializers.ListField(child=serializers.CharField())


# --- test-adf-conversion ------------------------------------------------------------------------


class AdfTestRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    ticket_ids = serializers.ListField(
        child=serializers.UUIDField(), allow_empty=True, max_length=rules.MAX_TICKETS,
        help_text="Tickets of the session to test; empty for all of them.",
    )  # fmt: skip
    include_attachments = StrictBooleanField(required=False, default=True)


class AdfTestResultSerializer(serializers.Serializer):
    ticket_id = serializers.UUIDField()
    ticket_title = serializers.CharField()
    status = serializers.CharField(help_text="passed or failed")
    adf_size_bytes = serializers.IntegerField(allow_null=True)
    character_reduction = serializers.FloatField(
        allow_null=True,
        help_text="1 - len(ADF JSON) / len(HTML): positive when the ADF is smaller than the HTML.",
    )
    error_message = serializers.CharField(allow_null=True)
    suggested_fix = serializers.CharField(allow_null=True)
    attachment_upload_tested = serializers.BooleanField()
    attachment_upload_status = serializers.CharField(
        allow_null=True, help_text="passed, failed or skipped"
    )


class AdfTestResponseSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    tickets_tested = serializers.IntegerField()
    all_passed = serializers.BooleanField()
    passed = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = AdfTestResultSerializer(many=True)
