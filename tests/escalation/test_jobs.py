"""Background jobs with a Jira ticket (seed 002's job-failure handling), against the strict fake
Jira over loopback and the outbox as the worker delivers it: success, the failed state saved
first, one comment with the failure's details, the first failure state the workflow offers, a
Jira outage that loses nothing, blocked tickets, redeliveries, lost workers, the description's
parameters and the admin."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.db import DatabaseError
from django.test import Client
from django_celery_beat.models import PeriodicTask
from pytest_django.asserts import assertContains

from escalation import tasks
from escalation.models import BackgroundJob, JobEvent
from escalation.services import jobs
from itsm import public
from itsm.clients.jira import adf_text, parse_description
from itsm.models import OutboxMessage
from tests.factories import UserFactory
from tests.itsm.deliveries import sweep_now

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_itsm_config")]

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
Status = BackgroundJob.Status
DELIVERED = OutboxMessage.Status.DELIVERED
PENDING = OutboxMessage.Status.PENDING
CALLS: list[jobs.JobContext] = []


@jobs.background_job("tests.count_rows", description="Counts the rows it is told to")
def count_rows(context: jobs.JobContext) -> dict:
    CALLS.append(context)
    return {"rows": int(context.parameters.get("Rows", 0))}


@jobs.background_job("tests.disk_full")
def disk_full(context: jobs.JobContext) -> dict:
    CALLS.append(context)
    raise OSError("disk full on /var/spool/export")


@jobs.background_job("tests.unstorable_result")
def unstorable_result(context: jobs.JobContext) -> dict:
    return {"rows": {1, 2}}


@pytest.fixture(autouse=True)
def calls():
    CALLS.clear()
    yield CALLS
    CALLS.clear()


@pytest.fixture(autouse=True)
def dispatched():
    """Jobs queued for the worker, by id (the worker's task makes the same call as the tests)."""
    queued: list[int] = []
    jobs.set_dispatcher(queued.append)
    yield queued
    jobs.set_dispatcher(tasks.queue_job)


@pytest.fixture
def jira(itsm_endpoints):
    with public.client_for("jira") as client:
        yield client


def new_ticket(jira, summary: str = "Nightly invoice export", description: str = "") -> str:
    return jira.create_ticket("OPS", summary, description or None).key


def issue(fakes, key: str) -> dict:
    return next(item for item in fakes.state("jira")["issues"] if item["key"] == key)


def comments(fakes, key: str) -> list[str]:
    return [adf_text(comment["body"]) for comment in issue(fakes, key)["comments"]]


def make_job(kind: str, jira_key: str = "", parameters: dict | None = None) -> BackgroundJob:
    return jobs.create_job("nightly export", kind, jira_key, parameters)


def events(job: BackgroundJob) -> list[str]:
    return list(JobEvent.objects.filter(job=job).values_list("kind", flat=True))


# --- success -----------------------------------------------------------------------------------


def test_a_job_that_succeeds_keeps_its_result_and_leaves_its_ticket_alone(jira, fakes, calls):
    key = new_ticket(jira, description="Rows: 12")
    job = make_job("tests.count_rows", key)

    outcome = jobs.run_job_with_failure_handling(job)

    job.refresh_from_db()
    assert outcome.status == Status.SUCCEEDED
    assert (job.status, job.attempts, job.result) == (Status.SUCCEEDED, 1, {"rows": 12})
    assert job.started_at is not None and job.finished_at is not None and job.failed_at is None
    assert len(calls) == 1
    assert OutboxMessage.objects.count() == 0
    assert issue(fakes, key)["comments"] == []
    assert issue(fakes, key)["status"] == "To Do"
    assert events(job) == ["created", "started", "succeeded"]


# --- failure -----------------------------------------------------------------------------------


def test_a_failed_job_is_saved_failed_and_its_ticket_gets_one_comment_and_moves_to_failed(
    jira, fakes
):
    key = new_ticket(jira)
    with time_machine.travel(T0, tick=False):
        job = make_job("tests.disk_full", key)
        outcome = jobs.run_job_with_failure_handling(job)

        job.refresh_from_db()
        assert outcome.status == job.status == Status.FAILED
        assert job.last_error == "OSError: disk full on /var/spool/export"
        assert job.failed_at == T0 and job.attempts == 1 and job.failure_reported_attempt == 1
        assert "Failed (attempt 1): OSError: disk full" in job.detail
        assert issue(fakes, key)["comments"] == []  # nothing is sent from the job's own run

        assert sweep_now() == {DELIVERED: 2}
        assert sweep_now() == {}

    [comment] = comments(fakes, key)
    fields = parse_description(comment)
    assert fields["Job"] == f"nightly export (#{job.pk}, kind tests.disk_full)"
    assert fields["Attempt"] == "1"
    assert fields["Failed at"] == "2026-12-01T09:00:00+00:00"
    assert fields["Error"] == "OSError: disk full on /var/spool/export"
    assert issue(fakes, key)["status"] == "Failed"
    assert events(job) == ["created", "started", "failed", "failure_reported"]


def test_the_ticket_moves_to_the_first_failure_state_its_workflow_offers(jira, fakes, settings):
    # The fake's workflow has no "Errored": the next configured state, "Blocked", is taken.
    settings.ESCALATION_JOB_FAILURE_STATES = ["Errored", "Blocked"]
    key = new_ticket(jira)
    job = make_job("tests.disk_full", key)

    jobs.run_job_with_failure_handling(job)
    assert sweep_now() == {DELIVERED: 2}

    assert issue(fakes, key)["status"] == "Blocked"
    [transition] = OutboxMessage.objects.filter(kind="jira.transition")
    assert transition.result == {"transition": "Blocked"}
    assert "Moved to the first available of: Errored, Blocked" in comments(fakes, key)[0]


def test_a_done_ticket_that_no_failure_state_can_be_reached_from_still_gets_the_comment(
    jira, fakes
):
    key = new_ticket(jira)
    jira.transition(key, ["Done"])
    job = make_job("tests.disk_full", key)

    jobs.run_job_with_failure_handling(job)
    assert sweep_now() == {DELIVERED: 2}

    assert issue(fakes, key)["status"] == "Done"
    assert len(comments(fakes, key)) == 1
    assert OutboxMessage.objects.get(kind="jira.transition").result == {"transition": None}


def test_a_second_failure_of_the_same_job_is_a_second_comment_with_its_attempt(jira, fakes):
    key = new_ticket(jira)
    job = make_job("tests.disk_full", key)
    jobs.run_job_with_failure_handling(job)
    sweep_now()

    jobs.request_run([job.pk])
    jobs.run_job_with_failure_handling(job)
    sweep_now()

    job.refresh_from_db()
    assert job.attempts == 2 and job.failure_reported_attempt == 2
    assert [parse_description(text)["Attempt"] for text in comments(fakes, key)] == ["1", "2"]
    assert issue(fakes, key)["status"] == "Failed"  # already there: not moved twice
    assert len(issue(fakes, key)["transitions"]) == 1


# --- Jira unreachable -------------------------------------------------------------------------------


def test_with_jira_down_the_failure_is_saved_and_reaches_the_ticket_once_jira_is_back(jira, fakes):
    key = new_ticket(jira)
    with time_machine.travel(T0, tick=False) as clock:
        job = make_job("tests.disk_full", key)
        jobs.run_job_with_failure_handling(job)
        fakes.faults(platform="jira", status=503)

        assert sweep_now() == {PENDING: 2}
        job.refresh_from_db()
        assert job.status == Status.FAILED
        assert job.last_error == "OSError: disk full on /var/spool/export"
        assert all(m.last_error for m in OutboxMessage.objects.all())

        fakes.clear_faults()
        clock.shift(30)
        assert sweep_now() == {DELIVERED: 2}
        assert sweep_now() == {}

    assert len(comments(fakes, key)) == 1
    assert issue(fakes, key)["status"] == "Failed"


def test_a_lost_answer_from_jira_never_doubles_the_comment(jira, fakes):
    key = new_ticket(jira)
    job = make_job("tests.disk_full", key)
    jobs.run_job_with_failure_handling(job)
    # Jira adds the comment, then the answer is lost: the retry finds it instead of adding again.
    fakes.faults(
        platform="jira", status=502, mode="after", method="POST", path_contains="/comment", count=1
    )

    sweep_now()

    assert len(comments(fakes, key)) == 1


def test_the_failed_state_is_saved_even_when_its_report_cannot_be_queued(jira, fakes, monkeypatch):
    key = new_ticket(jira)
    job = make_job("tests.disk_full", key)

    def database_gone(*args, **kwargs):
        raise DatabaseError("the outbox table is locked")

    monkeypatch.setattr(public, "enqueue", database_gone)
    outcome = jobs.run_job_with_failure_handling(job)
    monkeypatch.undo()

    job.refresh_from_db()
    assert outcome.status == job.status == Status.FAILED
    assert job.last_error == "OSError: disk full on /var/spool/export"
    assert job.failure_reported_attempt == 0
    assert OutboxMessage.objects.count() == 0

    assert jobs.sweep_waiting_jobs()["reported"] == 1
    assert jobs.sweep_waiting_jobs()["reported"] == 0
    assert sweep_now() == {DELIVERED: 2}
    assert len(comments(fakes, key)) == 1


def test_a_job_whose_ticket_jira_cannot_show_now_waits_and_runs_when_jira_answers(
    jira, fakes, calls, dispatched
):
    key = new_ticket(jira, description="Rows: 3")
    with time_machine.travel(T0, tick=False) as clock:
        job = make_job("tests.count_rows", key)
        fakes.faults(platform="jira", status=503)

        outcome = jobs.run_job_with_failure_handling(job)

        job.refresh_from_db()
        assert outcome.status == job.status == Status.PENDING
        assert job.detail.startswith("Not started: Jira did not answer")
        assert job.attempts == 0 and calls == []

        fakes.clear_faults()
        clock.shift(299)
        assert jobs.sweep_waiting_jobs()["requeued"] == 0
        clock.shift(1)
        assert jobs.sweep_waiting_jobs()["requeued"] == 1
        assert jobs.run_job(job.pk) == Status.SUCCEEDED
    assert len(calls) == 1


def test_a_job_whose_ticket_does_not_exist_fails_without_a_report(jira, fakes, calls):
    job = make_job("tests.count_rows", "OPS-999")

    outcome = jobs.run_job_with_failure_handling(job)

    job.refresh_from_db()
    assert outcome.status == job.status == Status.FAILED
    assert job.last_error.startswith("TicketUnreadable: ")
    assert "404" in job.last_error or "does not exist" in job.last_error
    assert "before it started" in job.detail
    assert calls == [] and job.attempts == 0
    assert OutboxMessage.objects.count() == 0


def test_a_job_without_a_ticket_runs_and_fails_without_jira(calls):
    job = make_job("tests.disk_full")

    assert jobs.run_job_with_failure_handling(job).status == Status.FAILED
    job.refresh_from_db()
    assert job.last_error.startswith("OSError")
    assert OutboxMessage.objects.count() == 0
    assert jobs.sweep_waiting_jobs()["reported"] == 0


# --- blocked tickets ---------------------------------------------------------------------------


def test_a_job_whose_ticket_is_blocked_by_an_open_issue_is_not_started_and_says_so(
    jira, fakes, calls, dispatched, django_capture_on_commit_callbacks
):
    blocker = new_ticket(jira, "Database migration")
    key = new_ticket(jira)
    jira.link_issues(blocker, key)
    with time_machine.travel(T0, tick=False) as clock:
        job = make_job("tests.count_rows", key)

        outcome = jobs.run_job_with_failure_handling(job)

        job.refresh_from_db()
        message = f"Not started: {key} is blocked by open issues {blocker}"
        assert outcome.status == job.status == Status.BLOCKED
        assert outcome.message == job.detail == message
        assert calls == [] and job.attempts == 0 and job.started_at is None
        assert JobEvent.objects.get(job=job, kind="blocked").data == {"blockers": [blocker]}
        assert OutboxMessage.objects.count() == 0

        # The blocker is resolved: the sweep's next look starts the job.
        jira.transition(blocker, ["Done"])
        clock.shift(300)
        with django_capture_on_commit_callbacks(execute=True):
            assert jobs.sweep_waiting_jobs()["requeued"] == 1
        assert dispatched == [job.pk]
        assert jobs.run_job(job.pk) == Status.SUCCEEDED
    assert len(calls) == 1


def test_a_resolved_blocker_does_not_hold_a_job_back(jira, calls):
    blocker = new_ticket(jira, "Database migration")
    key = new_ticket(jira)
    jira.link_issues(blocker, key)
    jira.transition(blocker, ["Done"])

    assert jobs.run_job_with_failure_handling(make_job("tests.count_rows", key)).status == (
        Status.SUCCEEDED
    )
    assert len(calls) == 1


# --- redelivery and the claim ----------------------------------------------------------------------


def test_a_redelivered_task_does_not_run_a_finished_job_again(jira, calls):
    job = make_job("tests.count_rows", new_ticket(jira))

    assert tasks.run_background_job(job.pk) == Status.SUCCEEDED
    assert tasks.run_background_job(job.pk) == Status.SUCCEEDED

    job.refresh_from_db()
    assert len(calls) == 1 and job.attempts == 1


def test_a_redelivered_task_does_not_run_a_job_another_worker_is_running(jira, calls):
    job = make_job("tests.count_rows", new_ticket(jira))
    assert jobs.claim(job.pk)  # another worker took it
    assert not jobs.claim(job.pk)

    assert tasks.run_background_job(job.pk) == Status.RUNNING
    assert jobs.run_job_with_failure_handling(job).status == "skipped"
    assert calls == []


def test_a_redelivered_task_of_a_failed_job_neither_reruns_it_nor_comments_twice(
    jira, fakes, calls
):
    key = new_ticket(jira)
    job = make_job("tests.disk_full", key)

    assert tasks.run_background_job(job.pk) == Status.FAILED
    assert tasks.run_background_job(job.pk) == Status.FAILED
    sweep_now()

    assert len(calls) == 1
    assert len(comments(fakes, key)) == 1
    assert OutboxMessage.objects.count() == 2


def test_a_job_whose_worker_was_lost_is_failed_and_reported_not_run_again(jira, fakes, calls):
    key = new_ticket(jira)
    with time_machine.travel(T0, tick=False) as clock:
        job = make_job("tests.count_rows", key)
        # The worker that took and started it dies.
        BackgroundJob.objects.filter(pk=job.pk).update(
            status=Status.RUNNING, attempts=1, started_at=T0, updated_at=T0
        )

        clock.shift(34 * 60)
        assert jobs.sweep_waiting_jobs()["lost"] == 0
        clock.shift(60)
        assert jobs.sweep_waiting_jobs() == {"requeued": 0, "lost": 1, "reported": 0}
        assert tasks.run_background_job(job.pk) == Status.FAILED  # the broker's redelivery
        assert sweep_now() == {DELIVERED: 2}

    job.refresh_from_db()
    assert job.last_error == "WorkerLost: no outcome within 35 min of its start"
    assert calls == []
    [comment] = comments(fakes, key)
    assert parse_description(comment)["Error"] == job.last_error


def test_a_run_now_queues_finished_jobs_but_never_a_running_one(jira, dispatched):
    done = make_job("tests.count_rows", new_ticket(jira))
    jobs.run_job_with_failure_handling(done)
    running = make_job("tests.count_rows", new_ticket(jira))
    jobs.claim(running.pk)

    queued, refused = jobs.request_run([done.pk, running.pk])

    assert (queued, refused) == ([done.pk], [running.pk])
    done.refresh_from_db()
    assert done.status == Status.PENDING


# --- parameters from the ticket's description ---------------------------------------------------


def paragraph(text: str) -> dict:
    return {"type": "paragraph", "content": [{"type": "text", "text": text}]}


def test_a_job_reads_its_parameters_from_its_ticket_description_its_own_winning(jira, calls):
    description = {
        "type": "doc",
        "version": 1,
        "content": [
            paragraph("Dataset: invoices"),
            paragraph("Rows: 500"),
            {
                "type": "heading",
                "attrs": {"level": 2},
                "content": [{"type": "text", "text": "Notes"}],
            },
            paragraph("run after the close"),
        ],
    }
    key = jira.create_ticket("OPS", "Nightly invoice export", description).key
    job = make_job("tests.count_rows", key, {"Rows": "20"})

    jobs.run_job_with_failure_handling(job)

    [context] = calls
    assert context.ticket_fields == {
        "Dataset": "invoices",
        "Rows": "500",
        "Notes": "run after the close",
    }
    assert context.parameters == {
        "Dataset": "invoices",
        "Rows": "20",
        "Notes": "run after the close",
    }
    assert (context.jira_key, context.attempt, context.name) == (key, 1, "nightly export")
    job.refresh_from_db()
    assert job.result == {"rows": 20}


def test_an_unknown_job_kind_is_refused_when_made_and_fails_when_run(jira, fakes):
    with pytest.raises(ValueError, match="no job kind"):
        jobs.create_job("typo", "tests.no_such_kind")
    key = new_ticket(jira)
    job = make_job("tests.count_rows", key)
    BackgroundJob.objects.filter(pk=job.pk).update(kind="tests.removed_kind")

    assert jobs.run_job_with_failure_handling(job).status == Status.FAILED
    sweep_now()
    assert "LookupError: no job kind 'tests.removed_kind'" in comments(fakes, key)[0]


def test_a_result_the_database_cannot_store_fails_the_job_instead_of_leaving_it_running():
    job = make_job("tests.unstorable_result")

    assert jobs.run_job_with_failure_handling(job).status == Status.FAILED
    job.refresh_from_db()
    assert job.last_error.startswith("TypeError: Object of type set is not JSON serializable")
    assert job.result == {}


# --- the admin, the beat entry and the roles --------------------------------------------------------


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_a_job_added_in_the_admin_is_queued_and_recorded_as_its_author(
    superuser_client, dispatched, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(
            "/admin/escalation/backgroundjob/add/",
            {"name": "nightly export", "kind": "tests.count_rows", "jira_key": "OPS-7",
             "parameters": '{"Rows": "4"}'},
        )  # fmt: skip
    assert response.status_code == 302
    job = BackgroundJob.objects.get()
    assert (job.kind, job.jira_key, job.parameters) == ("tests.count_rows", "OPS-7", {"Rows": "4"})
    assert job.created_by.username == "root"
    assert dispatched == [job.pk]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("jira_key", "ops 7", "A Jira issue key"),
        ("kind", "tests.no_such_kind", "Select a valid choice"),
        ("parameters", "[1, 2]", "JSON object"),
        ("name", "export\x07", "contains a control character"),
    ],
)
def test_the_admin_refuses_a_job_it_could_not_run(superuser_client, field, value, error):
    data = {"name": "nightly export", "kind": "tests.count_rows", "jira_key": "OPS-7",
            "parameters": "{}"}  # fmt: skip
    data[field] = value
    response = superuser_client.post("/admin/escalation/backgroundjob/add/", data)
    assert response.status_code == 200
    assertContains(response, error)
    assert BackgroundJob.objects.count() == 0


