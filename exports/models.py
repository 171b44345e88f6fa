"""Tables of the exports app: planning sessions whose tickets become Jira issues (seed 001).

A session holds ordered tickets (HTML descriptions, optional attachment, dependencies between
tickets). Exporting it is long work whose progress is state (DESIGN.md): the session row carries
the seed's export tracking fields, each ticket its own ``jira_export_status`` and Jira key, stored
the moment Jira answers. Every state change writes an ``ExportEvent`` (the audit trail); field
fallbacks leave a ``ManualFix``; issues created in Jira that could not be tied back to a ticket
are listed as ``OrphanedIssue`` for cleanup.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ExportSession(models.Model):
    """A planning session: the seed's ``sessions`` table with its export tracking fields."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        EXPORTING = "exporting", "Exporting"
        COMPLETED = "completed", "Completed"
        # The seed's SQL stores ``export_failed``; the API says ``failed`` (see ``api_status``).
        EXPORT_FAILED = "export_failed", "Export failed"

    class ErrorCategory(models.TextChoices):
        USER_FIXABLE = "user_fixable", "User fixable"
        ADMIN_REQUIRED = "admin_required", "Admin required"
        TEMPORARY = "temporary", "Temporary"

    class Mode(models.TextChoices):
        SEQUENTIAL = "sequential", "Sequential (one issue per call)"
        BULK = "bulk", "Bulk (up to 50 issues per call)"

    MAX_RETRIES = 3

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    jira_project_key = models.CharField(max_length=32)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    # 'review' while tickets are edited, 'jira_export' while exporting, 'completed' at the end.
    current_stage = models.CharField(max_length=200, default="review")
    export_mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.SEQUENTIAL)

    export_task_id = models.UUIDField(null=True, blank=True)
    export_started_at = models.DateTimeField(null=True, blank=True)
    export_failed_at = models.DateTimeField(null=True, blank=True)
    failed_at_ticket_order = models.IntegerField(null=True, blank=True)
    export_retry_count = models.PositiveIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    # When the first export of this session started (the seed's 422 body reports
    # ``first_error_at``; this is when that first failure happened).
    first_error_at = models.DateTimeField(null=True, blank=True)

    # The last failure, as the status endpoint and the failure message report it.
    error_category = models.CharField(
        max_length=20, choices=ErrorCategory.choices, blank=True, default=""
    )
    error_message = models.TextField(blank=True, default="")
    recovery_actions = models.JSONField(default=list, blank=True)

    # Progress, written as the export goes (the WebSocket and the status endpoint read it).
    current_ticket_title = models.CharField(max_length=255, blank=True, default="")
    dependencies_created = models.PositiveIntegerField(default=0)
    processing_seconds = models.FloatField(default=0.0)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="export_sessions",
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.jira_project_key})"

    @property
    def api_status(self) -> str:
        """The seed's API vocabulary: ``exporting``, ``completed``, ``failed`` (or ``draft``)."""
        return "failed" if self.status == self.Status.EXPORT_FAILED else self.status


class ExportTicket(models.Model):
    """One ticket of a session, and what became of it in Jira."""

    class ExportStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        EXPORTED = "exported", "Exported"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(ExportSession, on_delete=models.CASCADE, related_name="tickets")
    order = models.PositiveIntegerField()
    title = models.CharField(max_length=255)
    description_html = models.TextField(blank=True, default="")
    issue_type = models.CharField(max_length=64, default="Task")
    attachment = models.FileField(upload_to="exports/attachments/%Y/%m/", blank=True, null=True)
    assignee = models.CharField(max_length=128, blank=True, default="")
    sprint = models.CharField(max_length=128, blank=True, default="")
    priority = models.CharField(max_length=32, blank=True, default="")
    labels = models.JSONField(default=list, blank=True)
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, through="TicketDependency",
        through_fields=("blocked", "blocker"), related_name="blocks", blank=True,
    )  # fmt: skip

    jira_export_status = models.CharField(
        max_length=20, choices=ExportStatus.choices, default=ExportStatus.PENDING
    )
    jira_issue_id = models.CharField(max_length=32, blank=True, default="")
    jira_ticket_key = models.CharField(max_length=32, blank=True, default="")
    jira_ticket_url = models.URLField(max_length=500, blank=True, default="")
    exported_at = models.DateTimeField(null=True, blank=True)
    attachment_uploaded = models.BooleanField(default=False)
    error_message = models.TextField(blank=True, default="")

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["session", "order"]
        constraints = [
            models.UniqueConstraint(fields=["session", "order"], name="export_ticket_order_unique")
        ]

    def __str__(self) -> str:
        return f"#{self.order} {self.title}"

    @property
    def idempotency_key(self) -> str:
        """The marker the Jira issue carries, searched before any create is retried, so a crash
        between Jira's answer and our commit never duplicates the issue."""
        return f"export-{self.id}"


class TicketDependency(models.Model):
    """``blocker`` must be done before ``blocked``: a ``Blocks`` link in Jira once both exist."""

    blocker = models.ForeignKey(ExportTicket, on_delete=models.CASCADE, related_name="+")
    blocked = models.ForeignKey(ExportTicket, on_delete=models.CASCADE, related_name="+")
    jira_link_created = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="ticket_dependency_unique"),
            models.CheckConstraint(
                condition=~models.Q(blocker=models.F("blocked")), name="ticket_dependency_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.blocker} blocks {self.blocked}"


class ManualFix(models.Model):
    """A graceful fallback taken during export, with what to correct in Jira afterwards."""

    class IssueType(models.TextChoices):
        ASSIGNEE_INVALID = "assignee_invalid", "Assignee invalid"
        SPRINT_NOT_FOUND = "sprint_not_found", "Sprint not found"
        PRIORITY_UNAVAILABLE = "priority_unavailable", "Priority not available"
        ATTACHMENT_FAILED = "attachment_failed", "Attachment not uploaded"
        LINK_FAILED = "link_failed", "Dependency link not created"

    session = models.ForeignKey(
        ExportSession, on_delete=models.CASCADE, related_name="manual_fixes"
    )
    ticket = models.ForeignKey(ExportTicket, on_delete=models.CASCADE, related_name="manual_fixes")
    issue_type = models.CharField(max_length=32, choices=IssueType.choices)
    recommended_action = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["ticket__order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "issue_type"], name="manual_fix_once")
        ]

    def __str__(self) -> str:
        return f"{self.ticket}: {self.get_issue_type_display()}"


class OrphanedIssue(models.Model):
    """An issue our marker found in Jira that no ticket could be tied to: clean it up by hand."""

    session = models.ForeignKey(ExportSession, on_delete=models.CASCADE, related_name="orphans")
    ticket = models.ForeignKey(
        ExportTicket, null=True, blank=True, on_delete=models.SET_NULL, related_name="orphans"
    )
    jira_key = models.CharField(max_length=32)
    reason = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "jira_key"], name="orphan_once")]

    def __str__(self) -> str:
        return self.jira_key


class ExportEvent(models.Model):
    """The audit trail: every state change of a session or of one of its tickets."""

    session = models.ForeignKey(ExportSession, on_delete=models.CASCADE, related_name="events")
    ticket = models.ForeignKey(
        ExportTicket, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    kind = models.CharField(max_length=40)
    from_status = models.CharField(max_length=20, blank=True, default="")
    to_status = models.CharField(max_length=20, blank=True, default="")
    message = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"
