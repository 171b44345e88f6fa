"""A worker process for the kill test: runs one export through the Celery task, and right after
Jira has answered the create of the named ticket (before the portal commits the key) says so on
stdout and waits, so that the test can SIGKILL it at that exact point.

    python -m tests.exports.export_worker_process SESSION_ID TASK_ID "Ticket 3"

Settings come from the environment (DATABASE_URL at the test database, JIRA_* at the fakes).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()

from exports.tasks import run_export  # noqa: E402
from itsm.public import client_class  # noqa: E402


def main(session_id: str, task_id: str, stop_after: str) -> None:
    jira = client_class("jira")
    real_create = jira.create_ticket

    def create_then_wait(self, project, summary, *args, **kwargs):
        created = real_create(self, project, summary, *args, **kwargs)
        if summary == stop_after:
            print(f"jira-answered {created.key}", flush=True)
            sys.stdin.readline()  # the test kills the process here
        return created

    jira.create_ticket = create_then_wait
    print("running", flush=True)
    run_export.apply(args=[session_id, task_id], task_id=task_id)
    print("finished", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
