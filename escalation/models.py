"""Tables of the escalation app: the CI failure escalation matrix of seed 004.

Configuration is data edited in the admin (DESIGN.md "Config as data"): classification rules,
teams and the routing matrix, seeded by data migrations with the seed's values. What happens is
recorded: every failure reported, the escalation its fingerprint groups it into, the SLA record
of that escalation, every notification queued, and a timeline of events (the audit trail).
"""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone


class FailureType(models.TextChoices):
    """The seed's failure types (``classify-ci-failure.sh``)."""

    GENERATOR_DRIFT = "generator_drift", "Generator drift"
    SECURITY_CRITICAL = "security_critical", "Security: critical"
    SECURITY_SECRETS = "security_secrets", "Security: secret detected"
    SECURITY_HIGH = "security_high", "Security: high"
    SECURITY_ADVISORY = "security_advisory", "Security: advisory"
    DATABASE_CONNECTIVITY = "database_connectivity", "Database connectivity"
    INFRASTRUCTURE_TIMEOUT = "infrastructure_timeout", "Infrastructure timeout"
    DEPENDENCY_VULNERABILITY = "dependency_vulnerability", "Dependency vulnerability"
    TEST_FAILURE = "test_failure", "Test failure"
    BUILD_FAILURE = "build_failure", "Build failure"
    UNKNOWN = "unknown", "Unknown"


# How grave a finding is. A finding at or above PROTECTED_SEVERITY (security findings and the
# zero-tolerance types) is never replaced by a less grave one, whatever the rules' order says
# (docs/escalation.md, "Precedence").
SEVERITY: dict[str, int] = {
    "security_secrets": 100,
    "security_critical": 95,
    "generator_drift": 90,
    "security_high": 85,
    "dependency_vulnerability": 75,
    "security_advisory": 70,
    "database_connectivity": 50,
    "infrastructure_timeout": 45,
    "build_failure": 40,
    "test_failure": 30,
    "unknown": 0,
}
PROTECTED_SEVERITY = 70


class Priority(models.TextChoices):
    CRITICAL = "CRITICAL", "Critical"
    HIGH = "HIGH", "High"
    MEDIUM = "MEDIUM", "Medium"
    LOW = "LOW", "Low"


# The seed's mapping to Linear priorities (create-linear-ticket.sh).
LINEAR_PRIORITY = {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 3, "LOW": 4}
# And to the portal's Jira priority ranks (itsm.config.PRIORITY_NAMES: 1 Highest ... 5 Lowest).
JIRA_PRIORITY = {"CRITICAL": "1", "HIGH": "2", "MEDIUM": "3", "LOW": "4"}


class OverridePolicy(models.TextChoices):
    """handle-override-request.sh's three cases, and approval for the rest."""

    ZERO_TOLERANCE = "zero_tolerance", "Never (zero tolerance)"
    INFRASTRUCTURE_CONFIRMED = "infrastructure_confirmed", "Needs a confirmed infrastructure issue"
    HOTFIX_APPROVAL = "hotfix_approval", "Needs hotfix approval"
    QA_APPROVAL = "qa_approval", "Needs QA approval"


class RecoveryAction(models.TextChoices):
    NONE = "none", "None"
    DATABASE_PROBE = "database_probe", "Database health probe"
    RERUN_FAILED_JOBS = "rerun_failed_jobs", "Re-run the failed jobs"


class Tracker(models.TextChoices):
    LINEAR = "linear", "Linear"
    JIRA = "jira", "Jira"
    NONE = "none", "None"


def validate_regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"not a valid regular expression: {exc}") from exc


class ClassificationRule(models.Model):
    """One rule of the classifier: any of exit code, log pattern and changed-file glob; a rule
    matches when every criterion it sets matches. Rules are tried in ``position`` order."""

    name = models.CharField(max_length=100, unique=True)
    failure_type = models.CharField(max_length=40, choices=FailureType.choices)
    exit_code = models.IntegerField(null=True, blank=True)
    log_pattern = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_regex],
        help_text="A Python regular expression searched in each log line (case-insensitive).",
    )
    changed_file_glob = models.CharField(
        max_length=200, blank=True, help_text="e.g. openapi/*.yaml; matches any changed file."
    )
    position = models.PositiveIntegerField(
        default=100, help_text="Lower is tried first; see the precedence rules."
    )
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.name} → {self.failure_type}"

    def clean(self) -> None:
        if self.exit_code is None and not self.log_pattern and not self.changed_file_glob:
            raise ValidationError(
                "Set at least one of exit code, log pattern or changed-file glob."
            )


