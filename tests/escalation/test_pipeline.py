"""CI failures through the real stack: the API in, classification, grouping, routing, the outbox
out to the fake Slack and Linear, SLA records, reclassification and flakiness."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from escalation.models import (
    Escalation,
    EscalationEvent,
    FailureEvent,
    Notification,
    SlaRecord,
)
from escalation.services import sla
from itsm.models import OutboxMessage
from tests.itsm.deliveries import sweep_now

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_itsm_config")]

URL = "/api/v1/ci/failures"
PYTEST_LOG = """\
2026-11-30T10:00:01.000Z ##[group]Run pytest
2026-11-30T10:00:02.000Z ============================= test session starts ==============
2026-11-30T10:00:09.000Z tests/test_export.py::test_export_retries FAILED                [ 50%]
2026-11-30T10:00:09.500Z =========================== short test summary info ============
2026-11-30T10:00:09.600Z FAILED tests/test_export.py::test_export_retries - AssertionError: 3 != 2
2026-11-30T10:00:09.700Z ========================= 1 failed, 41 passed in 7.12s =========
"""
GITLEAKS_LOG = """\
    ○
    │╲
    │ ○
    ○ ░
    ░    gitleaks

Finding:     aws_secret_access_key = "REDACTEDREDACTEDREDACTEDREDACTEDREDACTED"
RuleID:      aws-access-token
10:04AM WRN leaks found: 1
tests/test_export.py::test_export_retries FAILED
"""


def report(**overrides):
    body = {
        "repository": "acme/shop",
        "pr_number": 42,
        "commit": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
        "workflow": "CI",
        "job": "unit-tests",
        "run_id": "1001",
        "run_attempt": 1,
        "exit_code": 1,
        "log": PYTEST_LOG,
        "changed_files": ["shop/export.py"],
        "author": "octocat",
    }
    body.update(overrides)
    return body


@pytest.fixture
def ci_bot(api_client, operator):
    api_client.force_authenticate(operator)
    return api_client


def post(client, **overrides):
    return client.post(URL, report(**overrides), format="json")


def test_a_reported_failure_is_classified_grouped_and_routed(ci_bot, itsm_endpoints):
    response = post(ci_bot)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["failure_type"] == "test_failure"
    assert body["escalation"] is not None
    assert body["links"]["page"].endswith(f"/ci/failures/{body['id']}/")
    evidence = body["evidence"]
    assert evidence and "test_export_retries" in evidence[0]["text"]
    assert PYTEST_LOG.splitlines()[evidence[0]["line"] - 1].endswith(evidence[0]["text"])
    escalation = Escalation.objects.get(pk=body["escalation"])
    assert escalation.priority == "MEDIUM"
    assert [team.name for team in escalation.teams.all()] == ["qa_analyst"]
    assert escalation.sla.deadline == escalation.sla.started_at + timedelta(hours=4)
    kinds = sorted(Notification.objects.values_list("channel", "kind"))
    assert kinds == [("linear", "ticket"), ("slack", "author"), ("slack", "opened")]


def test_the_same_job_run_reported_again_answers_200_with_the_same_failure(ci_bot, itsm_endpoints):
    first = post(ci_bot).json()
    again = post(ci_bot)

    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert FailureEvent.objects.count() == 1
    assert OutboxMessage.objects.count() == 3


def test_a_second_failure_with_the_same_signature_joins_the_escalation(ci_bot, itsm_endpoints):
    first = post(ci_bot).json()
    log_two = PYTEST_LOG.replace("10:00", "11:30").replace("7.12s", "6.01s")
    second = post(ci_bot, run_id="1002", log=log_two).json()

    assert second["escalation"] == first["escalation"]
    escalation = Escalation.objects.get(pk=first["escalation"])
    assert escalation.occurrences == 2
    assert escalation.last_seen_at >= escalation.first_seen_at
    # A repeat comments on the ticket instead of notifying the teams again.
    assert list(
        Notification.objects.filter(escalation=escalation).values_list("kind", flat=True)
    ) == ["opened", "author", "ticket", "repeat"]


def test_a_different_failing_test_opens_another_escalation(ci_bot, itsm_endpoints):
    first = post(ci_bot).json()
    other_log = PYTEST_LOG.replace("test_export_retries", "test_import_csv")
    second = post(ci_bot, run_id="1003", log=other_log).json()

    assert second["escalation"] != first["escalation"]


def test_notifications_arrive_in_the_fake_slack_and_linear_once(ci_bot, itsm_endpoints, fakes):
    body = post(ci_bot).json()

    assert sweep_now() == {OutboxMessage.Status.DELIVERED: 3}

    messages = fakes.state("slack")["messages"]
    assert len(messages) == 2
    assert "Test Failure in acme/shop PR #42" in messages[0]["text"]
    [issue] = fakes.state("linear")["issues"]
    assert issue["title"] == "CI Failure: Test Failure"
    assert issue["priority"] == 3
    escalation = Escalation.objects.get(pk=body["escalation"])
    assert escalation.tracker_key == issue["identifier"]
    assert EscalationEvent.objects.filter(escalation=escalation, kind="ticket_created").exists()
    assert sweep_now() == {}


def test_slack_down_then_up_delivers_each_message_once(ci_bot, itsm_endpoints, fakes):
    post(ci_bot)
    fakes.faults(platform="slack", status=503, count=1000)
    sweep_now()
    assert fakes.state("slack")["messages"] == []
    fakes.clear_faults()

    later = timezone.now() + timedelta(hours=1)
    with time_machine.travel(later, tick=True):
        sweep_now()
        sweep_now()

    assert len(fakes.state("slack")["messages"]) == 2
    assert not OutboxMessage.objects.exclude(status=OutboxMessage.Status.DELIVERED).exists()


def test_a_security_finding_is_never_downgraded_by_a_later_test_failure_line(
    ci_bot, itsm_endpoints
):
    body = post(ci_bot, log=GITLEAKS_LOG, exit_code=1).json()

    assert body["failure_type"] == "security_secrets"
    escalation = Escalation.objects.get(pk=body["escalation"])
    assert escalation.priority == "CRITICAL"
    assert escalation.sla.deadline - escalation.sla.started_at == timedelta(hours=1)


def test_exit_code_two_with_a_failing_test_stays_generator_drift(ci_bot, itsm_endpoints):
    body = post(ci_bot, exit_code=2).json()

    assert body["failure_type"] == "generator_drift"


def test_a_multipart_log_upload_is_classified(api_client, operator, itsm_endpoints):
    api_client.force_authenticate(operator)
    data = report()
    data.pop("log")
    data["changed_files"] = ["a.py", "b.py"]
    data["log"] = SimpleUploadedFile("job.log", PYTEST_LOG.encode(), "text/plain")

    response = api_client.post(URL, data, format="multipart")

    assert response.status_code == 201, response.json()
    assert response.json()["failure_type"] == "test_failure"
    assert response.json()["changed_files"] == ["a.py", "b.py"]


def test_a_log_upload_over_the_limit_answers_413_and_records_nothing(
    api_client, operator, settings, itsm_endpoints
):
    settings.ESCALATION_MAX_LOG_BYTES = 100
    api_client.force_authenticate(operator)
    data = {**report(), "log": SimpleUploadedFile("job.log", b"x" * 1000, "text/plain")}

    response = api_client.post(URL, data, format="multipart")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert not FailureEvent.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("repository", "acme shop; rm -rf"),
        ("run_attempt", 0),
        ("commit", "not-a-sha"),
        ("job", ""),
        ("changed_files", "a.py"),
    ],
)
def test_bad_input_answers_400_naming_the_field(ci_bot, itsm_endpoints, field, value):
    response = post(ci_bot, **{field: value})

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not FailureEvent.objects.exists()


def test_a_secret_in_the_log_is_redacted_before_it_is_stored(ci_bot, itsm_endpoints):
    token = "ghp_" + "a1B2" * 9
    log = PYTEST_LOG.replace("AssertionError: 3 != 2", f"AssertionError: token {token}")

    body = post(ci_bot, log=log).json()

    failure = FailureEvent.objects.get(pk=body["id"])
    assert token not in failure.log_excerpt
    assert token not in str(failure.evidence)
    assert "AssertionError: token [REDACTED]" in failure.log_excerpt


def test_qa_reads_failures_but_cannot_report_them(api_client, itsm_endpoints):
    from tests.factories import UserFactory

    api_client.force_authenticate(UserFactory(roles=["qa"]))

    assert api_client.get(URL).status_code == 200
    assert api_client.post(URL, report(), format="json").status_code == 403


def test_anonymous_callers_get_401():
    from rest_framework.test import APIClient

    assert APIClient().post(URL, report(), format="json").status_code == 401


def test_the_failure_list_filters_by_type_team_and_since(ci_bot, itsm_endpoints):
    post(ci_bot)
    post(ci_bot, run_id="2001", log=GITLEAKS_LOG)

    by_type = ci_bot.get(URL, {"type": "security_secrets"}).json()["results"]
    by_team = ci_bot.get(URL, {"team": "qa_analyst"}).json()["results"]
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    since = ci_bot.get(URL, {"since": future}).json()["results"]

    assert [f["failure_type"] for f in by_type] == ["security_secrets"]
    assert [f["failure_type"] for f in by_team] == ["test_failure"]
    assert since == []


# --- reclassification ------------------------------------------------------------------------


def test_reclassification_reroutes_adjusts_the_sla_and_is_audited(ci_bot, itsm_endpoints):
    body = post(ci_bot).json()

    response = ci_bot.post(
        f"{URL}/{body['id']}/reclassify",
        {"failure_type": "infrastructure_timeout", "justification": "runner was lost, not a test"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    new = response.json()
    assert new["failure_type"] == "infrastructure_timeout"
    assert new["id"] != body["escalation"]
    assert new["teams"] == ["devops"]
    assert new["sla"]["deadline"]
    old = Escalation.objects.get(pk=body["escalation"])
    assert old.status == Escalation.Status.RESOLVED
    event = EscalationEvent.objects.get(kind="reclassified")
    assert event.data["from"] == "test_failure"
    assert event.data["justification"] == "runner was lost, not a test"


# --- flakiness -------------------------------------------------------------------------------


def test_a_job_that_passes_on_a_rerun_marks_the_failure_flaky_and_resolves(ci_bot, itsm_endpoints):
    body = post(ci_bot).json()

    response = ci_bot.post(
        "/api/v1/ci/job-passed",
        {"repository": "acme/shop", "commit": report()["commit"], "job": "unit-tests",
         "run_attempt": 2},
        format="json",
    )  # fmt: skip

    assert response.status_code == 200
    assert [f["id"] for f in response.json()] == [body["id"]]
    assert FailureEvent.objects.get(pk=body["id"]).status == FailureEvent.Status.FLAKY
    escalation = Escalation.objects.get(pk=body["escalation"])
    assert escalation.status == Escalation.Status.RESOLVED
    flaky = ci_bot.get("/api/v1/ci/flaky-tests", {"repository": "acme/shop"}).json()
    assert flaky[0]["test"] == "tests/test_export.py::test_export_retries"
    assert flaky[0]["count"] == 1


# --- SLA -------------------------------------------------------------------------------------


def test_a_missed_sla_is_escalated_once_to_the_scrum_master(ci_bot, itsm_endpoints):
    body = post(ci_bot).json()
    record = SlaRecord.objects.get(escalation_id=body["escalation"])

    later = record.deadline + timedelta(minutes=5)
    assert sla.sweep_due_slas(later, dispatch=sla.escalate_misses) == 1
    assert sla.sweep_due_slas(later, dispatch=sla.escalate_misses) == 0
    assert sla.escalate_misses([record.pk]) == 0  # a task run twice escalates nothing more

    record.refresh_from_db()
    assert record.status == SlaRecord.Status.SLA_EXCEEDED
    assert record.exceeded_at == later
    misses = Notification.objects.filter(kind="sla_miss")
    assert sorted(misses.values_list("channel", "team")) == [
        ("linear", "qa_analyst"),
        ("slack", "scrum_master"),
    ]
    assert EscalationEvent.objects.filter(kind="sla_missed").count() == 1


def test_resolving_before_the_deadline_is_within_sla(ci_bot, itsm_endpoints):
    body = post(ci_bot).json()

    response = ci_bot.post(
        f"/api/v1/ci/escalations/{body['escalation']}/resolve", {"reason": "fixed in #43"},
        format="json",
    )  # fmt: skip

    assert response.status_code == 200
    assert response.json()["sla"]["status"] == "resolved_within_sla"
    assert sla.sweep_due_slas(timezone.now() + timedelta(days=1), dispatch=list) == 0


def test_correcting_the_sla_timer_recomputes_the_deadline_and_notifies(ci_bot, itsm_endpoints):
    body = post(ci_bot).json()
    start = timezone.now() - timedelta(hours=1)

    response = ci_bot.post(
        f"/api/v1/ci/escalations/{body['escalation']}/sla-correction",
        {"started_at": start.isoformat(), "reason": "CI reported an hour late"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    record = SlaRecord.objects.get(escalation_id=body["escalation"])
    assert record.deadline == start + timedelta(hours=4)
    assert Notification.objects.filter(kind="sla_corrected").count() == 1
    assert EscalationEvent.objects.filter(kind="sla_corrected").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("seeded_matrix")
def test_two_sweeps_at_once_escalate_each_due_record_once(ci_bot, itsm_endpoints):
    import threading

    from django.db import connection

    for n in range(30):
        name = "".join(chr(ord("a") + int(digit)) for digit in f"{n:02d}")  # no digits: not noise
        post(ci_bot, run_id=str(5000 + n), log=PYTEST_LOG.replace("retries", f"case_{name}"))
    assert Escalation.objects.count() == 30
    later = timezone.now() + timedelta(days=1)
    counts: list[int] = []
    claimed: list[int] = []
    barrier = threading.Barrier(2)

    def sweep() -> None:
        barrier.wait()
        try:
            counts.append(sla.sweep_due_slas(later, batch=7, dispatch=claimed.extend))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sum(counts) == 30
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 30
    sla.escalate_misses(claimed)
    assert EscalationEvent.objects.filter(kind="sla_missed").count() == 30
    assert Notification.objects.filter(kind="sla_miss", channel="slack").count() == 30


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/ci/escalations/abc/resolve",
        "/api/v1/ci/escalations/abc/sla-correction",
        "/api/v1/ci/failures/abc/reclassify",
        "/api/v1/ci/failures/abc",
    ],
)
def test_a_non_numeric_id_answers_a_json_404(ci_bot, path):
    response = ci_bot.post(path, {}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_reclassifying_to_the_same_type_or_a_settled_failure_is_refused(ci_bot, itsm_endpoints):
    body = post(ci_bot).json()
    url = f"{URL}/{body['id']}/reclassify"

    same = ci_bot.post(url, {"failure_type": "test_failure", "justification": "no change"})
    FailureEvent.objects.filter(pk=body["id"]).update(status=FailureEvent.Status.FLAKY)
    settled = ci_bot.post(url, {"failure_type": "build_failure", "justification": "too late"})

    assert same.status_code == settled.status_code == 409
    assert same.json()["error"]["code"] == "not_reclassifiable"
    assert Escalation.objects.count() == 1


def test_a_repeat_is_delivered_as_a_comment_on_the_linear_ticket(ci_bot, itsm_endpoints, fakes):
    post(ci_bot)
    sweep_now()
    post(ci_bot, run_id="1002", log=PYTEST_LOG.replace("10:00", "12:00"))

    assert sweep_now() == {OutboxMessage.Status.DELIVERED: 1}

    [issue] = fakes.state("linear")["issues"]
    [comment] = fakes.state("linear")["comments"]
    assert comment["issue_id"] == issue["id"]
    assert comment["body"].startswith("Occurrence 2 at ")
    assert len(fakes.state("slack")["messages"]) == 2  # the repeat notified nobody again


@pytest.fixture
def qa_on_jira(db):
    from escalation.models import Team

    Team.objects.filter(name="qa_analyst").update(tracker="jira", jira_project="OPS")


def test_a_team_on_jira_gets_a_jira_ticket_and_done_resolves_the_escalation(
    ci_bot, itsm_endpoints, fakes, qa_on_jira
):
    from itsm.clients import client_for

    body = post(ci_bot).json()
    sweep_now()
    escalation = Escalation.objects.get(pk=body["escalation"])
    [issue] = fakes.state("jira")["issues"]
    assert escalation.tracker == "jira" and escalation.tracker_key == issue["key"]
    assert issue["fields"]["priority"] == "Medium"
    assert "ci-failure" in issue["labels"]

    assert sla.refresh_from_trackers() == 0  # still open on Jira
    with client_for("jira") as jira:
        jira.transition(issue["key"], ["Done"])
    assert sla.refresh_from_trackers() == 1

    escalation.refresh_from_db()
    assert escalation.status == Escalation.Status.RESOLVED
    assert escalation.sla.status == SlaRecord.Status.RESOLVED_WITHIN_SLA
    assert issue["key"] in escalation.resolution
