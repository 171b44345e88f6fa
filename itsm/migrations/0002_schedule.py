"""Schedules the outbox sweep (every 15 s) and the SLA check (every minute), leader-only via beat."""

from django.db import migrations

from portal.schedules import schedule_periodic_tasks, unschedule_periodic_tasks

TASKS = {
    "itsm outbox sweep": ("itsm.sweep_outbox", 15),
    "itsm SLA check": ("itsm.check_slas", 60),
}


def schedule(apps, schema_editor):
    schedule_periodic_tasks(apps, TASKS)


def unschedule(apps, schema_editor):
    unschedule_periodic_tasks(apps, TASKS)


class Migration(migrations.Migration):
    dependencies = [
        ("itsm", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(schedule, unschedule)]
