"""The fulfillment engine against the fake servers: each action type, failure in every
position, escalation through the outbox (Jira down, then back), redelivery."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import TestCase

from escalation.models import ComponentExecution, Request
from escalation.services import catalog, fulfillment
from itsm.public import OutboxMessage
from tests.escalation.catalog_support import (
    JIRA,
    LINEAR,
    SERVICENOW,
    SLACK,
    catalog_settings,  # noqa: F401 - the fixture
    http_config,
    make_bundle,
)
from tests.factories import UserFactory
from tests.itsm.deliveries import sweep_now

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog_settings")]


@pytest.fixture
def requester(db):
    return UserFactory(username="ada", email="ada@example.com")


def allow_fakes(settings, fakes) -> None:
    settings.CATALOG_HTTP_ALLOWED_HOSTS = [urlsplit(fakes.url).netloc]


def run(bundle, requester, data=None) -> Request:
    request = catalog.submit(requester, bundle.name, data or {"name": "Grace"})
    fulfillment.fulfill(request.pk)
    request.refresh_from_db()
    return request


def statuses(request: Request) -> list[str]:
    return list(request.executions.order_by("position").values_list("status", flat=True))


def test_a_jira_ticket_component_creates_the_issue_and_outputs_its_key(requester, fakes):
    request = run(make_bundle("jira-only", [("access", "jira-ticket", JIRA)]), requester)
    execution = request.executions.get()
    issues = fakes.state("jira")["issues"]
    assert request.status == "completed" and request.completed_at is not None
    assert execution.output["key"] == issues[0]["key"]
    assert execution.resources == [f"Jira {issues[0]['key']}"]
    assert issues[0]["fields"]["summary"] == "Access for Grace"


def test_a_servicenow_component_reads_an_earlier_components_output(requester, fakes):
    bundle = make_bundle(
        "two", [("access", "jira-ticket", JIRA), ("laptop", "servicenow-ticket", SERVICENOW)]
    )
    request = run(bundle, requester)
    jira_key = request.executions.get(component_id="access").output["key"]
    incident = fakes.state("servicenow")["incidents"][0]
    assert statuses(request) == ["succeeded", "succeeded"]
    assert incident["short_description"] == "Laptop for Grace"
    assert incident["description"] == f"After {jira_key}"


def test_a_linear_issue_component_creates_the_issue(requester, fakes):
    request = run(make_bundle("lin", [("account", "linear-issue", LINEAR)]), requester)
    issues = fakes.state("linear")["issues"]
    assert request.status == "completed"
    assert issues[0]["title"] == "Account for Grace"
    assert request.executions.get().output["key"] == issues[0]["identifier"]


def test_a_slack_component_posts_the_rendered_message(requester, fakes):
    request = run(make_bundle("hello", [("welcome", "slack-message", SLACK)]), requester)
    messages = fakes.state("slack")["messages"]
    assert request.status == "completed"
    assert messages[-1]["text"] == "Welcome Grace"


def test_an_http_request_component_calls_an_allowed_host(requester, fakes, settings):
    allow_fakes(settings, fakes)
    bundle = make_bundle(
        "check", [("health", "http-request", http_config(f"{fakes.url}/_fake/health"))]
    )
    request = run(bundle, requester)
    execution = request.executions.get()
    assert request.status == "completed"
    assert execution.output["status_code"] == 200
    assert execution.output["json"]["ok"] is True


def test_an_http_request_to_a_host_not_listed_fails_without_calling(requester, fakes):
    bundle = make_bundle(
        "check", [("health", "http-request", http_config(f"{fakes.url}/_fake/health"))]
    )
    request = run(bundle, requester)
    execution = request.executions.get()
    assert request.status == "escalated"
    assert execution.status == "failed"
    assert "not on the allow-list" in execution.error


FOUR = [
    ("access", "jira-ticket", JIRA),
    ("welcome", "slack-message", SLACK),
    ("account", "linear-issue", LINEAR),
    ("laptop", "servicenow-ticket", SERVICENOW),
]
BROKEN = {
    "jira-ticket": {"ticket": {**JIRA["ticket"], "project": "NOPE"}},  # the fake has no NOPE
    "slack-message": {"message": {"text": "{{ request.data.missing }}"}},  # undefined: fails
    "linear-issue": {"issue": {**LINEAR["issue"], "team": "NOTEAM"}},
    "servicenow-ticket": {"ticket": {"description": "no short description"}},
}


@pytest.mark.parametrize("failing", [1, 2, 3, 4])
def test_a_failure_in_any_position_stops_the_request_and_escalates_it(requester, fakes, failing):
    components = [
        (cid, action, BROKEN[action] if position == failing else config)
        for position, (cid, action, config) in enumerate(FOUR, start=1)
    ]
    request = run(make_bundle(f"fails-at-{failing}", components), requester)
    expected = ["succeeded"] * (failing - 1) + ["failed"] + ["not_run"] * (4 - failing)
    assert statuses(request) == expected
    assert request.status == "escalated" and request.escalation_timestamp is not None
    failed = request.executions.get(position=failing)
    assert failed.error
    # Nothing after the failure ran: the fakes hold only what the succeeded components made.
    assert len(fakes.state("linear")["issues"]) == (1 if failing > 3 else 0)
    assert len(fakes.state("servicenow")["incidents"]) == 0
    # The escalation ticket, delivered by the outbox: one Jira issue more, in the mapped project.
    sweep_now()
    request.refresh_from_db()
    issue = fakes.state("jira")["issues"][-1]
    assert request.escalation_ticket_id == issue["key"]
    description = (
        issue["fields"]["description_text"]
        if "description_text" in issue["fields"]
        else str(issue["fields"]["description"])
    )
    for cid, _action, _config in FOUR[: failing - 1]:
        assert f"- {cid}: Undo {cid}" in description
    for cid, _action, _config in FOUR[failing - 1 :]:
        assert f"- {cid}: Undo {cid}" not in description
    assert failed.error.splitlines()[0][:40] in description


def test_with_jira_down_the_request_is_escalated_at_once_and_the_ticket_follows(requester, fakes):
    fakes.faults(platform="jira", status=503, count=1000)
    request = run(
        make_bundle("down", [("welcome", "slack-message", BROKEN["slack-message"])]), requester
    )
    assert request.status == "escalated" and request.escalation_timestamp is not None
    sweep_now()
    request.refresh_from_db()
    assert request.escalation_ticket_id is None
    message = OutboxMessage.objects.get(kind=fulfillment.ESCALATION_KIND)
    assert message.status == "pending" and message.attempts >= 1
    details = catalog.escalation_details(request)
    assert details["ticket"]["state"] == "queued"

    fakes.clear_faults()
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=message.created_at)
    sweep_now()
    request.refresh_from_db()
    issues = fakes.state("jira")["issues"]
    assert len(issues) == 1
    assert request.escalation_ticket_id == issues[0]["key"]
    assert catalog.escalation_details(request)["ticket"]["state"] == "created"


def test_a_redelivered_task_runs_no_component_twice(requester, fakes):
    bundle = make_bundle(
        "twice", [("access", "jira-ticket", JIRA), ("welcome", "slack-message", SLACK)]
    )
    request = run(bundle, requester)
    assert fulfillment.fulfill(request.pk) == "completed"
    assert len(fakes.state("jira")["issues"]) == 1
    assert len(fakes.state("slack")["messages"]) == 1


def test_a_component_claimed_by_a_lost_worker_is_not_run_again(requester, fakes, time_machine):
    bundle = make_bundle(
        "lost", [("access", "jira-ticket", JIRA), ("welcome", "slack-message", SLACK)]
    )
    request = catalog.submit(requester, bundle.name, {"name": "Grace"})
    Request.objects.filter(pk=request.pk).update(status="running")
    ComponentExecution.objects.filter(request=request, position=1).update(
        status="running", started_at=request.created_at
    )
    # Within the lease: another worker may still be running it; nothing is done.
    assert fulfillment.fulfill(request.pk) == "running"
    time_machine.move_to(request.created_at + timedelta(hours=1))
    assert fulfillment.fulfill(request.pk) == "escalated"
    first = request.executions.get(position=1)
    assert first.status == "failed" and "interrupted" in first.error
    assert fakes.state("jira")["issues"] == [] and fakes.state("slack")["messages"] == []


def test_a_large_request_still_gets_its_escalation_ticket(requester, fakes):
    bundle = make_bundle("big", [("welcome", "slack-message", {"message": {"text": "{{ nope }}"}})])
    bundle.inputs = []
    bundle.save()
    data = {f"field_{n}": "x" * 500 for n in range(100)}  # 50 KB of request data
    request = run(bundle, requester, data)
    sweep_now()
    request.refresh_from_db()
    assert request.escalation_ticket_id == fakes.state("jira")["issues"][0]["key"]
    description = request.fulfillment.ticket_description
    assert len(description) <= fulfillment.MAX_DESCRIPTION
    assert description.endswith(f"/ci/requests/{request.pk}/)")


def test_a_redelivery_after_a_lost_worker_resumes_after_what_succeeded(requester, fakes):
    bundle = make_bundle(
        "resume", [("access", "jira-ticket", JIRA), ("welcome", "slack-message", SLACK)]
    )
    request = catalog.submit(requester, bundle.name, {"name": "Grace"})
    # The first worker created the ticket, recorded it, and was lost before the second component.
    Request.objects.filter(pk=request.pk).update(status="running")
    ComponentExecution.objects.filter(request=request, position=1).update(
        status="succeeded", output={"key": "OPS-77"}, resources=["Jira OPS-77"]
    )
    assert fulfillment.fulfill(request.pk) == "completed"
    assert fakes.state("jira")["issues"] == []  # not created again
    assert len(fakes.state("slack")["messages"]) == 1


def test_the_leaders_sweep_queues_requests_whose_task_was_lost(requester, fakes, time_machine):
    queued: list[str] = []
    fulfillment.set_dispatcher(queued.append)
    try:
        bundle = make_bundle("lost-task", [("welcome", "slack-message", SLACK)])
        with TestCase.captureOnCommitCallbacks(execute=True):
            request = catalog.submit(requester, bundle.name, {"name": "Grace"})
        assert queued == [str(request.pk)]  # the submission's own dispatch
        queued.clear()
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert fulfillment.sweep_stalled_requests() == {"pending": 0, "running": 0}
        time_machine.move_to(request.created_at + timedelta(minutes=2))
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert fulfillment.sweep_stalled_requests() == {"pending": 1, "running": 0}
            assert fulfillment.sweep_stalled_requests() == {"pending": 0, "running": 0}
        assert queued == [str(request.pk)]
    finally:
        from escalation import tasks

        fulfillment.set_dispatcher(tasks.queue_catalog_request)


JINJA_IN_DATA = "{{ 7 * 7 }}{% for i in range(10**9) %}x{% endfor %}{{ request.__class__ }}"


def test_jinja_syntax_in_request_data_is_text_never_a_template(requester, fakes):
    # Only the catalog's configuration is a template: what a requester types is a value in it,
    # inserted as it is (no second render), in a component and in the escalation ticket.
    hello = run(make_bundle("hello", [("welcome", "slack-message", SLACK)]), requester,
                {"name": JINJA_IN_DATA})  # fmt: skip
    assert hello.status == "completed"
    assert fakes.state("slack")["messages"][-1]["text"] == f"Welcome {JINJA_IN_DATA}"

    broken = make_bundle("broken", [("welcome", "slack-message", BROKEN["slack-message"])])
    escalated = run(broken, requester, {"name": JINJA_IN_DATA})
    assert escalated.status == "escalated"
    description = escalated.fulfillment.ticket_description
    assert '"name": "{{ 7 * 7 }}{% for i in range(10**9) %}x{% endfor %}' in description


def test_a_key_in_an_http_request_url_is_not_kept_in_what_the_requester_reads(
    requester, fakes, settings
):
    allow_fakes(settings, fakes)
    key = "k3y-v4lue-123456"
    ok = run(
        make_bundle("ok", [("health", "http-request", http_config(f"{fakes.url}/_fake/health?api_key={key}"))]),
        requester,
    )  # fmt: skip
    execution = ok.executions.get()
    assert ok.status == "completed" and execution.output["status_code"] == 200
    assert key not in json.dumps([execution.resources, execution.output])

    failed = run(
        make_bundle("nope", [("gone", "http-request", http_config(f"{fakes.url}/_fake/nowhere?api_key={key}"))]),
        requester,
    )  # fmt: skip
    execution = failed.executions.get()
    assert failed.status == "escalated" and "/_fake/nowhere" in execution.error
    assert key not in execution.error
    assert key not in failed.fulfillment.error + failed.fulfillment.ticket_description
