"""The service catalog (issue 12, seed 000): catalog items and bundles, the seed's requests table
and the per-component execution records."""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("escalation", "0009_reports"),
        ("itsm", "0005_outbox_claim_token"),
    ]

    operations = [
        migrations.CreateModel(
            name="CatalogBundle",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.SlugField(max_length=255, unique=True)),
                ("version", models.CharField(default="1.0.0", max_length=50)),
                (
                    "kind",
                    models.CharField(
                        choices=[("item", "Item"), ("bundle", "Bundle")],
                        default="bundle",
                        max_length=10,
                    ),
                ),
                ("title", models.CharField(blank=True, max_length=200)),
                ("description", models.TextField(blank=True)),
                ("inputs", models.JSONField(blank=True, default=list)),
                ("active", models.BooleanField(db_index=True, default=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name": "catalog item or bundle",
                "verbose_name_plural": "catalog items and bundles",
                "ordering": ["name"],
            },
        ),
        migrations.CreateModel(
            name="Request",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("catalog_item_id", models.CharField(db_index=True, max_length=255)),
                ("user_id", models.CharField(db_index=True, max_length=255)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("running", "Running"),
                            ("completed", "Completed"),
                            ("escalated", "Escalated"),
                        ],
                        default="pending",
                        max_length=50,
                    ),
                ),
                ("request_data", models.JSONField(default=dict)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("completed_at", models.DateTimeField(blank=True, null=True)),
                ("escalation_ticket_id", models.CharField(blank=True, max_length=50, null=True)),
                ("escalation_timestamp", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "db_table": "requests",
                "ordering": ["-created_at"],
                "indexes": [
                    models.Index(fields=["status", "-created_at"], name="requests_status_created")
                ],
            },
        ),
        migrations.CreateModel(
            name="RequestFulfillment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("bundle_name", models.CharField(max_length=255)),
                ("bundle_version", models.CharField(max_length=50)),
                ("bundle_kind", models.CharField(default="bundle", max_length=10)),
                ("failed_component", models.CharField(blank=True, max_length=100)),
                ("error", models.TextField(blank=True)),
                ("failed_at", models.DateTimeField(blank=True, null=True)),
                ("ticket_summary", models.CharField(blank=True, max_length=255)),
                ("ticket_description", models.TextField(blank=True)),
                ("ticket_url", models.URLField(blank=True, max_length=500)),
                (
                    "outbox_message",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="itsm.outboxmessage",
                    ),
                ),
                (
                    "request",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="fulfillment",
                        to="escalation.request",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="CatalogComponent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.PositiveIntegerField(default=1)),
                ("component_id", models.SlugField(max_length=100)),
                (
                    "action_type",
                    models.CharField(
                        choices=[
                            ("jira-ticket", "Jira ticket"),
                            ("servicenow-ticket", "ServiceNow ticket"),
                            ("slack-message", "Slack message"),
                            ("linear-issue", "Linear issue"),
                            ("http-request", "HTTP request"),
                        ],
                        max_length=30,
                    ),
                ),
                ("config", models.JSONField(blank=True, default=dict)),
                ("cleanup_instructions", models.TextField(blank=True)),
                (
                    "bundle",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="components",
                        to="escalation.catalogbundle",
                    ),
                ),
            ],
            options={
                "ordering": ["bundle", "position", "id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("bundle", "component_id"), name="catalog_component_unique_id"
                    ),
                    models.UniqueConstraint(
                        fields=("bundle", "position"), name="catalog_component_unique_position"
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="ComponentExecution",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.PositiveIntegerField()),
                ("component_id", models.CharField(max_length=100)),
                (
                    "action_type",
                    models.CharField(
                        choices=[
                            ("jira-ticket", "Jira ticket"),
                            ("servicenow-ticket", "ServiceNow ticket"),
                            ("slack-message", "Slack message"),
                            ("linear-issue", "Linear issue"),
                            ("http-request", "HTTP request"),
                        ],
                        max_length=30,
                    ),
                ),
                ("config", models.JSONField(blank=True, default=dict)),
                ("cleanup_instructions", models.TextField(blank=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("running", "Running"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                            ("not_run", "Not run"),
                        ],
                        default="pending",
                        max_length=20,
                    ),
                ),
                ("resources", models.JSONField(blank=True, default=list)),
                ("output", models.JSONField(blank=True, default=dict)),
                ("error", models.TextField(blank=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "request",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="executions",
                        to="escalation.request",
                    ),
                ),
            ],
            options={
                "ordering": ["request", "position"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("request", "position"), name="component_execution_unique_position"
                    ),
                    models.UniqueConstraint(
                        fields=("request", "component_id"), name="component_execution_unique_id"
                    ),
                ],
            },
        ),
    ]
