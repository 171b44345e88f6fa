"""Exactly once beyond creates: comments, transitions and redeliveries after a lost answer.

Real HTTP to the fakes; a fault in mode "after" makes the fake do the work and then answer 503
(or drop the connection): the case where the client cannot know whether it happened.
"""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from itsm import outbox
from itsm.clients import client_for
from itsm.errors import ValidationFailed
from itsm.models import OutboxMessage, Ticket
from itsm.services.tickets import create_from_template, deliver_ticket
from tests.factories import RCA_VARIABLES

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_itsm_config")]

DESCRIPTION = "Job ID: 7\nSeverity: high\n\nDetails"


@pytest.fixture
def jira(itsm_endpoints):
    with client_for("jira") as client:
        yield client


def new_issue(jira) -> str:
    return jira.create_ticket("OPS", "RCA Required: nightly", DESCRIPTION, "Task").key


def issue_state(fakes, key: str) -> dict:
    return next(issue for issue in fakes.state("jira")["issues"] if issue["key"] == key)


def test_a_comment_whose_answer_was_lost_is_not_posted_twice(jira, fakes):
    key = new_issue(jira)
    fakes.faults(
        platform="jira", status=503, count=1, mode="after", path_contains="/comment", method="POST"
    )

    jira.add_comment(key, "Job 7 failed: exit code 137")

    assert len(issue_state(fakes, key)["comments"]) == 1


def test_a_redelivered_comment_finds_the_one_already_posted(jira, fakes):
    key = new_issue(jira)
    jira.add_comment(key, "Job 7 failed: exit code 137")

    jira.add_comment(key, "Job 7 failed: exit code 137", reconcile_first=True)

    assert len(issue_state(fakes, key)["comments"]) == 1


def test_a_transition_whose_answer_was_lost_is_not_repeated(jira, fakes):
    key = new_issue(jira)
    fakes.faults(
        platform="jira",
        drop=True,
        count=1,
        mode="after",
        path_contains="/transitions",
        method="POST",
    )

    assert jira.transition(key, ["Failed", "Blocked"]) == "Failed"

    assert issue_state(fakes, key)["status"] == "Failed"
    assert len(issue_state(fakes, key)["transitions"]) == 1


def test_an_issue_already_in_a_preferred_status_is_left_alone(jira, fakes):
    key = new_issue(jira)
    jira.transition(key, ["Blocked"])

    assert jira.transition(key, ["Failed", "Blocked"]) == "Blocked"

    assert issue_state(fakes, key)["status"] == "Blocked"
    assert len(issue_state(fakes, key)["transitions"]) == 1


def test_a_servicenow_comment_whose_answer_was_lost_is_journaled_once(itsm_endpoints, fakes):
    with client_for("servicenow") as servicenow:
        incident = servicenow.create_incident({"short_description": "RCA Required: nightly"})
        fakes.faults(platform="servicenow", status=503, count=1, mode="after", method="PATCH")

        servicenow.add_comment(incident.id, "Job 7 failed again")

    journal = fakes.state("servicenow")["incidents"][0]["journal"]
    assert [entry for entry in journal if "Job 7 failed again" in str(entry)] != []
    assert len([entry for entry in journal if "Job 7 failed again" in str(entry)]) == 1


def test_a_delivery_that_died_after_the_create_does_not_create_a_second_issue(
    itsm_endpoints, fakes
):
    """The worker was killed between Jira's 201 and our save: nothing recorded the attempt on
    the ticket, but the claim counted it, so the next delivery looks before creating."""
    ticket, _ = create_from_template(
        job_id="crash-1", platform="jira", template_name="rca_issue", variables=RCA_VARIABLES
    )
    message = ticket.outbox_messages.get()
    assert outbox.claim(message.pk)
    deliver_ticket(ticket)  # reaches Jira...
    Ticket.objects.filter(pk=ticket.pk).update(
        status=Ticket.Status.PENDING, external_key=""
    )  # ...and is lost
    fakes.catch_up_index()
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=message.created_at)

    assert outbox.deliver(message.pk) == OutboxMessage.Status.DELIVERED

    assert len(fakes.state("jira")["issues"]) == 1
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.CREATED


def test_a_refused_template_ticket_counts_as_a_validation_error_outcome(itsm_endpoints):
    labels = {"platform": "servicenow", "outcome": "validation_error"}
    before = REGISTRY.get_sample_value("itsm_ticket_creation_total", labels) or 0

    with pytest.raises(ValidationFailed):
        create_from_template(
            job_id="v-1", platform="servicenow", template_name="rca_incident",
            variables={**RCA_VARIABLES, "job_name": "x" * 200},
        )  # fmt: skip

    assert REGISTRY.get_sample_value("itsm_ticket_creation_total", labels) == before + 1


def test_a_sub_task_with_its_parent_and_assignee_reaches_jira_with_every_field(jira, fakes):
    parent = new_issue(jira)
    account = jira.assignable_users("OPS")[0]["accountId"]

    created = jira.create_ticket(
        "OPS", "Clean up the namespace", DESCRIPTION, "Sub-task",
        {"parent": parent, "assignee": account, "due_date": "2026-12-01", "priority": "High"},
    )  # fmt: skip

    fields = issue_state(fakes, created.key)["fields"]
    assert fields["parent"] == parent or fields["parent"].get("key") == parent
    assert fields["assignee"] == account
    assert fields["duedate"] == "2026-12-01"
    assert fields["priority"] == "High"


def test_a_bug_with_an_adf_description_passes_validation(jira, fakes):
    document = {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "Steps to reproduce"}]}
    ]}  # fmt: skip

    created = jira.create_ticket("OPS", "Export drops attachments", document, "Bug")

    assert issue_state(fakes, created.key)["fields"]["description"] == document
