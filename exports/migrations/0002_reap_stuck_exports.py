"""The beat entry of the export reaper: every minute, on the leader, exports that made no progress
for EXPORT_STALE_MINUTES are failed as temporary with a retry available (docs/exports.md)."""

from django.db import migrations

from portal.schedules import schedule_periodic_tasks, unschedule_periodic_tasks

TASKS = {"exports reap stuck exports": ("exports.reap_stuck_exports", 60)}


def schedule(apps, schema_editor):
    schedule_periodic_tasks(apps, TASKS)


def unschedule(apps, schema_editor):
    unschedule_periodic_tasks(apps, TASKS)


class Migration(migrations.Migration):
    dependencies = [
        ("exports", "0001_sessions_and_tickets"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