class Team(models.Model):
    """Where a team is reached: the seed's notify-teams.sh table."""

    name = models.SlugField(max_length=60, unique=True)  # backend_dev, security_team, ...
    display_name = models.CharField(max_length=100, blank=True)
    slack_channel = models.CharField(max_length=80, blank=True)
    slack_webhook_url = models.URLField(
        max_length=300, blank=True, help_text="Empty: the portal's SLACK_WEBHOOK_URL."
    )
    oncall_handle = models.CharField(max_length=80, blank=True)
    tracker = models.CharField(max_length=10, choices=Tracker.choices, default=Tracker.LINEAR)
    linear_team = models.CharField(max_length=60, blank=True, help_text="Linear team key or name")
    jira_project = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name or self.name


class RoutingRule(models.Model):
    """One row of the routing matrix: a failure type's owners, priority, SLA and policies."""

    failure_type = models.CharField(max_length=40, choices=FailureType.choices, unique=True)
    title = models.CharField(max_length=100, help_text="Ticket title, e.g. Secret Exposure")
    teams = models.ManyToManyField(Team, related_name="routing_rules")
    ticket_team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The team whose tracker gets the ticket (default: the first team).",
    )
    priority = models.CharField(max_length=10, choices=Priority.choices)
    sla_minutes = models.PositiveIntegerField()
    urgent = models.BooleanField(default=False, help_text="Slack messages marked URGENT")
    notify_author = models.BooleanField(default=False, help_text="Also notify the code author")
    override_policy = models.CharField(
        max_length=30, choices=OverridePolicy.choices, default=OverridePolicy.QA_APPROVAL
    )
    recovery_action = models.CharField(
        max_length=30, choices=RecoveryAction.choices, default=RecoveryAction.NONE
    )

    class Meta:
        ordering = ["failure_type"]

    def __str__(self) -> str:
        return f"{self.failure_type}: {self.priority}, {self.sla_minutes} min"


class Escalation(models.Model):
    """Failures of one repository with one fingerprint, while open: one ticket, one SLA.

    The routing decision is snapshotted when it opens (Grafana OnCall's habit): editing the matrix
    later never changes a running escalation; a reclassification re-routes it explicitly.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    repository = models.CharField(max_length=200, db_index=True)
    fingerprint = models.CharField(max_length=64)
    signature = models.CharField(max_length=500, blank=True)
    failure_type = models.CharField(max_length=40, choices=FailureType.choices, db_index=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    priority = models.CharField(max_length=10, choices=Priority.choices)
    routing = models.JSONField(default=dict, blank=True)  # the snapshot: teams, sla, policies
    teams = models.ManyToManyField(Team, related_name="escalations", blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=200, blank=True)
    tracker = models.CharField(max_length=10, choices=Tracker.choices, default=Tracker.NONE)
    tracker_id = models.CharField(max_length=100, blank=True)  # filled when the ticket exists
    tracker_key = models.CharField(max_length=100, blank=True)
    tracker_url = models.URLField(max_length=500, blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            # One open escalation per repository and fingerprint: repeats attach to it.
            models.UniqueConstraint(
                fields=["repository", "fingerprint"],
                condition=models.Q(status="open"),
                name="one_open_escalation_per_fingerprint",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.failure_type} in {self.repository}"

    def sla_record(self) -> SlaRecord | None:
        """The escalation's SLA record, or None before it has one."""
        try:
            return self.sla
        except SlaRecord.DoesNotExist:
            return None


class FailureEvent(models.Model):
    """One failed CI job as a CI system reported it, classified, with its evidence."""

    class Source(models.TextChoices):
        API = "api", "API"
        GITHUB = "github", "GitHub webhook"
        GITLAB = "gitlab", "GitLab webhook"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        FLAKY = "flaky", "Flaky (passed on re-run)"
        RESOLVED = "resolved", "Resolved"

    repository = models.CharField(max_length=200)
    pr_number = models.PositiveIntegerField(null=True, blank=True)
    commit = models.CharField(max_length=64, blank=True)
    workflow = models.CharField(max_length=200, blank=True)
    job = models.CharField(max_length=200)
    run_id = models.CharField(max_length=64)
    run_attempt = models.PositiveIntegerField(default=1)
    exit_code = models.IntegerField(null=True, blank=True)
    author = models.CharField(max_length=100, blank=True)
    changed_files = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.API)
    job_url = models.URLField(max_length=500, blank=True)

    failure_type = models.CharField(max_length=40, choices=FailureType.choices, db_index=True)
    rule = models.ForeignKey(
        ClassificationRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule_name = models.CharField(max_length=100, blank=True)  # kept if the rule is deleted
    evidence = models.JSONField(default=list, blank=True)  # [{"line": n, "text": "..."}]
    log_excerpt = models.TextField(blank=True)  # redacted, bounded
    log_bytes = models.PositiveBigIntegerField(default=0)
    fingerprint = models.CharField(max_length=64, db_index=True)
    signature = models.CharField(max_length=500, blank=True)
    failing_tests = models.JSONField(default=list, blank=True)

    escalation = models.ForeignKey(
        Escalation, null=True, blank=True, on_delete=models.SET_NULL, related_name="failures"
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "run_id", "run_attempt", "job"],
                name="one_failure_per_job_run",
            )
        ]
        indexes = [models.Index(fields=["repository", "commit", "job"])]

    def __str__(self) -> str:
        return f"{self.repository} {self.job} #{self.run_id}.{self.run_attempt}"


