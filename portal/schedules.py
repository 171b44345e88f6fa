"""Periodic tasks as the apps' data migrations declare them (beat sends them, on the leader only).

Each app's migration names its tasks, ``{name: (task, every_seconds)}``, and calls these from its
``RunPython``: one way of scheduling for every app, idempotent, reversible.
"""

from __future__ import annotations

from django.utils import timezone


def schedule_periodic_tasks(apps, tasks: dict[str, tuple[str, int]]) -> None:
    """Creates each task on its interval (kept as it is if it exists) and tells beat to reload."""
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    changes_model = apps.get_model("django_celery_beat", "PeriodicTasks")
    for name, (task, seconds) in tasks.items():
        interval, _ = interval_model.objects.get_or_create(every=seconds, period="seconds")
        task_model.objects.get_or_create(
            name=name, defaults={"task": task, "interval": interval, "enabled": True}
        )
    changes_model.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def unschedule_periodic_tasks(apps, names) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=names).delete()
