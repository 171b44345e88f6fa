"""Figures about escalations, read by /metrics and the pages; the portal's days (``day_bounds``),
which the daily and weekly reports (``daily_reports``, ``weekly_reports``) count in."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from escalation.models import Escalation, OverrideRequest, SlaRecord


def open_by_type() -> dict[str, tuple[int, int]]:
    """{failure type: (open escalations, of which past their SLA)} for ``/metrics``."""
    rows = (
        Escalation.objects.filter(status=Escalation.Status.OPEN)
        .values("failure_type")
        .annotate(
            open=Count("id"),
            overdue=Count(
                "id",
                filter=Q(sla__status=SlaRecord.Status.SLA_EXCEEDED)
                | Q(sla__status=SlaRecord.Status.ACTIVE, sla__deadline__lte=timezone.now()),
            ),
        )
    )
    return {row["failure_type"]: (row["open"], row["overdue"]) for row in rows}


# The dashboard's categories (seed 004's ``CIHealthDashboard``), in its order; every failure type
# lands in exactly one, so the counts add up to the open escalations.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("generator_drift", "Generator drift"),
    ("security", "Security"),
    ("database", "Database"),
    ("infrastructure", "Infrastructure"),
    ("test_failure", "Test failures"),
    ("other", "Build and other"),
)
URGENT_WITHIN = timedelta(hours=1)


def category_of(failure_type: str) -> str:
    """The dashboard category of a failure type: the seed's filters, plus dependency
    vulnerabilities under security and everything unmatched under "other"."""
    if failure_type.startswith("security_") or failure_type == "dependency_vulnerability":
        return "security"
    for key in ("generator_drift", "database", "infrastructure", "test_failure"):
        if key in failure_type:
            return key
    return "other"


def open_by_category(now: datetime | None = None) -> list[dict[str, Any]]:
    """[{key, label, count, urgent}] for every category, in the dashboard's order: open
    escalations, and how many of them have an active SLA with under an hour left (or overdue)."""
    now = now or timezone.now()
    rows = (
        Escalation.objects.filter(status=Escalation.Status.OPEN)
        .values("failure_type")
        .annotate(
            open=Count("id"),
            urgent=Count(
                "id",
                filter=Q(
                    sla__status=SlaRecord.Status.ACTIVE, sla__deadline__lt=now + URGENT_WITHIN
                ),
            ),
        )
    )
    counts = {key: {"count": 0, "urgent": 0} for key, _ in CATEGORIES}
    for row in rows:
        bucket = counts[category_of(row["failure_type"])]
        bucket["count"] += row["open"]
        bucket["urgent"] += row["urgent"]
    return [{"key": key, "label": label, **counts[key]} for key, label in CATEGORIES]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The first instant of ``day`` and of the day after, in the portal's time zone
    (``TIME_ZONE``): a day across a daylight-saving change is 23 or 25 hours long."""
    zone = timezone.get_default_timezone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def local_today(now: datetime | None = None) -> date:
    """Today in the portal's time zone."""
    return timezone.localdate(now or timezone.now(), timezone.get_default_timezone())


def breaches_today(now: datetime | None = None) -> int:
    """SLAs whose deadline passed today (local time) without a resolution in time."""
    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return SlaRecord.objects.filter(
        deadline__gte=start,
        deadline__lte=now,
        status__in=(SlaRecord.Status.ACTIVE, SlaRecord.Status.SLA_EXCEEDED),
    ).count()


def overview_section() -> dict[str, Any]:
    """The CI figures on the portal's overview page (``portal.overview``)."""
    ci_health = reverse("escalation:ci-health")
    return {
        "title": "CI health",
        "figures": [
            (
                "Open escalations",
                Escalation.objects.filter(status=Escalation.Status.OPEN).count(),
                ci_health,
            ),
            ("SLA breaches today", breaches_today(), ci_health),
            (
                "Overrides waiting",
                OverrideRequest.objects.filter(status=OverrideRequest.Status.PENDING).count(),
                reverse("admin:escalation_overriderequest_changelist") + "?status__exact=pending",
            ),
        ],
    }


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): the
# reports' CSV quotes such text cells with a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(rows: list[list[Any]]) -> str:
    """Rows as CSV text (the reports' downloads): None as empty, text that a spreadsheet would
    run as a formula prefixed with an apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow(
            [
                ""
                if cell is None
                else f"'{cell}"
                if isinstance(cell, str) and cell.startswith(FORMULA_STARTS)
                else cell
                for cell in row
            ]
        )
    return out.getvalue()
