"""Background jobs with a Jira ticket and their timeline (issue 12, seed 002's job-failure
handling); the beat entry of the sweep that re-queues waiting jobs every minute; admins get the
new permissions."""

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from portal.roles import grant_role_permissions
from portal.schedules import schedule_periodic_tasks, unschedule_periodic_tasks

TASKS = {"escalation background jobs": ("escalation.sweep_background_jobs", 60)}
# Admins hold every permission; the roles' exact sets are pinned by tests/escalation/test_admin.py,
# so operators and QA get the jobs' permissions from an admin (docs/jobs.md, "Roles").
GRANTS: dict[str, list[str]] = {}


def schedule(apps, schema_editor):
    schedule_periodic_tasks(apps, TASKS)


def unschedule(apps, schema_editor):
    unschedule_periodic_tasks(apps, TASKS)


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("escalation", "0010_catalog"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="BackgroundJob",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                ("kind", models.CharField(max_length=100)),
                (
                    "jira_key",
                    models.CharField(
                        blank=True,
                        max_length=32,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[A-Z][A-Z0-9_]{0,19}-[1-9][0-9]{0,9}$",
                                "A Jira issue key, e.g. OPS-42.",
                            )
                        ],
                        verbose_name="Jira ticket",
                    ),
                ),
                ("parameters", models.JSONField(blank=True, default=dict)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("running", "Running"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                            ("blocked", "Blocked (its ticket is blocked by open issues)"),
                        ],
                        db_index=True,
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("detail", models.CharField(blank=True, max_length=500)),
                ("last_error", models.TextField(blank=True, max_length=2000)),
                ("result", models.JSONField(blank=True, default=dict)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("failure_reported_attempt", models.PositiveIntegerField(default=0)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("failed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "created_at",
                    models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                ),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="JobEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kind", models.CharField(max_length=40)),
                ("message", models.CharField(max_length=500)),
                ("data", models.JSONField(blank=True, default=dict)),
                ("at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="escalation.backgroundjob",
                    ),
                ),
            ],
            options={
                "ordering": ["at", "id"],
            },
        ),
        migrations.AddIndex(
            model_name="backgroundjob",
            index=models.Index(fields=["status", "updated_at"], name="background_job_by_status"),
        ),
        migrations.RunPython(schedule, unschedule),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]
