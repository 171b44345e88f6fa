"""``manage.py demo_export_session``: a planning session of twelve tickets to try the export with.

    python manage.py demo_export_session [--project OPS] [--bulk] [--user operator]

Prints the session's export page. The tickets depend on one another, the first has an
attachment, and three ask for what the bundled fake Jira does not have (manual fixes). See
README.md, "Export a session to Jira".
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from exports.errors import ExportError
from exports.models import ExportSession
from exports.services.demo import create_demo_session


class Command(BaseCommand):
    help = "Creates a demo planning session (12 tickets, dependencies, an attachment) to export."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", default="OPS", help="Jira project key (default OPS)")
        parser.add_argument("--bulk", action="store_true", help="export in bulk mode")
        parser.add_argument("--user", default="", help="the session's creator (a username)")

    def handle(self, *args, project: str, bulk: bool, user: str, **options) -> None:
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user).first()
            if actor is None:
                raise CommandError(f"No user {user!r}.")
        mode = ExportSession.Mode.BULK if bulk else ExportSession.Mode.SEQUENTIAL
        try:
            session = create_demo_session(project, actor, mode=mode)
        except ExportError as refusal:
            raise CommandError(refusal.message) from refusal
        self.stdout.write(
            f"Created session {session.pk} ({session.tickets.count()} tickets, project "
            f"{session.jira_project_key}).\nExport it at "
            f"{reverse('exports:session-export', args=[session.pk])}"
        )
