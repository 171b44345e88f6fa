"""Worker processes for the kill tests.

``python -m tests.exports.export_worker_process task SESSION_ID TASK_ID "Ticket 3"`` runs one
export through the Celery task in this process; ``... worker QUEUE "Ticket 3"`` runs a real Celery
worker (solo pool) consuming QUEUE from the broker. Either way, right after Jira has answered the
create of the named ticket (before the portal commits the key) the process says so on stdout and
waits, so that the test can SIGKILL it at that exact point (an empty name never stops). The
worker prints ``ready`` when it consumes and ``done <task id>`` after each task.

Settings come from the environment (DATABASE_URL at the test database, REDIS_URL at the broker,
JIRA_* at the fakes).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()

from celery.signals import task_postrun, worker_ready  # noqa: E402

from itsm.public import client_class  # noqa: E402


def stop_after_jira_answers(title: str) -> None:
    jira = client_class("jira")
    real_create = jira.create_ticket

    def create_then_wait(self, project, summary, *args, **kwargs):
        created = real_create(self, project, summary, *args, **kwargs)
        if title and summary == title:
            print(f"jira-answered {created.key}", flush=True)
            sys.stdin.readline()  # the test kills the process here
        return created

    jira.create_ticket = create_then_wait


def run_task(session_id: str, task_id: str, title: str) -> None:
    from exports.tasks import run_export

    stop_after_jira_answers(title)
    print("running", flush=True)
    run_export.apply(args=[session_id, task_id], task_id=task_id)
    print("finished", flush=True)


def run_worker(queue: str, title: str) -> None:
    from portal.celery import app

    stop_after_jira_answers(title)
    app.conf.worker_redirect_stdouts = False  # the test reads these lines on stdout
    worker_ready.connect(lambda **_: print("ready", flush=True), weak=False)
    task_postrun.connect(lambda task_id=None, **_: print(f"done {task_id}", flush=True), weak=False)
    app.worker_main(
        ["worker", "--pool", "solo", "--queues", queue, "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--loglevel", "WARNING"]
    )  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1] == "task":
        run_task(*sys.argv[2:5])
    else:
        run_worker(*sys.argv[2:4])