class SlaRecord(models.Model):
    """The seed's SLA tracking record (sla-timer.sh), one per escalation."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RESOLVED_WITHIN_SLA = "resolved_within_sla", "Resolved within SLA"
        SLA_EXCEEDED = "sla_exceeded", "SLA exceeded"

    escalation = models.OneToOneField(Escalation, on_delete=models.CASCADE, related_name="sla")
    failure_type = models.CharField(max_length=40, choices=FailureType.choices)
    assigned_teams = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField()
    deadline = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    resolved_at = models.DateTimeField(null=True, blank=True)
    exceeded_at = models.DateTimeField(null=True, blank=True)  # when the sweep escalated the miss
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["deadline", "id"]
        verbose_name = "SLA record"
        # The sweep reads active records by deadline; the index keeps it small and fast.
        indexes = [
            models.Index(
                fields=["deadline"],
                condition=models.Q(status="active"),
                name="sla_active_by_deadline",
            )
        ]

    def __str__(self) -> str:
        return f"SLA of escalation {self.escalation_id}: {self.status}"


class Notification(models.Model):
    """A message queued for a team (Slack) or a ticket (Linear, Jira), through the outbox."""

    class Channel(models.TextChoices):
        SLACK = "slack", "Slack"
        LINEAR = "linear", "Linear"
        JIRA = "jira", "Jira"

    escalation = models.ForeignKey(
        Escalation, on_delete=models.CASCADE, related_name="notifications"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    kind = models.CharField(max_length=30)  # opened, repeat, sla_miss, sla_corrected, ...
    team = models.CharField(max_length=60, blank=True)
    recipient = models.CharField(max_length=120, blank=True)  # channel, author, ticket
    outbox_message = models.ForeignKey(
        "itsm.OutboxMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.channel} {self.kind} for escalation {self.escalation_id}"


class TimelineEntry(models.Model):
    """A row of a timeline: what happened (``kind``, ``message``, ``data``), who did it, when."""

    kind = models.CharField(max_length=40)
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["at", "id"]
        abstract = True


class EscalationEvent(TimelineEntry):
    """The timeline and audit trail: every change to an escalation goes through one entry point
    (``services.audit.record``) that writes one of these."""

    escalation = models.ForeignKey(
        Escalation, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    failure = models.ForeignKey(
        FailureEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind}: {self.message[:60]}"


class WebhookDelivery(models.Model):
    """A webhook delivery seen once (GitHub's X-GitHub-Delivery, GitLab's Idempotency-Key): a
    redelivery answers 2xx and changes nothing."""

    source = models.CharField(max_length=10)
    delivery_id = models.CharField(max_length=100)
    event = models.CharField(max_length=50)
    received_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["source", "delivery_id"], name="one_webhook_delivery")
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.event} {self.delivery_id}"


# The seed's zero-tolerance types (handle-override-request.sh): never overridden, whatever the
# routing matrix says (the admin refuses to change their policy; the service checks again).
ZERO_TOLERANCE_TYPES = frozenset({"security_secrets", "generator_drift", "security_critical"})


class OverrideRequest(models.Model):
    """A request to let a pipeline proceed past a failure, with its justification and QA's
    decision (the seed's override request system). Decided through ``services.overrides``."""

    class Kind(models.TextChoices):
        HOTFIX = "hotfix", "Hotfix"
        INFRASTRUCTURE = "infrastructure", "Infrastructure issue"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"

    failure = models.ForeignKey(
        FailureEvent, on_delete=models.CASCADE, related_name="override_requests"
    )
    escalation = models.ForeignKey(
        Escalation, null=True, blank=True, on_delete=models.SET_NULL, related_name="overrides"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.HOTFIX)
    justification = models.TextField(max_length=2000)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    policy = models.CharField(max_length=30, choices=OverridePolicy.choices)
    infrastructure_confirmed = models.BooleanField(default=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=500, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)  # the 15-minute reminder, once
    followup_key = models.CharField(max_length=100, blank=True)  # the follow-up ticket
    followup_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One request waiting per failure: a second would split QA's attention.
            models.UniqueConstraint(
                fields=["failure"],
                condition=models.Q(status="pending"),
                name="one_pending_override_per_failure",
            )
        ]

    def __str__(self) -> str:
        return f"Override #{self.pk} of failure {self.failure_id}: {self.status}"


