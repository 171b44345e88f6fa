"""A week of CI history for the local demo (``make run`` → ``manage.py load_demo``, which calls
``load_demo_ci_history`` through ``settings.PORTAL_DEMO_LOADERS``), so that yesterday's daily
report and the weekly analysis show figures and charts on a fresh install.

Each of the last seven days (portal time zone) gets the same day's worth of settled failures
unless it has demo failures already: escalations routed as the matrix says, resolved within
their SLA or after missing it, a failure that keeps coming back, a flaky test and approved
overrides. Nothing is left open and nothing is sent (rows only, no outbox), so the live dashboard
and the trackers are untouched. The days' reports are then computed (idempotent). Refused on a
production (HTTPS) install by ``load_demo`` itself.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from escalation.models import Escalation, FailureEvent, OverrideRequest, SlaRecord
from escalation.services import daily_reports, reports, routing

DEMO_REPOSITORY = "demo/shop"
DAYS = 7


class DemoFailure(NamedTuple):
    at: tuple[int, int]  # local hour, minute
    failure_type: str
    job: str
    signature: str
    resolved_after: int  # minutes; past the SLA makes a miss
    every: int = 1  # on days whose number (1 = yesterday) this divides


DAY_PLAN = (
    DemoFailure(
        (9, 10), "test_failure", "unit-tests", "FAILED tests/test_checkout.py::test_total", 95
    ),
    DemoFailure((11, 40), "build_failure", "build", "error: cannot find symbol CartItem", 50),
    # Missed at 14:xx on most days: the weekly analysis recommends looking at that hour.
    DemoFailure((14, 20), "test_failure", "e2e", "TimeoutError: checkout page", 300),
    DemoFailure((16, 5), "infrastructure_timeout", "deploy-preview", "container start timeout", 20),
    DemoFailure(
        (2, 30), "database_connectivity", "migrations", "database connection refused", 90, 2
    ),
    DemoFailure((10, 0), "security_high", "trivy", "CVE-2026-1234 in openssl", 600, 3),
    DemoFailure(
        (13, 0), "generator_drift", "openapi-check", "generated client out of date", 100, 3
    ),
)
FLAKY_TEST = "tests/test_checkout.py::test_discount_rounding"
OVERRIDES = {  # day number: justification of the build failure's approved override
    1: "Emergency hotfix for the checkout outage; follow-up ticket to fix the build",
    2: "Hotfix approved by the release manager",
    4: "Hotfix approved by the release manager",
}


def load_demo_ci_history(now: datetime | None = None) -> str:
    """Fills the days of the last week that have no demo failures; returns what it did."""
    now = now or timezone.now()
    today = reports.local_today(now)
    days = [today - timedelta(days=n) for n in range(1, DAYS + 1)]
    users = get_user_model().objects.in_bulk(["operator", "qa"], field_name="username")
    filled = []
    for number, day in enumerate(days, start=1):
        start, end = reports.day_bounds(day)
        seen = FailureEvent.objects.filter(
            repository=DEMO_REPOSITORY, created_at__gte=start, created_at__lt=end
        )
        if not seen.exists():
            with transaction.atomic():
                fill_day(day, number, users.get("operator"), users.get("qa"))
            filled.append(day)
    for day in days:
        daily_reports.compute_daily_report(day, now)
    return (
        f"Demo CI history: {len(filled)} of the last {DAYS} days filled; "
        f"daily reports computed for {days[-1].isoformat()} to {days[0].isoformat()}."
    )


def fill_day(day: date, number: int, requester, approver) -> None:
    start, _end = reports.day_bounds(day)
    stamp = day.strftime("%Y%m%d")
    for n, planned in enumerate(DAY_PLAN):
        if number % planned.every:
            continue
        opened_at = start + timedelta(hours=planned.at[0], minutes=planned.at[1])
        snapshot = routing.routing_for(planned.failure_type)
        resolved_at = opened_at + timedelta(minutes=planned.resolved_after)
        deadline = opened_at + timedelta(minutes=snapshot["sla_minutes"])
        missed = resolved_at > deadline
        fingerprint = f"demo-{planned.failure_type}-{planned.job}"
        escalation = Escalation.objects.create(
            repository=DEMO_REPOSITORY,
            fingerprint=fingerprint,
            signature=planned.signature,
            failure_type=planned.failure_type,
            status=Escalation.Status.RESOLVED,
            priority=snapshot["priority"],
            routing=snapshot,
            first_seen_at=opened_at,
            last_seen_at=opened_at,
            resolved_at=resolved_at,
            resolution="demo: fixed",
        )
        failure = FailureEvent.objects.create(
            repository=DEMO_REPOSITORY,
            workflow="ci",
            job=planned.job,
            run_id=f"demo-{stamp}-{n}",
            failure_type=planned.failure_type,
            fingerprint=fingerprint,
            signature=planned.signature,
            escalation=escalation,
            status=FailureEvent.Status.RESOLVED,
            created_at=opened_at,
        )
        SlaRecord.objects.create(
            escalation=escalation,
            failure_type=planned.failure_type,
            assigned_teams=routing.team_names(snapshot),
            started_at=opened_at,
            deadline=deadline,
            status=SlaRecord.Status.SLA_EXCEEDED
            if missed
            else SlaRecord.Status.RESOLVED_WITHIN_SLA,
            exceeded_at=deadline if missed else None,
            resolved_at=resolved_at,
        )
        if planned.failure_type == "build_failure" and number in OVERRIDES and requester:
            OverrideRequest.objects.create(
                failure=failure,
                escalation=escalation,
                kind=OverrideRequest.Kind.HOTFIX,
                justification=OVERRIDES[number],
                requested_by=requester,
                status=OverrideRequest.Status.APPROVED,
                policy=snapshot["override_policy"],
                decided_by=approver,
                decided_at=opened_at + timedelta(minutes=20),
                decision_reason="demo: approved",
                created_at=opened_at + timedelta(minutes=10),
            )
    if number in (1, 2, 5):
        FailureEvent.objects.create(
            repository=DEMO_REPOSITORY,
            workflow="ci",
            job="unit-tests",
            run_id=f"demo-{stamp}-flaky",
            failure_type="test_failure",
            fingerprint="demo-flaky-discount",
            signature=f"FAILED {FLAKY_TEST}",
            failing_tests=[FLAKY_TEST],
            status=FailureEvent.Status.FLAKY,
            created_at=start + timedelta(hours=8, minutes=45),
        )
