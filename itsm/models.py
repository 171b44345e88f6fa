"""Tables of the itsm app: ticket records, the outbox, and templates edited in the admin."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Platform(models.TextChoices):
    JIRA = "jira", "Jira"
    SERVICENOW = "servicenow", "ServiceNow"
    SLACK = "slack", "Slack"
    LINEAR = "linear", "Linear"
    GITHUB = "github", "GitHub"


class Ticket(models.Model):
    """One ticket the portal creates (or created) in Jira or ServiceNow: seed 003's tickets table.

    The row is written, with its idempotency key, before any call; the delivery task fills in the
    external identifiers and the ``TicketCreationResult`` metadata (attempts, delays, errors).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # recorded, waiting for the outbox delivery
        CREATED = "created", "Created"
        FAILED = "failed", "Failed"  # rejected by the platform; will not be retried
        # Created, then no longer found on the platform (deleted there); not checked any more.
        MISSING = "missing", "Missing on platform"

    platform = models.CharField(max_length=20, choices=Platform.choices)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    idempotency_key = models.CharField(max_length=64, unique=True)
    job_id = models.CharField(max_length=200, blank=True, db_index=True)
    template_name = models.CharField(max_length=100, blank=True)
    template_source = models.CharField(max_length=20, blank=True)  # "file" or "database"
    variables = models.JSONField(default=dict, blank=True)
    fields = models.JSONField(default=dict, blank=True)  # the rendered, validated, redacted payload
    external_id = models.CharField(max_length=100, blank=True)
    external_key = models.CharField(max_length=100, blank=True, db_index=True)
    external_url = models.URLField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # TicketCreationResult metadata: [{attempt, at, outcome, status_code, error, delay_seconds}]
    retry_metadata = models.JSONField(default=list, blank=True)
    error = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # SLA tracking (seed 003 phase 3): deadlines from created_at and the priority's targets.
    priority = models.CharField(max_length=20, blank=True)
    sla_response_due_at = models.DateTimeField(null=True, blank=True)
    sla_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    sla_breached = models.BooleanField(default=False, db_index=True)
    sla_breached_at = models.DateTimeField(null=True, blank=True)
    # When the SLA check last asked the platform about this ticket: the refresh goes round-robin,
    # least recently checked (never checked) first, so no open ticket is starved.
    sla_checked_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["platform", "job_id", "template_name"])]

    def __str__(self) -> str:
        return self.external_key or f"{self.platform} ticket #{self.pk} ({self.status})"


class OutboxMessage(models.Model):
    """Work for an external system, written in the same transaction as the change that needs it.

    A Celery task delivers it (``itsm.outbox``); a periodic sweep on the leader picks up anything
    whose task was lost or whose platform was down. Delivery is idempotent by ``idempotency_key``.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead"  # rejected for good (4xx); kept with its error for an operator

    kind = models.CharField(max_length=60)  # a handler name, e.g. "ticket.create", "slack.post"
    platform = models.CharField(max_length=20, choices=Platform.choices)
    idempotency_key = models.CharField(max_length=64, unique=True)
    payload = models.JSONField(default=dict, blank=True)
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="outbox_messages"
    )
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The current delivery's claim: a delivery whose claim lapsed writes nothing.
    claim_token = models.CharField(max_length=32, blank=True)
    last_error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class TicketTemplate(models.Model):
    """A template edited in the admin; it overrides a file template of the same platform and name.

    ``fields`` maps a ticket field to its template text. ``engine`` "format" uses the seed's
    ``{variable}`` placeholders; "jinja" renders with Jinja2's ``SandboxedEnvironment``.
    """

    class Engine(models.TextChoices):
        FORMAT = "format", "{variable} placeholders"
        JINJA = "jinja", "Jinja2 (sandboxed)"

    platform = models.CharField(
        max_length=20,
        choices=[(Platform.JIRA, "Jira"), (Platform.SERVICENOW, "ServiceNow")],
    )
    name = models.SlugField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    engine = models.CharField(max_length=10, choices=Engine.choices, default=Engine.FORMAT)
    fields = models.JSONField(default=dict)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["platform", "name"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "name"], name="itsm_template_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.platform}/{self.name}"
