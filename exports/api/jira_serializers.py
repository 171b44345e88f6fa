"""The seed's response models of the /api/jira/ export endpoints, as serializers (for the OpenAPI
schema and for rendering). Field names are the seed's, exactly."""

from __future__ import annotations

from rest_framework import serializers


class ExportStartResponseSerializer(serializers.Serializer):
    task_id = serializers.UUIDField()
    session_id = serializers.UUIDField()
    status = serializers.CharField(default="exporting")
    total_tickets = serializers.IntegerField()
    estimated_duration_minutes = serializers.IntegerField(
        help_text="tickets x the delay (EXPORT_TICKET_DELAY_SECONDS) + dependency creation"
    )
    jira_project_key = serializers.CharField()
    started_at = serializers.DateTimeField()


class ExportAlreadyRunningResponseSerializer(serializers.Serializer):
    task_id = serializers.UUIDField(help_text="The running export's task id")
    session_id = serializers.UUIDField()
    status = serializers.CharField(default="exporting")
    progress_percentage = serializers.FloatField()
    current_ticket_title = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField()


class ExportStatusResponseSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    task_id = serializers.UUIDField(allow_null=True)
    status = serializers.CharField(default="exporting", help_text='"exporting" (or "draft")')
    progress_percentage = serializers.FloatField()
    tickets_completed = serializers.IntegerField()
    total_tickets = serializers.IntegerField()
    current_ticket_title = serializers.CharField(allow_null=True)
    estimated_time_remaining_minutes = serializers.IntegerField(allow_null=True)


class ExportCompletedResponseSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    task_id = serializers.UUIDField(allow_null=True)
    status = serializers.CharField(default="completed")
    jira_tickets_created = serializers.IntegerField()
    dependencies_created = serializers.IntegerField()
    manual_fixes_needed = serializers.IntegerField()
    total_processing_time_minutes = serializers.FloatField()
    completed_at = serializers.DateTimeField()


class ExportFailedResponseSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    task_id = serializers.UUIDField(allow_null=True)
    status = serializers.CharField(default="failed")
    failed_at_ticket_order = serializers.IntegerField(allow_null=True)
    error_category = serializers.ChoiceField(
        choices=["user_fixable", "admin_required", "temporary"]
    )
    user_message = serializers.CharField()
    recovery_actions = serializers.ListField(child=serializers.CharField())
    retry_available = serializers.BooleanField()
    retry_attempts_used = serializers.IntegerField()


class ExportRetryResponseSerializer(serializers.Serializer):
    task_id = serializers.UUIDField(help_text="New task ID for the retry")
    session_id = serializers.UUIDField()
    status = serializers.CharField(default="exporting")
    retry_attempt = serializers.IntegerField()
    remaining_retries = serializers.IntegerField()
    resuming_from_ticket_order = serializers.IntegerField()
    preserved_successful_tickets = serializers.IntegerField()


class MaxRetriesExceededSerializer(serializers.Serializer):
    error_category = serializers.CharField(default="admin_required")
    user_message = serializers.CharField()
    recovery_actions = serializers.ListField(child=serializers.CharField())
    retry_attempts_used = serializers.IntegerField()
    first_error_at = serializers.DateTimeField(allow_null=True)


class JiraTicketReferenceSerializer(serializers.Serializer):
    ticket_id = serializers.UUIDField()
    jira_key = serializers.CharField()
    jira_url = serializers.URLField()
    title = serializers.CharField()


class ManualFixGuidanceSerializer(serializers.Serializer):
    jira_key = serializers.CharField()
    title = serializers.CharField()
    issue_type = serializers.CharField(help_text='e.g. "assignee_invalid", "sprint_not_found"')
    recommended_action = serializers.CharField()
    jira_url = serializers.CharField()


class OrphanedIssueSerializer(serializers.Serializer):
    jira_key = serializers.CharField()
    reason = serializers.CharField()


class ExportResultsResponseSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    total_tickets_created = serializers.IntegerField()
    jira_tickets = JiraTicketReferenceSerializer(many=True)
    dependencies_created = serializers.IntegerField()
    manual_fixes = ManualFixGuidanceSerializer(many=True)
    total_processing_time_minutes = serializers.FloatField()
    orphaned_issues = OrphanedIssueSerializer(
        many=True, help_text="Beyond the seed: issues with our marker that no ticket owns"
    )
