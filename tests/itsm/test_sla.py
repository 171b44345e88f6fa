"""SLA tracking on ticket records: deadlines at creation, the periodic check, compliance.

Tickets are created from the seed templates and delivered to the fakes; time is moved with
time-machine, and the check refreshes each open ticket from its platform.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from prometheus_client import REGISTRY

from itsm import outbox
from itsm.clients import client_for
from itsm.metrics import SlaCollector
from itsm.models import Ticket
from itsm.services import sla
from itsm.services.tickets import create_from_template

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
        assert outbox.sweep() == {"delivered": 1}
    ticket.refresh_from_db()
    return ticket


def breaches(platform: str) -> float:
    return REGISTRY.get_sample_value("itsm_sla_breaches_total", {"platform": platform}) or 0.0


def gauges() -> dict[tuple[str, str], float]:
    return {
        (family.name, sample.labels["platform"]): sample.value
        for family in SlaCollector().collect()
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


# --- compliance -------------------------------------------------------------------------------


def tracked_ticket(number: int, breached: bool) -> Ticket:
    return Ticket.objects.create(
        platform="jira",
        idempotency_key=f"key-{number}",
        sla_due_at=START + timedelta(hours=8),
        sla_breached=breached,
    )


def test_compliance_is_the_share_of_tracked_tickets_within_sla():
    for number, breached in enumerate([False, False, False, True]):
        tracked_ticket(number, breached)
    Ticket.objects.create(platform="jira", idempotency_key="untracked")

    assert sla.compliance() == {"tracked": 4, "breached": 1, "compliance": 0.75}


def test_compliance_without_tracked_tickets_is_complete():
    assert sla.compliance() == {"tracked": 0, "breached": 0, "compliance": 1.0}
