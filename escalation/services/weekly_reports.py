"""The seed's weekly escalation pattern analysis (``analyze_weekly_patterns``) for the seven days
of the portal's time zone ending on a day, with the improvement recommendations the seed's
``generate_improvement_recommendations`` stands for (docs/escalation.md, "Reports").

Computed on demand, never stored: a week is seven days of indexed rows (a few small queries),
and the analysis then always follows the data as it settles (SLAs ending after the week,
reclassifications), where a stored copy would need recomputing for every such change.

- ``most_common_types``: the week's SLA records (one per escalation opened) by failure type,
  the five most common (the seed's ``head -5``).
- ``top_override_users``: approved overrides decided in the week by the user who requested them
  (the seed logs the requester as ``approver``), the five most frequent.
- ``sla_misses_by_hour``: the week's SLA records that were missed, by the hour of the day (portal
  time) their SLA started, every hour 0-23 (the seed's ``cut -d'T' -f2 | cut -d':' -f1``).
- ``repeating_fingerprints``: failures of the week sharing a repository and fingerprint, two or
  more times.
- ``flaky_tests``: tests (or jobs) of the week's failures that passed on a re-run.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Max
from django.utils import timezone

from escalation.models import FailureEvent, OverrideRequest, SlaRecord
from escalation.services import ingest, reports
from escalation.services.daily_reports import EMERGENCY_WORD, check_report_date, is_miss, rate

WEEK_DAYS = 7
TOP = 5  # the seed's head -5
TOP_PATTERNS = 10

# The recommendations' thresholds (one place; docs/escalation.md lists them).
STAFFING_MISSES_PER_HOUR = 3  # SLA misses started in one hour of the day across the week
DOMINANT_TYPE_SHARE = 0.4  # a type with this share of the week's failures ...
DOMINANT_TYPE_MIN = 5  # ... and at least this many
RECURRING_FINGERPRINT_MIN = 3  # the same failure this many times in a week
FLAKY_TEST_MIN = 2  # a test flaky this many times in a week
OVERRIDE_USER_MIN = 3  # approved overrides requested by one user in a week
COMPLIANCE_TARGET = 90.0  # percent of the week's SLAs met
SHOWN_PER_RULE = 3  # at most this many recommendations of one rule


def week_bounds(week_ending: date) -> tuple[date, datetime, datetime]:
    """The week's first day, and its first and last instants (portal time zone)."""
    first = week_ending - timedelta(days=WEEK_DAYS - 1)
    return first, reports.day_bounds(first)[0], reports.day_bounds(week_ending)[1]


def analyze_weekly_patterns(week_ending: date, now: datetime | None = None) -> dict[str, Any]:
    """The pattern analysis of the seven days ending on ``week_ending`` (included), as of now."""
    now = now or timezone.now()
    check_report_date(week_ending, now)
    first, start, end = week_bounds(week_ending)
    zone = timezone.get_default_timezone()

    records = list(
        SlaRecord.objects.filter(started_at__gte=start, started_at__lt=end).values_list(
            "failure_type", "status", "deadline", "started_at"
        )
    )
    types = Counter(failure_type for failure_type, *_ in records)
    missed = [
        started for _t, status, deadline, started in records if is_miss(status, deadline, now)
    ]
    hits = sum(1 for _t, status, *_ in records if status == SlaRecord.Status.RESOLVED_WITHIN_SLA)
    misses_by_hour = Counter(timezone.localtime(started, zone).hour for started in missed)
    days = {first + timedelta(days=n): {"failures": 0, "sla_misses": 0} for n in range(WEEK_DAYS)}
    for _t, status, deadline, started in records:
        bucket = days[timezone.localdate(started, zone)]
        bucket["failures"] += 1
        bucket["sla_misses"] += is_miss(status, deadline, now)

    approved = list(
        OverrideRequest.objects.filter(
            status=OverrideRequest.Status.APPROVED, decided_at__gte=start, decided_at__lt=end
        ).values_list("requested_by__username", "justification")
    )
    users = Counter(username or "(deleted user)" for username, _text in approved)
    emergencies = Counter(
        username or "(deleted user)"
        for username, text in approved
        if EMERGENCY_WORD in text.lower()
    )

    repeating = [
        {
            "repository": row["repository"],
            "fingerprint": row["fingerprint"],
            "signature": row["signature"],
            "failure_type": row["failure_type"],
            "occurrences": row["occurrences"],
            "last_seen": row["last_seen"],
        }
        for row in FailureEvent.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("repository", "fingerprint")
        .annotate(
            occurrences=Count("id"),
            signature=Max("signature"),
            failure_type=Max("failure_type"),
            last_seen=Max("created_at"),
        )
        .filter(occurrences__gte=2)
        .order_by("-occurrences", "repository", "fingerprint")[:TOP_PATTERNS]
    ]
    flaky = ingest.flaky_tests(since=start, until=end)[:TOP_PATTERNS]

    analysis = {
        "week_ending": week_ending.isoformat(),
        "week_starting": first.isoformat(),
        "timezone": str(zone),
        "complete": week_ending < reports.local_today(now),
        "totals": {
            "total_failures": len(records),
            "sla_hits": hits,
            "sla_misses": len(missed),
            "compliance_rate": rate(hits, len(records)),
            "total_overrides": len(approved),
            "emergency_overrides": sum(emergencies.values()),
        },
        "most_common_types": [
            {"failure_type": failure_type, "count": count}
            for failure_type, count in sorted(types.items(), key=lambda i: (-i[1], i[0]))[:TOP]
        ],
        "top_override_users": [
            {"user": user, "overrides": count, "emergency_overrides": emergencies.get(user, 0)}
            for user, count in sorted(users.items(), key=lambda i: (-i[1], i[0]))[:TOP]
        ],
        "sla_misses_by_hour": [
            {"hour": hour, "misses": misses_by_hour.get(hour, 0)} for hour in range(24)
        ],
        "repeating_fingerprints": repeating,
        "flaky_tests": flaky,
        "daily": [{"date": day.isoformat(), **figures} for day, figures in days.items()],
    }
    analysis["recommendations"] = generate_improvement_recommendations(analysis)
    return analysis


