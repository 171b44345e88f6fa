"""Daily reports (issue 10, "Reports"), and the beat entry that computes yesterday's after
midnight: it runs every ten minutes and computes a day once the day is over (idempotent)."""

import django.utils.timezone
from django.db import migrations, models

from portal.schedules import schedule_periodic_tasks, unschedule_periodic_tasks

TASKS = {"escalation daily reports": ("escalation.compute_daily_reports", 600)}


def schedule(apps, schema_editor):
    schedule_periodic_tasks(apps, TASKS)


def unschedule(apps, schema_editor):
    unschedule_periodic_tasks(apps, TASKS)


class Migration(migrations.Migration):
    dependencies = [
        ("escalation", "0008_recovery_attempts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="DailyReport",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("date", models.DateField(unique=True)),
                ("metrics", models.JSONField(blank=True, default=dict)),
                ("total_failures", models.PositiveIntegerField(default=0)),
                ("sla_hits", models.PositiveIntegerField(default=0)),
                ("sla_misses", models.PositiveIntegerField(default=0)),
                (
                    "compliance_rate",
                    models.DecimalField(blank=True, decimal_places=2, max_digits=5, null=True),
                ),
                ("total_overrides", models.PositiveIntegerField(default=0)),
                ("emergency_overrides", models.PositiveIntegerField(default=0)),
                ("computed_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"ordering": ["-date"]},
        ),
        migrations.RunPython(schedule, unschedule),
    ]