class RecoveryAttempt(models.Model):
    """One try of an escalation's recovery action (seed 004's ``attempt_auto_recovery`` and
    ``intelligent_retry``), scheduled with exponential backoff, run once, and its outcome.
    Changed only through ``services.recovery``."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running (waiting for its outcome)"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled (escalation resolved)"

    escalation = models.ForeignKey(
        Escalation, on_delete=models.CASCADE, related_name="recovery_attempts"
    )
    failure = models.ForeignKey(
        FailureEvent, on_delete=models.CASCADE, related_name="recovery_attempts"
    )
    action = models.CharField(max_length=30, choices=RecoveryAction.choices)
    attempt = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.SCHEDULED, db_index=True
    )
    detail = models.CharField(max_length=500, blank=True)
    scheduled_for = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["escalation_id", "attempt"]
        constraints = [
            models.UniqueConstraint(
                fields=["escalation", "attempt"], name="one_recovery_attempt_per_number"
            )
        ]
        indexes = [
            models.Index(
                fields=["scheduled_for"],
                condition=models.Q(status="scheduled"),
                name="recovery_scheduled_by_due",
            )
        ]

    def __str__(self) -> str:
        return f"Recovery {self.attempt} ({self.action}) of escalation {self.escalation_id}"


class DailyReport(models.Model):
    """The seed's daily escalation metrics (``collect_daily_metrics``) for one day of the portal's
    time zone, computed by ``services.daily_reports`` (the beat job after midnight, or on demand)
    and stored; computing a day again replaces its figures."""

    date = models.DateField(unique=True)
    # The seed's report as it writes it: sla_compliance, override_usage, failure_distribution,
    # team_performance (docs/escalation.md, "Reports").
    metrics = models.JSONField(default=dict, blank=True)
    # The headline figures again as columns, for the admin and for queries across days.
    total_failures = models.PositiveIntegerField(default=0)
    sla_hits = models.PositiveIntegerField(default=0)
    sla_misses = models.PositiveIntegerField(default=0)
    compliance_rate = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    total_overrides = models.PositiveIntegerField(default=0)
    emergency_overrides = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"Daily report {self.date:%Y-%m-%d}"


# --- Service catalog (seed 000): catalog items and bundles, requests, their fulfillment --------


class ActionType(models.TextChoices):
    """What one catalog component does (docs/service.md, "Multi-Action Fulfillment Engine")."""

    JIRA_TICKET = "jira-ticket", "Jira ticket"
    SERVICENOW_TICKET = "servicenow-ticket", "ServiceNow ticket"
    SLACK_MESSAGE = "slack-message", "Slack message"
    LINEAR_ISSUE = "linear-issue", "Linear issue"
    HTTP_REQUEST = "http-request", "HTTP request"


class CatalogBundle(models.Model):
    """A catalog item (one component) or bundle (several, run in order): the seed's
    ``CatalogBundle``, with its metadata name and version. ``name`` is what a request's
    ``catalog_item_id`` holds."""

    class Kind(models.TextChoices):
        ITEM = "item", "Item"
        BUNDLE = "bundle", "Bundle"

    name = models.SlugField(max_length=255, unique=True)  # metadata.name
    version = models.CharField(max_length=50, default="1.0.0")  # metadata.version
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BUNDLE)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    # The inputs a requester fills in: [{"name", "label", "required", "help"}]; the request form
    # shows one field per input (a JSON text area when none are declared).
    inputs = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "catalog item or bundle"
        verbose_name_plural = "catalog items and bundles"

    def __str__(self) -> str:
        return f"{self.name} ({self.version})"


class CatalogComponent(models.Model):
    """One ordered action of a catalog item or bundle, with its configuration (Jinja2 templates
    in its strings) and the cleanup an operator does if a later component fails."""

    bundle = models.ForeignKey(CatalogBundle, on_delete=models.CASCADE, related_name="components")
    position = models.PositiveIntegerField(default=1)
    component_id = models.SlugField(max_length=100)  # read by later ones as components.<id>
    action_type = models.CharField(max_length=30, choices=ActionType.choices)
    config = models.JSONField(default=dict, blank=True)
    cleanup_instructions = models.TextField(blank=True)

    class Meta:
        ordering = ["bundle", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bundle", "component_id"], name="catalog_component_unique_id"
            ),
            models.UniqueConstraint(
                fields=["bundle", "position"], name="catalog_component_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.component_id} ({self.action_type})"


class Request(models.Model):
    """A catalog request: the seed's ``requests`` table, column for column (docs/service.md,
    "Requests Table"). ``catalog_item_id`` is the bundle's name and ``user_id`` the requester's
    username, as text, as the seed's table has them."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        ESCALATED = "escalated", "Escalated"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    catalog_item_id = models.CharField(max_length=255, db_index=True)
    user_id = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=50, choices=Status.choices, default=Status.PENDING)
    request_data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    escalation_ticket_id = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001
    escalation_timestamp = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "requests"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"], name="requests_status_created")]

    def __str__(self) -> str:
        return f"Request {self.id} for {self.catalog_item_id} ({self.status})"