def generate_improvement_recommendations(analysis: dict[str, Any]) -> list[dict[str, str]]:
    """What the week's patterns suggest, rule by rule (the thresholds above), most pressing
    first: each ``{rule, message}``."""
    found: list[dict[str, str]] = []
    totals = analysis["totals"]

    rate_ = totals["compliance_rate"]
    if rate_ is not None and rate_ < COMPLIANCE_TARGET:
        found.append(
            {
                "rule": "sla_compliance",
                "message": f"SLA compliance was {rate_:g}% ({totals['sla_hits']} of "
                f"{totals['total_failures']}), under the {COMPLIANCE_TARGET:g}% target: review "
                "the routing matrix's owners and SLA durations for the missed types.",
            }
        )

    busy = [
        row for row in analysis["sla_misses_by_hour"] if row["misses"] >= STAFFING_MISSES_PER_HOUR
    ]
    busy.sort(key=lambda row: (-row["misses"], row["hour"]))
    for row in busy[:SHOWN_PER_RULE]:
        hour = row["hour"]
        found.append(
            {
                "rule": "staffing",
                "message": f"{row['misses']} SLA misses started between {hour:02d}:00 and "
                f"{(hour + 1) % 24:02d}:00 ({analysis['timezone']}): review on-call staffing "
                "and hand-overs for that hour.",
            }
        )

    total = totals["total_failures"]
    for row in analysis["most_common_types"][:1]:
        if row["count"] >= DOMINANT_TYPE_MIN and row["count"] >= DOMINANT_TYPE_SHARE * total:
            found.append(
                {
                    "rule": "dominant_type",
                    "message": f"{row['failure_type']} caused {row['count']} of {total} "
                    "failures: invest in preventing it (pre-commit checks, better tests, "
                    "infrastructure capacity) rather than triaging it each time.",
                }
            )

    for row in analysis["repeating_fingerprints"][:SHOWN_PER_RULE]:
        if row["occurrences"] >= RECURRING_FINGERPRINT_MIN:
            found.append(
                {
                    "rule": "recurring_failure",
                    "message": f"The same {row['failure_type']} failure in {row['repository']} "
                    f"came back {row['occurrences']} times ({row['signature'] or row['fingerprint'][:12]}): "
                    "fix its cause instead of re-running it.",
                }
            )

    for row in analysis["flaky_tests"][:SHOWN_PER_RULE]:
        if row["count"] >= FLAKY_TEST_MIN:
            found.append(
                {
                    "rule": "flaky_test",
                    "message": f"{row['test']} in {row['repository']} was flaky {row['count']} "
                    "times: quarantine it and fix it.",
                }
            )

    for row in analysis["top_override_users"][:SHOWN_PER_RULE]:
        if row["overrides"] >= OVERRIDE_USER_MIN:
            found.append(
                {
                    "rule": "override_usage",
                    "message": f"{row['user']} had {row['overrides']} overrides approved "
                    f"({row['emergency_overrides']} emergencies): check that their follow-up "
                    "tickets are done and why the failures keep needing overrides.",
                }
            )
    return found


def csv_rows(analysis: dict[str, Any]) -> list[list[Any]]:
    """The analysis as rows of ``section, name, value, detail``."""
    rows: list[list[Any]] = [["section", "name", "value", "detail"]]
    for name in ("week_starting", "week_ending", "timezone"):
        rows.append(["report", name, analysis[name], ""])
    rows.extend(["totals", name, value, ""] for name, value in analysis["totals"].items())
    rows.extend(
        ["most_common_types", row["failure_type"], row["count"], ""]
        for row in analysis["most_common_types"]
    )
    rows.extend(
        [
            "top_override_users",
            row["user"],
            row["overrides"],
            f"{row['emergency_overrides']} emergency",
        ]
        for row in analysis["top_override_users"]
    )
    rows.extend(
        ["sla_misses_by_hour", f"{row['hour']:02d}", row["misses"], ""]
        for row in analysis["sla_misses_by_hour"]
    )
    rows.extend(
        [
            "repeating_fingerprints",
            f"{row['repository']} {row['fingerprint'][:12]}",
            row["occurrences"],
            f"{row['failure_type']}: {row['signature']}",
        ]
        for row in analysis["repeating_fingerprints"]
    )
    rows.extend(
        ["flaky_tests", f"{row['repository']} {row['test']}", row["count"], ""]
        for row in analysis["flaky_tests"]
    )
    rows.extend(
        ["daily", row["date"], row["failures"], f"{row['sla_misses']} SLA misses"]
        for row in analysis["daily"]
    )
    rows.extend(
        ["recommendations", row["rule"], "", row["message"]] for row in analysis["recommendations"]
    )
    return rows
