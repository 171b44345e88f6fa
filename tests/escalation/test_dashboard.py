"""The CI health dashboard (/ci/): open escalations counted per category with the urgent marker,
and the SLA list's override button by policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from escalation.models import Escalation, FailureEvent, SlaRecord
from escalation.services import reports
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def open_escalation(failure_type: str, sla_left: timedelta | None = None, **fields) -> Escalation:
    """An open escalation of ``failure_type`` with one failure, and an active SLA ending
    ``sla_left`` from now (none if None)."""
    number = Escalation.objects.count() + 1
    escalation = Escalation.objects.create(
        repository="acme/shop",
        fingerprint=f"fp-{number}",
        failure_type=failure_type,
        priority="HIGH",
        # The routing snapshot an escalation gets when it opens (escalation.services.routing).
        routing={"override_policy": "hotfix_approval"},
        **fields,
    )
    FailureEvent.objects.create(
        repository="acme/shop",
        job="build",
        run_id=str(number),
        failure_type=failure_type,
        fingerprint=f"fp-{number}",
        escalation=escalation,
    )
    if sla_left is not None:
        now = timezone.now()
        SlaRecord.objects.create(
            escalation=escalation,
            failure_type=failure_type,
            started_at=now - timedelta(hours=1),
            deadline=now + sla_left,
        )
    return escalation


def test_category_of_follows_the_seed_and_files_every_type_once():
    assert reports.category_of("generator_drift") == "generator_drift"
    assert reports.category_of("security_secrets") == "security"
    assert reports.category_of("security_advisory") == "security"
    assert reports.category_of("dependency_vulnerability") == "security"
    assert reports.category_of("database_connectivity") == "database"
    assert reports.category_of("infrastructure_timeout") == "infrastructure"
    assert reports.category_of("test_failure") == "test_failure"
    assert reports.category_of("build_failure") == "other"
    assert reports.category_of("unknown") == "other"


def test_open_escalations_are_counted_per_category_with_the_urgent_ones():
    open_escalation("security_secrets", timedelta(minutes=20))
    open_escalation("dependency_vulnerability", timedelta(hours=3))
    open_escalation("security_high", timedelta(minutes=-5))  # overdue counts as urgent
    open_escalation("test_failure", timedelta(hours=4))
    open_escalation("test_failure", timedelta(minutes=59))
    open_escalation("database_connectivity", timedelta(hours=2))
    open_escalation("build_failure")
    open_escalation("unknown", timedelta(hours=8))
    resolved = open_escalation("generator_drift", timedelta(minutes=10))
    resolved.status = Escalation.Status.RESOLVED
    resolved.save()

    by_key = {row["key"]: row for row in reports.open_by_category()}

    assert [row["key"] for row in reports.open_by_category()] == [
        "generator_drift",
        "security",
        "database",
        "infrastructure",
        "test_failure",
        "other",
    ]
    assert {key: (row["count"], row["urgent"]) for key, row in by_key.items()} == {
        "generator_drift": (0, 0),
        "security": (3, 2),
        "database": (1, 0),
        "infrastructure": (0, 0),
        "test_failure": (2, 1),
        "other": (2, 0),
    }


def test_breaches_today_counts_missed_deadlines_of_today_only():
    open_escalation("test_failure", timedelta(minutes=-10))  # active, past its deadline
    exceeded = open_escalation("build_failure", timedelta(minutes=-30))
    SlaRecord.objects.filter(escalation=exceeded).update(status=SlaRecord.Status.SLA_EXCEEDED)
    in_time = open_escalation("test_failure", timedelta(minutes=-20))
    SlaRecord.objects.filter(escalation=in_time).update(status=SlaRecord.Status.RESOLVED_WITHIN_SLA)
    open_escalation("test_failure", timedelta(hours=2))  # not due yet
    yesterday = open_escalation("test_failure", timedelta(days=-2))
    assert yesterday.sla.deadline < timezone.now() - timedelta(days=1)

    assert reports.breaches_today() == 2


@pytest.fixture
def operator_browser(client):
    client.force_login(UserFactory(roles=["operators"]))
    return client


def test_the_dashboard_shows_the_counts_and_the_urgent_marker(operator_browser):
    open_escalation("security_high", timedelta(minutes=30))
    open_escalation("dependency_vulnerability", timedelta(hours=3))
    open_escalation("test_failure", timedelta(hours=3))

    html = operator_browser.get(reverse("escalation:ci-health")).content.decode()

    assert 'id="security-count">2<' in html
    assert 'id="test_failure-count">1<' in html
    assert 'id="generator_drift-count">0<' in html
    assert 'id="security-status" class="category status-urgent"' in html
    assert 'id="test_failure-status" class="category"' in html
    assert html.count("urgent-marker") == 1


def test_the_override_button_follows_the_policy(operator_browser):
    overridable = open_escalation("test_failure", timedelta(hours=3))
    refused = open_escalation("security_secrets", timedelta(hours=1))
    drift = open_escalation("generator_drift", timedelta(hours=1))

    html = operator_browser.get(reverse("escalation:ci-health")).content.decode()

    failure_url = reverse("escalation:failure-detail", args=[overridable.failures.get().pk])
    assert f'href="{failure_url}#override">Request override<' in html
    assert html.count("Request override") == 1
    for zero_tolerance in (refused, drift):
        details = reverse("escalation:failure-detail", args=[zero_tolerance.failures.get().pk])
        assert f'href="{details}">Details<' in html


def test_the_dashboard_queries_a_bounded_number_of_times(
    operator_browser, django_assert_max_num_queries
):
    for _ in range(6):
        open_escalation("test_failure", timedelta(hours=3))
    with django_assert_max_num_queries(30) as captured:
        operator_browser.get(reverse("escalation:ci-health"))
    few = len(captured)
    for _ in range(6):
        open_escalation("build_failure", timedelta(hours=3))
    with django_assert_max_num_queries(few + 1):
        operator_browser.get(reverse("escalation:ci-health"))
