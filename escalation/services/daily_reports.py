"""The seed's daily escalation metrics (``collect_daily_metrics``), one day of the portal's time
zone at a time, stored as a ``DailyReport`` (docs/escalation.md, "Reports").

What the seed counts, and where it comes from here:

- ``sla_compliance``: the SLA records *started* that day (the seed's ``sla-tracking.jsonl``: one
  per escalation opened). ``sla_hits`` were resolved within their SLA, ``sla_misses`` exceeded it
  (or are still active past their deadline: the sweep has not marked them yet), ``sla_pending``
  are still running. ``compliance_rate`` is the seed's ``sla_hits * 100 / total_failures`` with
  ``bc``'s ``scale=2`` (truncated to two decimals); null on a day without failures.
- ``override_usage``: the overrides *approved* that day (the seed logs approvals in
  ``ci-overrides.jsonl``); ``emergency_overrides`` are those whose justification says
  "emergency" (any case). ``override_rate`` is ``total_overrides * 100 / total_failures``.
- ``failure_distribution``: the seed's three counts of the day's SLA records (``generator_drift``,
  ``security``: every ``security_*`` type, ``infrastructure``: every type naming it), the count
  of each type, and of each dashboard category.
- ``team_performance``: the SLA records *resolved* that day: the mean time from the SLA's start
  to the resolution in hours, and the team with the lowest mean (a record counts for each of its
  assigned teams; ties go to the team that resolved more, then by name).

A day's SLAs settle after it ends (a 24-hour SLA started at 23:00 ends the next evening): the beat
job (``compute_due_reports``) computes yesterday shortly after midnight and again while any of its
SLAs, or the day before's, is still running, so the stored figures end up final.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from django.utils import timezone

from escalation.errors import ReportDateInvalid
from escalation.models import DailyReport, FailureEvent, OverrideRequest, SlaRecord
from escalation.services import reports

EMERGENCY_WORD = "emergency"
# No report goes further back (a week before the first day of year 1 does not exist).
EARLIEST_REPORT_DATE = date(2000, 1, 1)
# How many days back the beat job looks for figures still settling (see the module's docstring).
SETTLING_DAYS = 2


def check_report_date(day: date, now: datetime | None = None) -> None:
    """Refuses a day no report can have: in the future, or before ``EARLIEST_REPORT_DATE``."""
    if day < EARLIEST_REPORT_DATE:
        raise ReportDateInvalid(
            f"{day.isoformat()} is before {EARLIEST_REPORT_DATE.isoformat()}, the earliest report."
        )
    if day > reports.local_today(now):
        raise ReportDateInvalid(f"{day.isoformat()} is in the future.")


def is_miss(status: str, deadline: datetime, now: datetime) -> bool:
    """An SLA missed: marked exceeded, or still active past its deadline."""
    return status == SlaRecord.Status.SLA_EXCEEDED or (
        status == SlaRecord.Status.ACTIVE and deadline <= now
    )


def rate(part: int, whole: int) -> float | None:
    """``part * 100 / whole`` as the seed's ``bc`` with ``scale=2`` gives it (truncated)."""
    if not whole:
        return None
    return float((Decimal(part * 100) / Decimal(whole)).quantize(Decimal("0.01"), ROUND_DOWN))


def hours(value: float) -> float:
    return float(Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP))


def distribution(failure_types: list[str]) -> dict[str, Any]:
    """The seed's failure distribution of a list of failure types, with each type's count and
    each dashboard category's."""
    by_type = Counter(failure_types)
    by_category = Counter(reports.category_of(failure_type) for failure_type in failure_types)
    return {
        "generator_drift": by_type.get("generator_drift", 0),
        "security": sum(n for t, n in by_type.items() if t.startswith("security_")),
        "infrastructure": sum(n for t, n in by_type.items() if "infrastructure" in t),
        "by_type": dict(sorted(by_type.items(), key=lambda item: (-item[1], item[0]))),
        "by_category": {key: by_category.get(key, 0) for key, _label in reports.CATEGORIES},
    }


def compute_daily_metrics(day: date, now: datetime | None = None) -> dict[str, Any]:
    """The seed's daily metrics of ``day`` (portal time zone), as of ``now``."""
    now = now or timezone.now()
    start, end = reports.day_bounds(day)
    records = list(
        SlaRecord.objects.filter(started_at__gte=start, started_at__lt=end).values_list(
            "failure_type", "status", "deadline"
        )
    )
    total = len(records)
    hits = sum(1 for _type, status, _deadline in records if status == "resolved_within_sla")
    misses = sum(1 for _type, status, deadline in records if is_miss(status, deadline, now))

    justifications = list(
        OverrideRequest.objects.filter(
            status=OverrideRequest.Status.APPROVED, decided_at__gte=start, decided_at__lt=end
        ).values_list("justification", flat=True)
    )
    emergency = sum(1 for text in justifications if EMERGENCY_WORD in text.lower())

    team_hours: dict[str, list[float]] = defaultdict(list)
    durations = []
    for started_at, resolved_at, teams in SlaRecord.objects.filter(
        resolved_at__gte=start, resolved_at__lt=end
    ).values_list("started_at", "resolved_at", "assigned_teams"):
        taken = max((resolved_at - started_at).total_seconds(), 0) / 3600
        durations.append(taken)
        for team in teams or []:
            team_hours[str(team)].append(taken)
    by_team = sorted(
        (
            {
                "team": team,
                "resolved": len(taken),
                "avg_resolution_time_hours": hours(sum(taken) / len(taken)),
            }
            for team, taken in team_hours.items()
        ),
        key=lambda row: (row["avg_resolution_time_hours"], -row["resolved"], row["team"]),
    )

    return {
        "date": day.isoformat(),
        "timezone": str(timezone.get_default_timezone()),
        "sla_compliance": {
            "total_failures": total,
            "sla_hits": hits,
            "sla_misses": misses,
            "sla_pending": total - hits - misses,
            "compliance_rate": rate(hits, total),
        },
        "override_usage": {
            "total_overrides": len(justifications),
            "emergency_overrides": emergency,
            "override_rate": rate(len(justifications), total),
        },
        "failure_distribution": distribution([failure_type for failure_type, *_ in records]),
        "team_performance": {
            "resolved": len(durations),
            "avg_resolution_time_hours": hours(sum(durations) / len(durations))
            if durations
            else None,
            "fastest_resolving_team": by_team[0]["team"] if by_team else None,
            "by_team": by_team,
        },
        "failures_reported": FailureEvent.objects.filter(
            created_at__gte=start, created_at__lt=end
        ).count(),
    }


