"""The CI reports (issue 10): the seed's daily metrics and weekly pattern analysis computed from a
known set of failures, SLAs and overrides (exact figures, days of the portal's time zone),
stored idempotently by the beat job, as JSON, CSV and pages with their charts' data."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from escalation.models import DailyReport, Escalation, FailureEvent, OverrideRequest, SlaRecord
from escalation.services import daily_reports, reports, sla, weekly_reports
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 3, 10)  # a Tuesday, CET (UTC+1)
# The morning after: the day is over, one 24-hour SLA of the day is still running.
NOW = datetime(2026, 3, 11, 10, 0, tzinfo=BERLIN)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


def escalation(
    failure_type: str,
    started: datetime,
    sla_minutes: int,
    status: str = SlaRecord.Status.ACTIVE,
    resolved: datetime | None = None,
    teams: tuple[str, ...] = ("qa_analyst",),
    fingerprint: str | None = None,
) -> Escalation:
    """An escalation opened at ``started`` with its failure and SLA record in ``status``."""
    number = Escalation.objects.count() + 1
    fingerprint = fingerprint or f"fp-{number}"
    opened = Escalation.objects.create(
        repository="acme/shop",
        fingerprint=fingerprint,
        signature=f"signature {number}",
        failure_type=failure_type,
        priority="HIGH",
        status=Escalation.Status.RESOLVED if resolved else Escalation.Status.OPEN,
        first_seen_at=started,
        resolved_at=resolved,
    )
    FailureEvent.objects.create(
        repository="acme/shop",
        job="build",
        run_id=f"run-{number}",
        failure_type=failure_type,
        fingerprint=fingerprint,
        signature=f"signature {number}",
        escalation=opened,
        created_at=started,
    )
    SlaRecord.objects.create(
        escalation=opened,
        failure_type=failure_type,
        assigned_teams=list(teams),
        started_at=started,
        deadline=started + timedelta(minutes=sla_minutes),
        status=status,
        resolved_at=resolved,
    )
    return opened


def override(
    failure: FailureEvent,
    user,
    justification: str,
    decided: datetime,
    status: str = OverrideRequest.Status.APPROVED,
) -> OverrideRequest:
    return OverrideRequest.objects.create(
        failure=failure,
        escalation=failure.escalation,
        justification=justification,
        requested_by=user,
        status=status,
        policy="hotfix_approval",
        decided_at=decided,
        created_at=decided - timedelta(minutes=5),
    )


@pytest.fixture
def berlin(settings):
    settings.TIME_ZONE = "Europe/Berlin"


@pytest.fixture
def known_week(berlin):
    """The known set: six SLAs started on DAY (three met, two missed, one running), failures
    around midnight on both sides, overrides, a repeating fingerprint, flaky tests and SLA
    misses clustering at 14:00 across the week."""
    hit = SlaRecord.Status.RESOLVED_WITHIN_SLA
    exceeded = SlaRecord.Status.SLA_EXCEEDED
    first = escalation("test_failure", local(DAY, 9), 240, hit, local(DAY, 10, 30))
    escalation("test_failure", local(DAY, 14), 240, exceeded, local(DAY, 20))
    # Started 23:30 local (22:30 UTC): DAY's; its 1-hour SLA ended after midnight, unresolved.
    escalation("security_secrets", local(DAY, 23, 30), 60, teams=("security_team",))
    # Started 00:15 local, which is the day before in UTC: still DAY's.
    escalation(
        "generator_drift", local(DAY, 0, 15), 120, hit, local(DAY, 1, 15),
        teams=("backend_dev", "frontend_dev"),
    )  # fmt: skip
    escalation(
        "infrastructure_timeout", local(DAY, 12), 30, hit, local(DAY, 12, 20), teams=("devops",)
    )
    escalation("security_advisory", local(DAY, 22), 24 * 60, teams=("security_team",))
    # The day before, resolved on DAY: in DAY's team performance only.
    escalation("test_failure", local(DAY - timedelta(days=1), 23, 30), 240, hit, local(DAY, 0, 30))
    # The day after: in neither.
    escalation("build_failure", local(DAY + timedelta(days=1), 0, 5), 120)
    # Missed SLAs started at 14:xx earlier in the week: three misses in that hour.
    escalation("test_failure", local(DAY - timedelta(days=3), 14, 10), 240, exceeded)
    escalation("test_failure", local(DAY - timedelta(days=4), 14, 50), 240, exceeded)

    # The first escalation's failure came back twice (a repeating fingerprint).
    for n, when in enumerate((local(DAY, 9, 30), local(DAY - timedelta(days=2), 8))):
        FailureEvent.objects.create(
            repository="acme/shop", job="build", run_id=f"repeat-{n}", failure_type="test_failure",
            fingerprint=first.fingerprint, signature=first.signature, escalation=first,
            created_at=when,
        )  # fmt: skip
    # A test flaky twice in the week, and once before it.
    for n, when in enumerate(
        (local(DAY, 8), local(DAY - timedelta(days=5), 8), local(DAY - timedelta(days=9), 8))
    ):
        FailureEvent.objects.create(
            repository="acme/api", job="unit", run_id=f"flaky-{n}", failure_type="test_failure",
            fingerprint="flaky", status=FailureEvent.Status.FLAKY,
            failing_tests=["tests/test_cart.py::test_total"], created_at=when,
        )  # fmt: skip

    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    failure = first.failures.order_by("id").first()
    override(failure, alice, "Emergency hotfix for the release", local(DAY, 11))
    override(failure, bob, "infrastructure flake, re-run later", local(DAY, 15))
    override(failure, bob, "emergency, but not approved", local(DAY, 16), "denied")
    override(failure, alice, "EMERGENCY: production down", local(DAY + timedelta(days=1), 0, 10))
    override(
        failure, alice, "hotfix approved by the release manager", local(DAY, 7) - timedelta(days=2)
    )
    override(failure, alice, "emergency patch", local(DAY - timedelta(days=5), 9))


# --- daily metrics ------------------------------------------------------------------------------
def test_the_daily_metrics_of_a_known_day_are_the_seeds_figures(known_week):
    metrics = daily_reports.compute_daily_metrics(DAY, NOW)

    assert metrics["date"] == "2026-03-10"
    assert metrics["timezone"] == "Europe/Berlin"
    assert metrics["sla_compliance"] == {
        "total_failures": 6,
        "sla_hits": 3,
        "sla_misses": 2,  # one marked exceeded, one still active past its deadline
        "sla_pending": 1,
        "compliance_rate": 50.0,
    }
    assert metrics["override_usage"] == {
        "total_overrides": 2,
        "emergency_overrides": 1,
        "override_rate": 33.33,  # 2 * 100 / 6, truncated as bc's scale=2
    }
    distribution = metrics["failure_distribution"]
    assert (distribution["generator_drift"], distribution["security"]) == (1, 2)
    assert distribution["infrastructure"] == 1
    assert distribution["by_type"] == {
        "test_failure": 2,
        "generator_drift": 1,
        "infrastructure_timeout": 1,
        "security_advisory": 1,
        "security_secrets": 1,
    }
    assert distribution["by_category"] == {
        "generator_drift": 1, "security": 2, "database": 0, "infrastructure": 1,
        "test_failure": 2, "other": 0,
    }  # fmt: skip
    # Resolved on DAY: 1.5 h, 6 h, 1 h, 20 min and the day before's 1 h.
    assert metrics["team_performance"] == {
        "resolved": 5,
        "avg_resolution_time_hours": 1.97,
        "fastest_resolving_team": "devops",
        "by_team": [
            {"team": "devops", "resolved": 1, "avg_resolution_time_hours": 0.33},
            {"team": "backend_dev", "resolved": 1, "avg_resolution_time_hours": 1.0},
            {"team": "frontend_dev", "resolved": 1, "avg_resolution_time_hours": 1.0},
            {"team": "qa_analyst", "resolved": 3, "avg_resolution_time_hours": 2.83},
        ],
    }
    assert metrics["failures_reported"] == 8  # six escalations' failures, a repeat, a flaky job


def test_a_day_without_failures_has_no_rates_rather_than_a_division_by_zero(berlin):
    metrics = daily_reports.compute_daily_metrics(DAY, NOW)

    assert metrics["sla_compliance"]["compliance_rate"] is None
    assert metrics["override_usage"]["override_rate"] is None
    assert metrics["team_performance"]["fastest_resolving_team"] is None


def test_the_same_instants_belong_to_other_days_in_another_time_zone(known_week, settings):
    settings.TIME_ZONE = "UTC"

    metrics = daily_reports.compute_daily_metrics(DAY, NOW)

    # 00:15 Berlin is the day before in UTC; the next day's 00:05 Berlin is DAY's 23:05 UTC.
    assert metrics["failure_distribution"]["generator_drift"] == 0
    assert metrics["failure_distribution"]["by_type"]["build_failure"] == 1


def test_computing_a_day_again_replaces_its_report(known_week):
    with time_machine.travel(NOW, tick=False):
        first = daily_reports.compute_daily_report(DAY)
        again = daily_reports.compute_daily_report(DAY)
        assert (again.pk, again.metrics) == (first.pk, first.metrics)
        running = SlaRecord.objects.get(failure_type="security_advisory").escalation
        sla.resolve(running, "fixed")
        updated = daily_reports.compute_daily_report(DAY)

    assert DailyReport.objects.count() == 1
    assert updated.pk == first.pk
    assert (updated.total_failures, updated.sla_hits, updated.sla_misses) == (6, 4, 2)
    assert str(updated.compliance_rate) == "66.66"
    assert (updated.total_overrides, updated.emergency_overrides) == (2, 1)
    assert updated.metrics["sla_compliance"]["sla_pending"] == 0


def test_a_day_that_is_not_over_is_not_stored_but_shown_so_far(known_week):
    with time_machine.travel(local(DAY, 18), tick=False):
        with pytest.raises(Exception, match="has not ended yet"):
            daily_reports.compute_daily_report(DAY)
        today = daily_reports.daily_report(DAY)

    assert today.complete is False
    assert DailyReport.objects.count() == 0
    # As of 18:00: the 14:00 SLA is missed, the evening's are still running.
    assert today.metrics["sla_compliance"]["sla_misses"] == 1
    assert today.metrics["sla_compliance"]["sla_pending"] == 2


def test_the_beat_job_computes_yesterday_after_midnight_and_again_while_slas_settle(known_week):
    from escalation import tasks

    after_midnight = local(DAY + timedelta(days=1), 0, 5)
    with time_machine.travel(after_midnight, tick=False):
        assert tasks.compute_daily_reports() == ["2026-03-10", "2026-03-09"]
        # DAY still has a running SLA; the day before has settled.
        assert tasks.compute_daily_reports() == ["2026-03-10"]
    running = SlaRecord.objects.get(failure_type="security_advisory").escalation
    with time_machine.travel(NOW, tick=False):
        sla.resolve(running, "fixed")
        assert tasks.compute_daily_reports() == ["2026-03-10"]
        assert tasks.compute_daily_reports() == []

    stored = DailyReport.objects.get(date=DAY)
    assert stored.metrics["sla_compliance"]["sla_hits"] == 4
    assert DailyReport.objects.count() == 2


def test_the_beat_job_is_scheduled_by_the_migration():
    from django_celery_beat.models import PeriodicTask

    from portal.celery import app

    task = PeriodicTask.objects.get(name="escalation daily reports")
    assert task.task == "escalation.compute_daily_reports"
    assert task.enabled
    assert task.interval.every == 600 and task.interval.period == "seconds"
    assert "escalation.compute_daily_reports" in app.tasks


# --- weekly analysis ----------------------------------------------------------------------------
def test_the_weekly_analysis_finds_the_weeks_patterns(known_week):
    analysis = weekly_reports.analyze_weekly_patterns(DAY, NOW)

    assert (analysis["week_starting"], analysis["week_ending"]) == ("2026-03-04", "2026-03-10")
    assert analysis["totals"] == {
        "total_failures": 9,
        "sla_hits": 4,
        "sla_misses": 4,
        "compliance_rate": 44.44,
        "total_overrides": 4,
        "emergency_overrides": 2,
    }
    assert analysis["most_common_types"] == [
        {"failure_type": "test_failure", "count": 5},
        {"failure_type": "generator_drift", "count": 1},
        {"failure_type": "infrastructure_timeout", "count": 1},
        {"failure_type": "security_advisory", "count": 1},
        {"failure_type": "security_secrets", "count": 1},
    ]
    assert analysis["top_override_users"] == [
        {"user": "alice", "overrides": 3, "emergency_overrides": 2},
        {"user": "bob", "overrides": 1, "emergency_overrides": 0},
    ]
    misses = {row["hour"]: row["misses"] for row in analysis["sla_misses_by_hour"]}
    assert len(misses) == 24
    assert {hour: n for hour, n in misses.items() if n} == {14: 3, 23: 1}
    assert [
        (row["repository"], row["fingerprint"], row["occurrences"])
        for row in analysis["repeating_fingerprints"]
    ] == [("acme/shop", "fp-1", 3), ("acme/api", "flaky", 2)]
    [flaky] = analysis["flaky_tests"]
    assert (flaky["test"], flaky["count"]) == ("tests/test_cart.py::test_total", 2)
    assert analysis["daily"][-2:] == [
        {"date": "2026-03-09", "failures": 1, "sla_misses": 0},
        {"date": "2026-03-10", "failures": 6, "sla_misses": 2},
    ]


def test_the_weekly_recommendations_follow_the_rules(known_week):
    recommendations = weekly_reports.analyze_weekly_patterns(DAY, NOW)["recommendations"]

    assert [item["rule"] for item in recommendations] == [
        "sla_compliance",
        "staffing",
        "dominant_type",
        "recurring_failure",
        "flaky_test",
        "override_usage",
    ]
    staffing = recommendations[1]["message"]
    assert staffing.startswith("3 SLA misses started between 14:00 and 15:00 (Europe/Berlin)")
    assert "staffing" in staffing
    assert "alice had 3 overrides approved (2 emergencies)" in recommendations[-1]["message"]


def test_a_quiet_week_has_no_recommendations(berlin):
    escalation(
        "test_failure", local(DAY, 9), 240, SlaRecord.Status.RESOLVED_WITHIN_SLA, local(DAY, 10)
    )

    assert weekly_reports.analyze_weekly_patterns(DAY, NOW)["recommendations"] == []


# --- API ----------------------------------------------------------------------------------------
@pytest.fixture
def qa_api(api_client):
    api_client.force_authenticate(UserFactory(roles=["qa"]))
    return api_client


def test_the_daily_api_answers_the_stored_report(known_week, qa_api, django_assert_max_num_queries):
    with time_machine.travel(NOW, tick=False):
        daily_reports.compute_daily_report(DAY)
        with django_assert_max_num_queries(6):
            response = qa_api.get("/api/v1/ci/reports/daily", {"date": "2026-03-10"})

    assert response.status_code == 200
    body = response.json()
    assert body["complete"] is True
    assert body["sla_compliance"]["compliance_rate"] == 50.0
    assert body["override_usage"]["emergency_overrides"] == 1
    assert body["team_performance"]["fastest_resolving_team"] == "devops"


def test_the_daily_api_defaults_to_yesterday_and_computes_a_missing_day(known_week, qa_api):
    with time_machine.travel(NOW, tick=False):
        response = qa_api.get("/api/v1/ci/reports/daily")

    assert response.status_code == 200
    assert response.json()["date"] == "2026-03-10"
    assert DailyReport.objects.filter(date=DAY).exists()


def test_the_daily_api_downloads_csv(known_week, qa_api):
    with time_machine.travel(NOW, tick=False):
        response = qa_api.get("/api/v1/ci/reports/daily", {"date": "2026-03-10", "format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="ci-daily-2026-03-10.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["section", "name", "value"]
    assert ["sla_compliance", "compliance_rate", "50.0"] in rows
    assert ["override_usage", "emergency_overrides", "1"] in rows
    assert ["team_performance", "fastest_resolving_team", "devops"] in rows
    assert ["failure_distribution.by_type", "test_failure", "2"] in rows


def test_the_weekly_api_answers_json_and_csv(known_week, qa_api, django_assert_max_num_queries):
    with time_machine.travel(NOW, tick=False):
        with django_assert_max_num_queries(10):
            response = qa_api.get("/api/v1/ci/reports/weekly", {"date": "2026-03-10"})
        download = qa_api.get("/api/v1/ci/reports/weekly", {"date": "2026-03-10", "format": "csv"})

    assert response.status_code == 200
    assert response.json()["top_override_users"][0]["user"] == "alice"
    assert len(response.json()["recommendations"]) == 6
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert ["sla_misses_by_hour", "14", "3", ""] in rows
    assert ["most_common_types", "test_failure", "5", ""] in rows


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(berlin):
    text = reports.csv_text([["name", "value"], ["=HYPERLINK(1)", "@user"], ["plain", None]])

    assert text.splitlines() == ["name,value", "'=HYPERLINK(1),'@user", "plain,"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-02-30", "date"),
        ("10/03/2026", "date"),
        ("tomorrow", "date"),
        ("2026-03-12", "future"),
        ("1999-12-31", "2000-01-01"),
        ("0001-01-01", "2000-01-01"),
    ],
)
@pytest.mark.parametrize("kind", ["daily", "weekly"])
def test_a_bad_date_is_a_400_envelope(qa_api, berlin, kind, value, reason):
    with time_machine.travel(NOW, tick=False):
        response = qa_api.get(f"/api/v1/ci/reports/{kind}", {"date": value, "format": "csv"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] in ("invalid", "invalid_date")
    assert reason in json.dumps(error).lower()


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("date=%00", 400),
        ("date=%ED%A0%80", 400),  # a lone surrogate's bytes
        ("date=%00&format=csv", 400),
        ("format=xml", 404),  # no such format: refused before a renderer is chosen
    ],
)
@pytest.mark.parametrize("kind", ["daily", "weekly"])
def test_a_query_refused_before_negotiation_is_an_envelope_not_a_500(
    qa_api, berlin, kind, query, status
):
    with time_machine.travel(NOW, tick=False):
        response = qa_api.get(f"/api/v1/ci/reports/{kind}?{query}")

    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_the_reports_api_needs_a_triage_role(api_client, berlin):
    assert api_client.get("/api/v1/ci/reports/daily").status_code == 401
    api_client.force_authenticate(UserFactory())
    assert api_client.get("/api/v1/ci/reports/weekly").status_code == 403


def test_the_reports_are_documented_in_the_schema(qa_api):
    schema = qa_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    daily = schema["paths"]["/api/v1/ci/reports/daily"]["get"]
    assert {p["name"] for p in daily["parameters"]} >= {"date", "format"}
    assert set(daily["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert "400" in daily["responses"]
    assert "/api/v1/ci/reports/weekly" in schema["paths"]


# --- pages --------------------------------------------------------------------------------------
@pytest.fixture
def operator_browser(client):
    client.force_login(UserFactory(roles=["operators"]))
    return client


def chart_data(html: str) -> dict:
    found = re.search(r'<script id="report-charts" type="application/json">(.*?)</script>', html)
    assert found, "the page carries its charts' data"
    return json.loads(found.group(1))


def test_the_daily_page_shows_the_figures_and_its_charts_data(
    known_week, operator_browser, django_assert_max_num_queries
):
    with time_machine.travel(NOW, tick=False):
        daily_reports.compute_daily_report(DAY)
        with django_assert_max_num_queries(8):
            response = operator_browser.get(reverse("escalation:report-daily", args=["2026-03-10"]))

    html = response.content.decode()
    assert response.status_code == 200
    assert '<strong id="compliance-rate">50.0%</strong>' in html
    assert '<strong id="fastest-team">devops</strong>' in html
    charts = chart_data(html)
    assert charts["sla"]["datasets"][0]["data"] == [3, 2, 1]
    assert charts["distribution"]["labels"][0] == "Test failure"
    assert charts["teams"]["labels"] == ["devops", "backend_dev", "frontend_dev", "qa_analyst"]
    assert "vendor/chartjs/chart.umd.min.js" in html and "escalation/reports.js" in html
    assert "/api/v1/ci/reports/daily?date=2026-03-10&amp;format=csv" in html
    assert "<script>" not in html  # no inline script: the charts' data is JSON


def test_the_weekly_page_shows_the_recommendations_and_its_charts_data(
    known_week, operator_browser, django_assert_max_num_queries
):
    with time_machine.travel(NOW, tick=False), django_assert_max_num_queries(12):
        response = operator_browser.get(reverse("escalation:report-weekly", args=["2026-03-10"]))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-rule="staffing"' in html
    charts = chart_data(html)
    assert charts["misses-by-hour"]["datasets"][0]["data"][14] == 3
    assert charts["types"]["datasets"][0]["data"] == [5, 1, 1, 1, 1]
    assert len(charts["daily"]["datasets"]) == 2


def test_the_index_lists_the_recent_days_and_opens_a_picked_date(
    known_week, operator_browser, django_assert_max_num_queries
):
    with time_machine.travel(NOW, tick=False):
        daily_reports.compute_daily_report(DAY)
        with django_assert_max_num_queries(6):
            index = operator_browser.get(reverse("escalation:reports"))
        picked = operator_browser.get(
            reverse("escalation:reports"), {"date": "2026-03-10", "kind": "weekly"}
        )
        future = operator_browser.get(reverse("escalation:reports"), {"date": "2026-04-01"})

    html = index.content.decode()
    assert reverse("escalation:report-daily", args=["2026-03-10"]) in html
    assert "50.00%" in html  # the stored report's headline
    assert picked.status_code == 302
    assert picked["Location"] == reverse("escalation:report-weekly", args=["2026-03-10"])
    assert future.status_code == 200
    assert "is in the future" in future.content.decode()


@pytest.mark.parametrize("day", ["2026-02-30", "2026-03-12", "1999-01-01"])
def test_a_page_for_a_day_without_a_report_is_not_found(operator_browser, berlin, day):
    with time_machine.travel(NOW, tick=False):
        assert operator_browser.get(f"/ci/reports/daily/{day}/").status_code == 404
        assert operator_browser.get(f"/ci/reports/weekly/{day}/").status_code == 404


def test_the_report_pages_need_a_triage_role(client, berlin):
    client.force_login(UserFactory())
    assert client.get(reverse("escalation:reports")).status_code == 403
    assert client.get(reverse("escalation:report-daily", args=["2026-03-10"])).status_code == 403


# --- the demo (make run) ------------------------------------------------------------------------
def test_the_demo_history_gives_yesterday_a_report_and_the_week_its_patterns(berlin):
    from escalation.demo import load_demo_ci_history

    UserFactory(username="operator", roles=["operators"])
    UserFactory(username="qa", roles=["qa"])
    with time_machine.travel(NOW, tick=False):
        first = load_demo_ci_history()
        failures = FailureEvent.objects.count()
        again = load_demo_ci_history()
        analysis = weekly_reports.analyze_weekly_patterns(DAY)

    assert first.startswith("Demo CI history: 7 of the last 7 days filled")
    assert again.startswith("Demo CI history: 0 of the last 7 days filled")
    assert FailureEvent.objects.count() == failures  # nothing added twice
    assert not Escalation.objects.filter(status=Escalation.Status.OPEN).exists()
    yesterday = DailyReport.objects.get(date=DAY)
    assert (yesterday.total_failures, yesterday.sla_hits, yesterday.sla_misses) == (4, 3, 1)
    assert (yesterday.total_overrides, yesterday.emergency_overrides) == (1, 1)
    assert DailyReport.objects.count() == 7
    assert {item["rule"] for item in analysis["recommendations"]} >= {
        "staffing", "recurring_failure", "flaky_test", "override_usage"
    }  # fmt: skip


def test_the_command_recomputes_given_days_and_refuses_a_day_not_over(known_week):
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("compute_daily_reports", "--date", "2026-03-10", stdout=out)
        with pytest.raises(CommandError, match="has not ended yet"):
            call_command("compute_daily_reports", "--date", "2026-03-11", stdout=io.StringIO())
        with pytest.raises(CommandError, match="not a YYYY-MM-DD date"):
            call_command("compute_daily_reports", "--date", "10.03.2026", stdout=io.StringIO())

    assert out.getvalue() == "2026-03-10: computed\n"
    assert DailyReport.objects.get(date=DAY).sla_hits == 3
