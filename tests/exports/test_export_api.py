"""The seed's /api/jira/ export endpoints: 202 start (idempotent while running), the three status
shapes with the per-session rate limit, retry's 202/409/422, the results, auth and roles, and the
404 envelope for unknown or malformed session ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from exports.models import ExportSession, ManualFix
from exports.services import lifecycle
from tests.exports import export_support
from tests.exports.export_support import make_session, run
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

jira = export_support.jira
dispatched = export_support.dispatched
Status = ExportSession.Status


def url(name: str, session_id) -> str:
    return f"/api/jira/{name}/{session_id}"


@pytest.fixture
def qa_client(api_client):
    api_client.force_authenticate(UserFactory(roles=["qa"]))
    return api_client


def failed(session, *, retries: int = 0, order: int = 2) -> ExportSession:
    """The session as a failed export after ``retries`` retries."""
    lifecycle.start_export(session.pk)
    for attempt in range(retries + 1):
        session.refresh_from_db()
        lifecycle.fail_export(
            session.pk, session.export_task_id,
            lifecycle.ExportFailure("temporary", "Network timeout connecting to Jira", ["Retry"]),
            order,
        )  # fmt: skip
        if attempt < retries:
            lifecycle.retry_export(session.pk)
    session.refresh_from_db()
    return session


def test_start_answers_202_with_the_seed_shape_and_queues_one_task(
    operator_client, dispatched, django_capture_on_commit_callbacks
):
    session = make_session(3, depends={2: [1]})

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(url("export-session", session.pk), {}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {
        "task_id", "session_id", "status", "total_tickets", "estimated_duration_minutes",
        "jira_project_key", "started_at",
    }  # fmt: skip
    assert body["status"] == "exporting" and body["total_tickets"] == 3
    assert body["jira_project_key"] == "OPS" and body["estimated_duration_minutes"] >= 1
    session.refresh_from_db()
    assert body["task_id"] == str(session.export_task_id)
    assert session.status == Status.EXPORTING and session.current_stage == "jira_export"
    assert dispatched == [(str(session.pk), body["task_id"])]


def test_a_second_start_while_running_answers_202_with_the_running_task(
    operator_client, dispatched, django_capture_on_commit_callbacks
):
    session = make_session(2)
    with django_capture_on_commit_callbacks(execute=True):
        first = operator_client.post(url("export-session", session.pk)).json()
        second = operator_client.post(url("export-session", session.pk))

    assert second.status_code == 202
    body = second.json()
    assert set(body) == {
        "task_id", "session_id", "status", "progress_percentage", "current_ticket_title",
        "started_at",
    }  # fmt: skip
    assert body["task_id"] == first["task_id"] and body["progress_percentage"] == 0.0
    assert len(dispatched) == 1


def test_starting_a_failed_or_empty_session_is_422(operator_client, dispatched):
    empty = make_session(0)
    assert operator_client.post(url("export-session", empty.pk)).status_code == 422
    broken = failed(make_session(1))
    response = operator_client.post(url("export-session", broken.pk))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_session_state"


@pytest.mark.parametrize("name", ["export-session", "retry-failed"])
def test_qa_may_not_start_or_retry(qa_client, name, dispatched):
    session = make_session(1)
    assert qa_client.post(url(name, session.pk)).status_code == 403


@pytest.mark.parametrize(
    ("method", "name"),
    [("post", "export-session"), ("get", "export-status"), ("post", "retry-failed"),
     ("get", "export-results")],
)  # fmt: skip
def test_every_endpoint_needs_authentication(api_client, method, name):
    session = make_session(1)
    response = getattr(api_client, method)(url(name, session.pk))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "name", ["export-session", "export-status", "retry-failed", "export-results"]
)
def test_an_unknown_session_is_the_404_envelope(operator_client, name):
    method = (
        operator_client.post if name in ("export-session", "retry-failed") else operator_client.get
    )
    response = method(url(name, uuid.uuid4()))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("bad", ["not-a-uuid", "1", "%00", "6f1c2b1e-0000-4000-8000-00000000000Z"])
def test_a_malformed_session_id_is_the_404_envelope(operator_client, bad):
    response = operator_client.get(f"/api/jira/export-status/{bad}")
    assert response.status_code in (400, 404)
    assert "error" in response.json()


def test_status_while_exporting_has_the_progress_shape(qa_client, dispatched):
    session = make_session(4)
    lifecycle.start_export(session.pk)
    ExportSession.objects.filter(pk=session.pk).update(current_ticket_title="Ticket 2")
    session.tickets.filter(order=1).update(
        jira_export_status="exported", jira_ticket_key="OPS-1", exported_at=timezone.now()
    )

    body = qa_client.get(url("export-status", session.pk)).json()

    assert set(body) == {
        "session_id", "task_id", "status", "progress_percentage", "tickets_completed",
        "total_tickets", "current_ticket_title", "estimated_time_remaining_minutes",
    }  # fmt: skip
    assert body["status"] == "exporting" and body["progress_percentage"] == 25.0
    assert (body["tickets_completed"], body["total_tickets"]) == (1, 4)
    assert body["current_ticket_title"] == "Ticket 2"
    assert isinstance(body["estimated_time_remaining_minutes"], int)


def test_status_of_a_completed_export_has_the_completed_shape(operator_client, jira, dispatched):
    session = make_session(2, depends={2: [1]}, fields={1: {"assignee": "ghost"}})
    task_id = str(lifecycle.start_export(session.pk).session.export_task_id)
    assert run(session) == "completed"

    body = operator_client.get(url("export-status", session.pk)).json()

    assert set(body) == {
        "session_id", "task_id", "status", "jira_tickets_created", "dependencies_created",
        "manual_fixes_needed", "total_processing_time_minutes", "completed_at",
    }  # fmt: skip
    assert body["status"] == "completed" and body["task_id"] == task_id
    assert (body["jira_tickets_created"], body["dependencies_created"]) == (2, 1)
    assert body["manual_fixes_needed"] == 1


def test_status_of_a_failed_export_has_the_failed_shape(operator_client, dispatched):
    session = failed(make_session(3), retries=1, order=2)

    body = operator_client.get(url("export-status", session.pk)).json()

    assert set(body) == {
        "session_id", "task_id", "status", "failed_at_ticket_order", "error_category",
        "user_message", "recovery_actions", "retry_available", "retry_attempts_used",
    }  # fmt: skip
    assert body["status"] == "failed" and body["failed_at_ticket_order"] == 2
    assert body["error_category"] == "temporary"
    assert body["user_message"] == "Network timeout connecting to Jira"
    assert body["retry_available"] is True and body["retry_attempts_used"] == 1
    assert body["task_id"] == str(session.export_task_id)


def test_polling_faster_than_once_per_2_seconds_answers_429_with_retry_after(operator_client):
    session = make_session(1)
    other = make_session(1)
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC), tick=False) as clock:
        assert operator_client.get(url("export-status", session.pk)).status_code == 200
        clock.shift(timedelta(seconds=0.5))
        throttled = operator_client.get(url("export-status", session.pk))
        # Per session: another session's status is not limited by this one's.
        assert operator_client.get(url("export-status", other.pk)).status_code == 200
        clock.shift(timedelta(seconds=1.6))
        again = operator_client.get(url("export-status", session.pk))

    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"
    assert throttled["Retry-After"] == "2"
    assert again.status_code == 200


def test_two_polls_across_a_two_second_boundary_are_still_one_too_many(operator_client):
    """A fixed window would pass polls at :01.9 and :02.1; the limit is a gap of 2 s."""
    session = make_session(1)
    start = datetime(2026, 3, 2, 9, 0, 1, 900_000, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        assert operator_client.get(url("export-status", session.pk)).status_code == 200
        clock.shift(timedelta(seconds=0.2))
        throttled = operator_client.get(url("export-status", session.pk))
        clock.shift(timedelta(seconds=1.85))
        after_the_gap = operator_client.get(url("export-status", session.pk))

    assert throttled.status_code == 429 and throttled["Retry-After"] == "2"
    assert after_the_gap.status_code == 200


def test_the_limit_is_per_session_whoever_polls(operator_client, qa_client):
    session = make_session(1)
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC), tick=False):
        operator_client.get(url("export-status", session.pk))
        assert qa_client.get(url("export-status", session.pk)).status_code == 429


def test_retry_answers_202_with_the_seed_shape(operator_client, dispatched):
    session = failed(make_session(3), order=2)
    session.tickets.filter(order=1).update(jira_ticket_key="OPS-1", jira_export_status="exported")

    response = operator_client.post(url("retry-failed", session.pk), {}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {
        "task_id", "session_id", "status", "retry_attempt", "remaining_retries",
        "resuming_from_ticket_order", "preserved_successful_tickets",
    }  # fmt: skip
    assert body["status"] == "exporting"
    assert (body["retry_attempt"], body["remaining_retries"]) == (1, 2)
    assert body["resuming_from_ticket_order"] == 2 and body["preserved_successful_tickets"] == 1
    session.refresh_from_db()
    assert body["task_id"] == str(session.export_task_id)


def test_retry_while_the_export_runs_is_409(operator_client, dispatched):
    session = make_session(1)
    lifecycle.start_export(session.pk)

    response = operator_client.post(url("retry-failed", session.pk))

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "export_running"


def test_retry_of_a_session_that_did_not_fail_is_422(operator_client):
    session = make_session(1)
    response = operator_client.post(url("retry-failed", session.pk))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_session_state"


def test_a_fourth_retry_is_422_with_the_seeds_exact_body(operator_client, dispatched):
    with time_machine.travel(datetime(2024, 1, 15, 10, 30, 0, tzinfo=UTC), tick=False):
        session = failed(make_session(2), retries=3)

    response = operator_client.post(url("retry-failed", session.pk))

    assert response.status_code == 422
    assert response.json() == {
        "error_category": "admin_required",
        "user_message": "Maximum retry attempts (3) exceeded. Please contact administrator.",
        "recovery_actions": ["Contact system administrator", "Session may need manual cleanup"],
        "retry_attempts_used": 3,
        "first_error_at": "2024-01-15T10:30:00Z",
    }
    status = operator_client.get(url("export-status", session.pk)).json()
    assert status["retry_available"] is False and status["retry_attempts_used"] == 3


def test_results_list_the_jira_links_and_manual_fixes(qa_client, jira, dispatched):
    session = make_session(2, depends={2: [1]}, fields={2: {"sprint": "No such sprint"}})
    lifecycle.start_export(session.pk)
    assert run(session) == "completed"

    response = qa_client.get(url("export-results", session.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["session_id"] == str(session.pk) and body["total_tickets_created"] == 2
    assert body["dependencies_created"] == 1
    first = body["jira_tickets"][0]
    ticket = session.tickets.get(order=1)
    assert first == {
        "ticket_id": str(ticket.pk), "jira_key": ticket.jira_ticket_key,
        "jira_url": ticket.jira_ticket_url, "title": "Ticket 1",
    }  # fmt: skip
    (fix,) = body["manual_fixes"]
    stored = ManualFix.objects.get()
    assert fix == {
        "jira_key": stored.ticket.jira_ticket_key, "title": "Ticket 2",
        "issue_type": "sprint_not_found", "recommended_action": stored.recommended_action,
        "jira_url": stored.ticket.jira_ticket_url,
    }  # fmt: skip
    assert isinstance(body["total_processing_time_minutes"], float)
    assert body["orphaned_issues"] == []


def test_the_results_endpoint_reads_a_bounded_number_of_queries(
    operator_client, django_assert_max_num_queries
):
    session = make_session(30)
    with django_assert_max_num_queries(12):
        operator_client.get(url("export-results", session.pk))


def test_the_openapi_schema_documents_the_four_endpoints(operator_client):
    schema = operator_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for name in ("export-session", "export-status", "retry-failed", "export-results"):
        assert f"/api/jira/{name}/{{session_id}}" in schema["paths"]
    assert "ExportFailedResponse" in schema["components"]["schemas"]
