"""SLA tracking on ticket records: deadlines at creation, the periodic check, compliance.

Tickets are created from the seed templates and delivered to the fakes; time is moved with
time-machine, and the check refreshes each open ticket from its platform.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY

from itsm.clients import client_for
from itsm.clients.base import parse_platform_time
from itsm.metrics import SlaCollector
from itsm.models import OutboxMessage, Ticket
from itsm.services import sla
from itsm.services.tickets import create_from_template
from tests.itsm.deliveries import sweep_now

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_itsm_config")]

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RCA_VARIABLES = {
    "job_name": "nightly-build",
    "job_id": "7",
    "severity": "high",
    "details": "Step 3 failed.",
}


def new_ticket(platform: str = "jira", priority: str = "2", job_id: str = "7") -> Ticket:
    template = "rca_issue" if platform == "jira" else "rca_incident"
    with time_machine.travel(START, tick=False):
        ticket, _ = create_from_template(
            job_id=job_id,
            platform=platform,
            template_name=template,
            variables={**RCA_VARIABLES, "job_id": job_id, "priority": priority},
        )
    return ticket


def delivered_ticket(platform: str = "jira", priority: str = "2") -> Ticket:
    ticket = new_ticket(platform, priority)
    with time_machine.travel(START + timedelta(seconds=5), tick=True):
        assert sweep_now() == {OutboxMessage.Status.DELIVERED: 1}
    ticket.refresh_from_db()
    return ticket


def delivered_tickets(count: int, priority: str = "2", first_job: int = 100) -> list[Ticket]:
    """``count`` Jira tickets created at START and delivered in one sweep."""
    tickets = [new_ticket("jira", priority, job_id=str(first_job + n)) for n in range(count)]
    with time_machine.travel(START + timedelta(seconds=5), tick=True):
        assert sweep_now(limit=count) == {OutboxMessage.Status.DELIVERED: count}
    return [Ticket.objects.get(pk=ticket.pk) for ticket in tickets]


def delivered_ticket_now(platform: str, priority: str = "2") -> Ticket:
    """A ticket created and delivered at the real clock: the fakes (another process) stamp their
    comments and updates with it, so the platform's times fall inside the ticket's deadlines."""
    template = "rca_issue" if platform == "jira" else "rca_incident"
    ticket, _ = create_from_template(
        job_id="70",
        platform=platform,
        template_name=template,
        variables={**RCA_VARIABLES, "job_id": "70", "priority": priority},
    )
    assert sweep_now() == {OutboxMessage.Status.DELIVERED: 1}
    ticket.refresh_from_db()
    return ticket


def comment_on_each(tickets: list[Ticket]) -> None:
    with client_for("jira") as jira:
        for ticket in tickets:
            jira.add_comment(ticket.external_key, "Looking into it.")


def breaches(platform: str) -> float:
    return REGISTRY.get_sample_value("itsm_sla_breaches_total", {"platform": platform}) or 0.0


def gauges() -> dict[tuple[str, str], float]:
    return {
        (family.name, sample.labels["platform"]): sample.value
        for family in SlaCollector(sla.open_and_breached_by_platform).collect()
        for sample in family.samples
    }


# --- deadlines --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "response_minutes", "resolution_minutes"),
    [("1", 15, 240), ("2", 60, 480), ("4", 1440, 4320)],
)
def test_deadlines_come_from_the_config_targets_of_the_priority(
    itsm_endpoints, priority, response_minutes, resolution_minutes
):
    ticket = new_ticket("servicenow", priority)

    assert ticket.created_at == START
    assert ticket.sla_response_due_at == START + timedelta(minutes=response_minutes)
    assert ticket.sla_due_at == START + timedelta(minutes=resolution_minutes)


def test_priority_names_count_as_their_rank():
    assert [sla.priority_rank(name) for name in ("Highest", "high", "Lowest", "", "9")] == [
        "1",
        "2",
        "5",
        "3",
        "3",
    ]


# --- the periodic check -----------------------------------------------------------------------


def test_check_flags_a_ticket_past_its_deadline_once(itsm_endpoints, fakes):
    ticket = delivered_ticket("jira", "2")
    before = breaches("jira")

    with time_machine.travel(ticket.sla_due_at + timedelta(minutes=1), tick=True):
        first = sla.check_slas()
        second = sla.check_slas()

    ticket.refresh_from_db()
    assert first["newly_breached"] == 1
    assert second["newly_breached"] == 0
    assert ticket.sla_breached
    assert ticket.sla_breached_at is not None
    assert breaches("jira") == before + 1


def test_check_publishes_open_and_breached_gauges(itsm_endpoints, fakes):
    ticket = delivered_ticket("jira", "2")
    not_yet_due = new_ticket("servicenow", "5", job_id="8")  # pending, due days later

    with time_machine.travel(ticket.sla_due_at + timedelta(minutes=1), tick=True):
        sla.check_slas()

    not_yet_due.refresh_from_db()
    assert not not_yet_due.sla_breached
    assert gauges() == {
        ("itsm_tickets_sla_open", "jira"): 1.0,
        ("itsm_tickets_sla_breached", "jira"): 1.0,
        ("itsm_tickets_sla_open", "servicenow"): 1.0,
        ("itsm_tickets_sla_breached", "servicenow"): 0.0,
    }


def test_ticket_not_yet_due_is_not_breached(itsm_endpoints, fakes):
    ticket = delivered_ticket("jira", "3")

    with time_machine.travel(ticket.sla_response_due_at - timedelta(minutes=1), tick=True):
        result = sla.check_slas()

    ticket.refresh_from_db()
    assert result["newly_breached"] == 0
    assert not ticket.sla_breached


def test_jira_issue_done_in_the_platform_is_resolved_on_refresh_and_never_breached(
    itsm_endpoints, fakes
):
    ticket = delivered_ticket("jira", "2")
    with client_for("jira") as jira:
        assert jira.transition(ticket.external_key, ["Done"]) == "Done"

    with time_machine.travel(START + timedelta(minutes=10), tick=True):
        assert sla.check_slas()["refreshed"] == 1
    with time_machine.travel(ticket.sla_due_at + timedelta(days=1), tick=True):
        assert sla.check_slas()["newly_breached"] == 0

    ticket.refresh_from_db()
    assert ticket.resolved_at is not None
    assert ticket.first_response_at is not None
    assert not ticket.sla_breached


@pytest.mark.parametrize("platform", ["jira", "servicenow"])
def test_a_ticket_its_platform_no_longer_knows_is_marked_missing_once(
    itsm_endpoints, fakes, caplog, platform
):
    ticket = delivered_ticket(platform, "2")
    fakes.reset()  # a platform that lost the ticket (a fake restarted empty, a deleted issue)

    with time_machine.travel(START + timedelta(minutes=10), tick=True):
        sla.check_slas()
    with time_machine.travel(START + timedelta(minutes=11), tick=True):
        sla.check_slas()

    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.MISSING
    assert ticket.error["missing"]["status_code"] == 404
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    missing = [m for m in warnings if "itsm.sla.ticket_missing" in m]
    assert len(missing) == 1
    assert f"ticket {ticket.pk}" in missing[0] and ticket.external_key in missing[0]
    assert not [m for m in warnings if "refresh_failed" in m]


def test_a_failed_refresh_warning_names_the_ticket_and_the_reason(itsm_endpoints, fakes, caplog):
    ticket = delivered_ticket("jira", "2")
    fakes.faults(platform="jira", status=503, count=1000)

    with time_machine.travel(START + timedelta(minutes=10), tick=True):
        sla.check_slas()

    [warning] = [
        r.getMessage() for r in caplog.records if "itsm.sla.refresh_failed" in r.getMessage()
    ]
    assert f"ticket {ticket.pk}" in warning
    assert ticket.external_key in warning
    assert "503" in warning


def test_servicenow_incident_resolved_in_the_platform_is_resolved_on_refresh(itsm_endpoints, fakes):
    ticket = delivered_ticket("servicenow", "2")
    with client_for("servicenow") as servicenow:
        servicenow.update_incident(ticket.external_id, {"state": "6"})

    with time_machine.travel(START + timedelta(minutes=10), tick=True):
        sla.check_slas()

    ticket.refresh_from_db()
    assert ticket.resolved_at is not None
    assert not ticket.sla_breached


def test_a_comment_in_jira_counts_as_the_first_response(itsm_endpoints, fakes):
    ticket = delivered_ticket("jira", "2")
    with client_for("jira") as jira:
        jira.add_comment(ticket.external_key, "Looking into it.")

    with time_machine.travel(START + timedelta(minutes=10), tick=True):
        sla.check_slas()

    ticket.refresh_from_db()
    assert ticket.first_response_at is not None
    assert ticket.resolved_at is None


def test_check_keeps_going_when_the_platform_cannot_be_reached(itsm_endpoints, fakes):
    ticket = delivered_ticket("jira", "2")
    fakes.faults(platform="jira", status=503, count=1000)

    with time_machine.travel(ticket.sla_due_at + timedelta(minutes=1), tick=True):
        result = sla.check_slas()

    assert result == {"refreshed": 0, "newly_breached": 1}


def test_every_open_ticket_is_refreshed_over_successive_runs_not_only_the_most_urgent(
    itsm_endpoints, fakes
):
    urgent = delivered_tickets(sla.REFRESH_BATCH, priority="2", first_job=100)
    later = delivered_tickets(5, priority="3", first_job=500)  # later deadlines
    comment_on_each(urgent + later)

    runs = []
    for minute in (1, 2):
        with time_machine.travel(START + timedelta(minutes=minute), tick=True):
            runs.append(sla.check_slas()["refreshed"])

    assert runs == [sla.REFRESH_BATCH, 5]
    assert not Ticket.objects.filter(first_response_at__isnull=True).exists()


def test_the_refresh_takes_the_least_recently_checked_tickets_first(itsm_endpoints, fakes):
    urgent = delivered_tickets(sla.REFRESH_BATCH, priority="2", first_job=100)
    later = delivered_tickets(5, priority="3", first_job=500)
    checks = [START + timedelta(minutes=minute) for minute in (1, 2, 3)]

    for moment in checks:
        with time_machine.travel(moment, tick=True):
            sla.check_slas(moment)

    checked_at = dict(Ticket.objects.values_list("pk", "sla_checked_at"))
    assert {checked_at[ticket.pk] for ticket in urgent} == {checks[2]}
    assert {checked_at[ticket.pk] for ticket in later} == {checks[1]}


def test_tickets_without_a_deadline_are_refreshed_after_those_with_one_on_every_database(
    itsm_endpoints, fakes, monkeypatch
):
    monkeypatch.setattr(sla, "REFRESH_BATCH", 1)
    untimed, timed = delivered_tickets(2)
    Ticket.objects.filter(pk=untimed.pk).update(sla_due_at=None, sla_response_due_at=None)
    comment_on_each([untimed, timed])

    with time_machine.travel(START + timedelta(minutes=1), tick=True):
        assert sla.check_slas()["refreshed"] == 1

    untimed.refresh_from_db()
    timed.refresh_from_db()
    assert timed.first_response_at is not None
    assert untimed.first_response_at is None


def test_a_ticket_whose_refresh_fails_does_not_hold_up_the_others(
    itsm_endpoints, fakes, monkeypatch
):
    monkeypatch.setattr(sla, "REFRESH_BATCH", 1)
    missing, present = delivered_tickets(2)
    Ticket.objects.filter(pk=missing.pk).update(external_key="OPS-9999")  # gone from Jira
    comment_on_each([present])

    for minute in (1, 2):
        with time_machine.travel(START + timedelta(minutes=minute), tick=True):
            sla.check_slas()

    present.refresh_from_db()
    assert present.first_response_at is not None


def test_a_first_response_noticed_after_its_deadline_is_flagged_as_a_breach_once(
    itsm_endpoints, fakes
):
    ticket = delivered_ticket("servicenow", "2")
    with client_for("servicenow") as servicenow:
        servicenow.update_incident(ticket.external_id, {"state": "2"})  # In Progress
    before = breaches("servicenow")

    with time_machine.travel(ticket.sla_response_due_at + timedelta(minutes=30), tick=True):
        first = sla.check_slas()
        second = sla.check_slas()

    ticket.refresh_from_db()
    assert ticket.first_response_at > ticket.sla_response_due_at
    assert ticket.resolved_at is None
    assert (first["newly_breached"], second["newly_breached"]) == (1, 0)
    assert ticket.sla_breached
    assert breaches("servicenow") == before + 1


def test_the_first_jira_comment_is_the_first_response_even_when_noticed_after_the_deadline(
    itsm_endpoints, fakes
):
    ticket = delivered_ticket_now("jira", "2")
    with client_for("jira") as jira:
        first = jira.add_comment(ticket.external_key, "Looking into it.")
        jira.add_comment(ticket.external_key, "Found the cause.")
    commented_at = datetime.strptime(first["created"], "%Y-%m-%dT%H:%M:%S.%f%z")

    with time_machine.travel(ticket.sla_response_due_at + timedelta(minutes=10), tick=True):
        assert sla.check_slas()["newly_breached"] == 0

    ticket.refresh_from_db()
    assert ticket.first_response_at == commented_at
    assert not ticket.sla_breached


def test_a_jira_issue_done_without_a_resolution_date_is_resolved_when_the_check_sees_it(
    itsm_endpoints, fakes
):
    ticket = delivered_ticket("jira", "2")
    with client_for("jira") as jira:
        jira.transition(ticket.external_key, ["Done"])  # the fake sends no resolutiondate
    seen = START + timedelta(minutes=10)

    with time_machine.travel(seen, tick=True):
        sla.check_slas(seen)

    ticket.refresh_from_db()
    assert ticket.resolved_at == seen
    assert ticket.first_response_at == seen


def test_a_servicenow_resolution_takes_its_time_from_the_incident(itsm_endpoints, fakes):
    ticket = delivered_ticket_now("servicenow", "2")
    with client_for("servicenow") as servicenow:
        record = servicenow.update_incident(ticket.external_id, {"state": "6"})  # Resolved
    updated = datetime.strptime(record["sys_updated_on"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)

    with time_machine.travel(ticket.sla_due_at + timedelta(hours=1), tick=True):
        assert sla.check_slas()["newly_breached"] == 0

    ticket.refresh_from_db()
    assert ticket.resolved_at == updated
    assert ticket.first_response_at == updated  # resolving it was the response
    assert not ticket.sla_breached


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02T09:05:00.000+0000", datetime(2026, 3, 2, 9, 5, tzinfo=UTC)),
        ("2026-03-02T10:05:00.250+0100", datetime(2026, 3, 2, 9, 5, 0, 250000, tzinfo=UTC)),
        ("2026-03-02T09:05:00Z", datetime(2026, 3, 2, 9, 5, tzinfo=UTC)),
        ("2026-03-02 09:05:00", datetime(2026, 3, 2, 9, 5, tzinfo=UTC)),
        ("", None),
        (None, None),
        ("yesterday", None),
        ("2026-13-45 09:05:00", None),
    ],
)
def test_platform_timestamps_are_read_as_utc_and_unreadable_ones_are_ignored(text, expected):
    assert parse_platform_time(text) == expected


def test_the_check_writes_only_the_columns_it_changes(itsm_endpoints, fakes):
    done, overdue = delivered_tickets(2)
    with client_for("jira") as jira:
        jira.transition(done.external_key, ["Done"])
    Ticket.objects.filter(pk=overdue.pk).update(sla_due_at=START)

    with (
        time_machine.travel(START + timedelta(minutes=10), tick=True),
        CaptureQueriesContext(connection) as queries,
    ):
        result = sla.check_slas()

    assert result == {"refreshed": 1, "newly_breached": 1}
    written = {
        column
        for query in queries.captured_queries
        if query["sql"].startswith('UPDATE "itsm_ticket"')
        for column in re.findall(r'"(\w+)" = ', query["sql"].split(" WHERE ")[0])
    }
    assert written <= {
        "first_response_at",
        "resolved_at",
        "sla_checked_at",
        "updated_at",
        "sla_breached",
        "sla_breached_at",
    }
    assert {"first_response_at", "resolved_at", "sla_breached"} <= written


def test_a_ticket_answered_in_time_but_outside_the_rotation_is_looked_at_before_it_is_judged(
    itsm_endpoints, fakes
):
    """More open tickets than one refresh batch: the rotation has not reached the answered one
    when its deadline passes, and a breach is never taken back, so it gets a last look."""
    others = delivered_tickets(sla.REFRESH_BATCH, first_job=500)
    answered = delivered_ticket_now("jira", "2")
    Ticket.objects.filter(pk__in=[t.pk for t in others]).update(sla_checked_at=None)
    Ticket.objects.filter(pk=answered.pk).update(sla_checked_at=timezone.now())
    comment_on_each([answered])

    with time_machine.travel(answered.sla_response_due_at + timedelta(minutes=1), tick=True):
        sla.check_slas()

    answered.refresh_from_db()
    assert answered.first_response_at is not None
    assert not answered.sla_breached