def test_run_now_in_the_admin_queues_the_selected_jobs_through_the_task(
    superuser_client, dispatched, django_capture_on_commit_callbacks
):
    failed = BackgroundJob.objects.create(name="a", kind="tests.count_rows", status=Status.FAILED)
    running = BackgroundJob.objects.create(name="b", kind="tests.count_rows", status=Status.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(
            "/admin/escalation/backgroundjob/",
            {"action": "run_now", "_selected_action": [failed.pk, running.pk]},
            follow=True,
        )

    assertContains(response, f"Queued to run: #{failed.pk}.")
    assertContains(response, f"Already running, not queued again: #{running.pk}.")
    assert dispatched == [failed.pk]
    failed.refresh_from_db()
    assert failed.status == Status.PENDING
    assert JobEvent.objects.get(job=failed).actor.username == "root"


def test_the_job_pages_list_filter_and_show_the_timeline(
    jira, superuser_client, django_assert_max_num_queries
):
    job = make_job("tests.disk_full", new_ticket(jira))
    jobs.run_job_with_failure_handling(job)
    for index in range(5):
        BackgroundJob.objects.create(name=f"job {index}", kind="tests.count_rows")

    with django_assert_max_num_queries(12):
        response = superuser_client.get("/admin/escalation/backgroundjob/?status__exact=failed")
    assertContains(response, "nightly export")
    assert b"job 3" not in response.content

    page = superuser_client.get(f"/admin/escalation/backgroundjob/{job.pk}/change/")
    assertContains(page, "OSError: disk full on /var/spool/export")
    assertContains(page, "failure_reported")


def test_the_sweep_runs_every_minute_and_admins_hold_the_jobs_permissions():
    task = PeriodicTask.objects.get(task="escalation.sweep_background_jobs")
    assert task.interval.every == 60 and task.enabled
    admins = set(Group.objects.get(name="admins").permissions.values_list("codename", flat=True))
    assert {"view_backgroundjob", "add_backgroundjob", "change_backgroundjob"} <= admins
    assert "view_jobevent" in admins


def test_run_now_needs_the_change_permission(dispatched):
    job = BackgroundJob.objects.create(name="a", kind="tests.count_rows", status=Status.FAILED)
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_backgroundjob"))
    browser = Client()
    browser.force_login(viewer)

    listing = browser.get("/admin/escalation/backgroundjob/")
    assert listing.status_code == 200
    assert b"run_now" not in listing.content
    browser.post(
        "/admin/escalation/backgroundjob/", {"action": "run_now", "_selected_action": [job.pk]}
    )
    job.refresh_from_db()
    assert job.status == Status.FAILED and dispatched == []


def test_a_job_left_pending_by_a_lost_queue_message_is_queued_again(
    dispatched, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False) as clock:
        job = make_job("tests.count_rows")
        clock.shift(300)
        with django_capture_on_commit_callbacks(execute=True):
            assert jobs.sweep_waiting_jobs() == {"requeued": 1, "lost": 0, "reported": 0}
        assert dispatched == [job.pk]
        assert jobs.sweep_waiting_jobs()["requeued"] == 0