class RequestFulfillment(models.Model):
    """What the engine knows about one request beyond the seed's table: the bundle as it was when
    requested, the failure, and the escalation ticket's delivery (its outbox message and URL)."""

    request = models.OneToOneField(Request, on_delete=models.CASCADE, related_name="fulfillment")
    bundle_name = models.CharField(max_length=255)
    bundle_version = models.CharField(max_length=50)
    bundle_kind = models.CharField(max_length=10, default=CatalogBundle.Kind.BUNDLE)
    failed_component = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    ticket_summary = models.CharField(max_length=255, blank=True)
    ticket_description = models.TextField(blank=True)
    ticket_url = models.URLField(max_length=500, blank=True)
    outbox_message = models.ForeignKey(
        "itsm.OutboxMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"Fulfillment of {self.request_id}"


class ComponentExecution(models.Model):
    """One component of one request: a snapshot of its configuration when requested, then its
    run. A component runs at most once: the worker claims it (pending -> running) before calling
    anything, and a claim found on redelivery is never run again."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        NOT_RUN = "not_run", "Not run"

    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="executions")
    position = models.PositiveIntegerField()
    component_id = models.CharField(max_length=100)
    action_type = models.CharField(max_length=30, choices=ActionType.choices)
    config = models.JSONField(default=dict, blank=True)
    cleanup_instructions = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    resources = models.JSONField(default=list, blank=True)  # what it created, e.g. "OPS-12"
    output = models.JSONField(default=dict, blank=True)  # read by later components
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "position"], name="component_execution_unique_position"
            ),
            models.UniqueConstraint(
                fields=["request", "component_id"], name="component_execution_unique_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.component_id} of {self.request_id} ({self.status})"


# A Jira issue key as Jira prints it: the project key, a dash, the number.
JIRA_KEY_PATTERN = r"^[A-Z][A-Z0-9_]{0,19}-[1-9][0-9]{0,9}$"


class BackgroundJob(models.Model):
    """A background job that has a Jira ticket (seed 002's job-failure handling). Run and changed
    only through ``services.jobs``: the claim, the blocker check, the failed state saved first,
    then the comment and the transition on the ticket through the outbox."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        BLOCKED = "blocked", "Blocked (its ticket is blocked by open issues)"

    name = models.CharField(max_length=200)
    # The registered job kind (``@background_job("name")`` in ``services.jobs``) that runs it.
    kind = models.CharField(max_length=100)
    jira_key = models.CharField(
        "Jira ticket",
        max_length=32,
        blank=True,
        validators=[RegexValidator(JIRA_KEY_PATTERN, "A Jira issue key, e.g. OPS-42.")],
    )
    # Given when the job was made; they win over the ticket description's ``Key: value`` lines.
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    detail = models.CharField(max_length=500, blank=True)  # what happened last, for people
    last_error = models.TextField(max_length=2000, blank=True)
    result = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)  # runs started (a blocked check is none)
    # The attempt whose failure was queued to the ticket (0: none): reported once per failure.
    failure_reported_attempt = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Set by every change: the sweep's clock for jobs that wait or whose worker was lost.
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "updated_at"], name="background_job_by_status")]

    def __str__(self) -> str:
        ticket = f" ({self.jira_key})" if self.jira_key else ""
        return f"Job #{self.pk} {self.name}{ticket}: {self.status}"


class JobEvent(TimelineEntry):
    """A background job's timeline: every change ``services.jobs`` makes writes one."""

    job = models.ForeignKey(BackgroundJob, on_delete=models.CASCADE, related_name="events")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} job {self.job_id} {self.kind}: {self.message[:60]}"
