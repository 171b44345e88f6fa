"""``manage.py compute_daily_reports``: computes and stores daily CI reports (what the beat job
does after midnight), or recomputes given days, e.g. after reclassifying failures of a past day.

    python manage.py compute_daily_reports                      # the due days, as the beat job
    python manage.py compute_daily_reports --date 2026-03-10 --date 2026-03-11
"""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from escalation.errors import ReportDateInvalid
from escalation.services import daily_reports


def iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a YYYY-MM-DD date: {value!r}") from exc


class Command(BaseCommand):
    help = "Computes the due daily CI reports, or the given days again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--date",
            action="append",
            dest="dates",
            default=[],
            metavar="YYYY-MM-DD",
            help="a day (repeatable)",
        )

    def handle(self, *args, dates: list[str], **options) -> None:
        days = [iso_date(value) for value in dates]
        try:
            done = (
                [daily_reports.compute_daily_report(day).date for day in days]
                if days
                else daily_reports.compute_due_reports()
            )
        except ReportDateInvalid as exc:
            raise CommandError(exc.message) from exc
        for day in done:
            self.stdout.write(f"{day.isoformat()}: computed")
        if not done:
            self.stdout.write("Nothing due: yesterday's report is final.")
