"""The leader's minute job for catalog requests: requests whose task was lost (pending past a
minute, or running with no change past the component lease) are queued again."""

from django.db import migrations

from portal.schedules import schedule_periodic_tasks, unschedule_periodic_tasks

TASKS = {"escalation stalled catalog requests": ("escalation.sweep_stalled_requests", 60)}


def schedule(apps, schema_editor):
    schedule_periodic_tasks(apps, TASKS)


def unschedule(apps, schema_editor):
    unschedule_periodic_tasks(apps, TASKS)


class Migration(migrations.Migration):
    dependencies = [
        ("escalation", "0013_catalog_permissions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