def compute_daily_report(day: date, now: datetime | None = None) -> DailyReport:
    """Computes ``day``'s metrics and stores them; computing a day again replaces its row."""
    now = now or timezone.now()
    if day >= reports.local_today(now):
        raise ReportDateInvalid(
            f"{day.isoformat()} has not ended yet; a daily report is stored once its day is over."
        )
    metrics = compute_daily_metrics(day, now)
    compliance, overrides = metrics["sla_compliance"], metrics["override_usage"]
    report, _created = DailyReport.objects.update_or_create(
        date=day,
        defaults={
            "metrics": metrics,
            "total_failures": compliance["total_failures"],
            "sla_hits": compliance["sla_hits"],
            "sla_misses": compliance["sla_misses"],
            "compliance_rate": None
            if compliance["compliance_rate"] is None
            else Decimal(str(compliance["compliance_rate"])),
            "total_overrides": overrides["total_overrides"],
            "emergency_overrides": overrides["emergency_overrides"],
            "computed_at": now,
        },
    )
    return report


def settled(report: DailyReport) -> bool:
    """Computed after its day ended, with no SLA of the day still running."""
    _start, end = reports.day_bounds(report.date)
    pending = report.metrics.get("sla_compliance", {}).get("sla_pending", 0)
    return report.computed_at >= end and not pending


def compute_due_reports(now: datetime | None = None) -> list[date]:
    """The beat job: yesterday's report once its day is over, and again (with the day before)
    while its SLAs are still settling. Returns the days computed."""
    now = now or timezone.now()
    today = reports.local_today(now)
    days = [today - timedelta(days=n) for n in range(1, SETTLING_DAYS + 1)]
    stored = {report.date: report for report in DailyReport.objects.filter(date__in=days)}
    due = [day for day in days if day not in stored or not settled(stored[day])]
    for day in due:
        compute_daily_report(day, now)
    return due


@dataclass(frozen=True)
class DailyView:
    """A day's figures as the pages and the API show them: stored, or live for today."""

    day: date
    metrics: dict[str, Any]
    computed_at: datetime
    complete: bool  # False for today: the day is not over


def daily_report(day: date, now: datetime | None = None) -> DailyView:
    """``day``'s report: the stored one, computed now if missing (a past day); today's figures so
    far, not stored; a day in the future is refused."""
    now = now or timezone.now()
    check_report_date(day, now)
    if day == reports.local_today(now):
        return DailyView(day, compute_daily_metrics(day, now), now, complete=False)
    report = DailyReport.objects.filter(date=day).first() or compute_daily_report(day, now)
    return DailyView(day, report.metrics, report.computed_at, complete=True)


def recent_reports(days: int = 14, now: datetime | None = None) -> list[dict[str, Any]]:
    """The last ``days`` days before today, newest first, each with its stored report or None."""
    today = reports.local_today(now)
    dates = [today - timedelta(days=n) for n in range(1, days + 1)]
    stored = {report.date: report for report in DailyReport.objects.filter(date__in=dates)}
    return [{"date": day, "report": stored.get(day)} for day in dates]


def csv_rows(view: DailyView) -> list[list[Any]]:
    """The report as rows of ``section, name, value``: the seed's figures, then each type's and
    each team's."""
    metrics = view.metrics
    rows: list[list[Any]] = [["section", "name", "value"], ["report", "date", metrics["date"]]]
    rows.append(["report", "timezone", metrics["timezone"]])
    rows.append(["report", "complete", "yes" if view.complete else "no (the day is not over)"])
    for section in ("sla_compliance", "override_usage"):
        rows.extend([section, name, value] for name, value in metrics[section].items())
    distribution_ = metrics["failure_distribution"]
    for name in ("generator_drift", "security", "infrastructure"):
        rows.append(["failure_distribution", name, distribution_[name]])
    rows.extend(
        ["failure_distribution.by_type", name, n] for name, n in distribution_["by_type"].items()
    )
    rows.extend(
        ["failure_distribution.by_category", name, n]
        for name, n in distribution_["by_category"].items()
    )
    team = metrics["team_performance"]
    for name in ("resolved", "avg_resolution_time_hours", "fastest_resolving_team"):
        rows.append(["team_performance", name, team[name]])
    rows.extend(
        ["team_performance.by_team", row["team"], row["avg_resolution_time_hours"]]
        for row in team["by_team"]
    )
    rows.append(["report", "failures_reported", metrics["failures_reported"]])
    return rows
