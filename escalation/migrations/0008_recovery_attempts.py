"""Recovery attempts (issue 10), and the beat entry that runs the due ones every minute."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from portal.schedules import schedule_periodic_tasks, unschedule_periodic_tasks

TASKS = {"escalation recovery attempts": ("escalation.run_due_recoveries", 60)}


def schedule(apps, schema_editor):
    schedule_periodic_tasks(apps, TASKS)


def unschedule(apps, schema_editor):
    unschedule_periodic_tasks(apps, TASKS)


class Migration(migrations.Migration):
    dependencies = [
        ("escalation", "0007_override_permissions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="RecoveryAttempt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("none", "None"),
                            ("database_probe", "Database health probe"),
                            ("rerun_failed_jobs", "Re-run the failed jobs"),
                        ],
                        max_length=30,
                    ),
                ),
                ("attempt", models.PositiveIntegerField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("scheduled", "Scheduled"),
                            ("running", "Running (waiting for its outcome)"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                            ("cancelled", "Cancelled (escalation resolved)"),
                        ],
                        db_index=True,
                        default="scheduled",
                        max_length=10,
                    ),
                ),
                ("detail", models.CharField(blank=True, max_length=500)),
                ("scheduled_for", models.DateTimeField()),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "escalation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="recovery_attempts",
                        to="escalation.escalation",
                    ),
                ),
                (
                    "failure",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="recovery_attempts",
                        to="escalation.failureevent",
                    ),
                ),
            ],
            options={
                "ordering": ["escalation_id", "attempt"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("status", "scheduled")),
                        fields=["scheduled_for"],
                        name="recovery_scheduled_by_due",
                    )
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("escalation", "attempt"), name="one_recovery_attempt_per_number"
                    )
                ],
            },
        ),
        migrations.RunPython(schedule, unschedule),
    ]
