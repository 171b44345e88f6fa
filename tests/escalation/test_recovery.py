"""Recovery and retry: the re-run of failed jobs through the outbox to the fake GitHub, its
outcome from the job's next attempt, the database probe, backoff, the maximum and the claim."""

from __future__ import annotations

import itertools
import socket
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from escalation.models import Escalation, EscalationEvent, FailureEvent, Notification
from escalation.models import RecoveryAttempt as Attempt
from escalation.services import ingest, recovery, sla
from itsm.models import OutboxMessage
from tests.itsm.deliveries import sweep_now

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_itsm_config")]

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
COMMIT = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
RUNNER_LOG = "Starting job\nError: container startup timeout after 600s\n"
DATABASE_LOG = "Running migrations\nFATAL: database connection refused on db:5432\n"


@pytest.fixture(autouse=True)
def inline_recovery():
    """Claimed attempts run in this process (the worker's task does the same call)."""
    recovery.set_dispatcher(None)
    yield
    from escalation import tasks

    recovery.set_dispatcher(tasks.queue_recovery)


def fail_job(log: str, run_attempt: int = 1, **fields) -> FailureEvent:
    report = ingest.FailureReport(
        repository="acme/shop", job="integration", run_id="1001", run_attempt=run_attempt,
        commit=COMMIT, source=FailureEvent.Source.GITHUB, exit_code=1, **fields,
    )  # fmt: skip
    failure, created = ingest.report_failure(report, log)
    assert created
    return failure


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once it is closed


def events(escalation: Escalation) -> list[str]:
    return list(escalation.events.values_list("kind", flat=True))


def test_a_runner_failure_schedules_a_rerun_delivered_once_to_github(itsm_endpoints, fakes):
    with time_machine.travel(T0, tick=False) as clock:
        failure = fail_job(RUNNER_LOG)
        assert failure.failure_type == "infrastructure_timeout"
        [attempt] = Attempt.objects.all()
        assert attempt.action == "rerun_failed_jobs"
        assert attempt.scheduled_for == T0 + timedelta(seconds=60)
        sweep_now()  # the opening's Slack messages and ticket

        clock.shift(59)
        assert recovery.run_due() == []  # not due yet
        clock.shift(1)
        assert recovery.run_due() == [attempt.pk]
        assert recovery.run_due() == []

        assert sweep_now() == {OutboxMessage.Status.DELIVERED: 1}
        assert sweep_now() == {}
    [rerun] = fakes.state("github")["reruns"]
    assert (rerun["owner"], rerun["repo"], rerun["run_id"]) == ("acme", "shop", 1001)
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.RUNNING  # until the job's next attempt reports
    assert "recovery_started" in events(failure.escalation)


def test_a_rerun_that_passes_resolves_marks_flaky_and_the_attempt_succeeded(itsm_endpoints):
    with time_machine.travel(T0, tick=False) as clock:
        failure = fail_job(RUNNER_LOG)
        clock.shift(60)
        recovery.run_due()
        sweep_now()
        clock.shift(120)
        marked = ingest.record_job_passed("acme/shop", COMMIT, "integration", 2)

    assert [f.pk for f in marked] == [failure.pk]
    assert FailureEvent.objects.get(pk=failure.pk).status == FailureEvent.Status.FLAKY
    escalation = Escalation.objects.get(pk=failure.escalation_id)
    assert escalation.status == Escalation.Status.RESOLVED
    attempt = Attempt.objects.get()
    assert attempt.status == Attempt.Status.SUCCEEDED
    assert attempt.finished_at == T0 + timedelta(seconds=180)
    assert "recovery_succeeded" in events(escalation)


def test_a_failing_rerun_retries_with_backoff_then_escalates(itsm_endpoints, fakes):
    with time_machine.travel(T0, tick=False) as clock:
        fail_job(RUNNER_LOG)
        for run_attempt in (1, 2, 3):
            attempt = Attempt.objects.get(attempt=run_attempt)
            clock.move_to(attempt.scheduled_for)
            assert recovery.run_due() == [attempt.pk]
            sweep_now()
            clock.shift(30)
            fail_job(RUNNER_LOG, run_attempt=run_attempt + 1)  # the re-run failed again

    attempts = list(Attempt.objects.order_by("attempt"))
    assert [a.status for a in attempts] == [Attempt.Status.FAILED] * 3
    assert len(fakes.state("github")["reruns"]) == 3  # one re-run per attempt
    # Each attempt waits 2**n * 60 s after the previous outcome.
    assert attempts[0].scheduled_for - T0 == timedelta(seconds=60)
    assert [
        (later.scheduled_for - earlier.finished_at).total_seconds()
        for earlier, later in itertools.pairwise(attempts)
    ] == [120, 240]
    escalation = attempts[0].escalation
    assert escalation.status == Escalation.Status.OPEN
    assert Notification.objects.filter(escalation=escalation, kind="recovery_failed").count() == 1
    assert events(escalation).count("recovery_escalated") == 1
    assert events(escalation).count("recovery_failed") == 3


def test_a_failing_database_probe_backs_off_60_120_240_then_escalates(settings, itsm_endpoints):
    settings.ESCALATION_DATABASE_PROBE_URL = (
        f"postgres://postgres@127.0.0.1:{closed_port()}/postgres"
    )
    with time_machine.travel(T0, tick=False) as clock:
        failure = fail_job(DATABASE_LOG)
        assert failure.failure_type == "database_connectivity"
        due = []
        for number in (1, 2, 3):
            attempt = Attempt.objects.get(attempt=number)
            due.append(attempt.scheduled_for)
            clock.move_to(attempt.scheduled_for - timedelta(seconds=1))
            assert recovery.run_due() == []
            clock.move_to(attempt.scheduled_for)
            assert recovery.run_due() == [attempt.pk]
        assert recovery.run_due(timezone.now() + timedelta(days=1)) == []  # no fourth attempt

    assert [d - T0 for d in due] == [timedelta(seconds=s) for s in (60, 180, 420)]
    attempts = list(Attempt.objects.order_by("attempt"))
    assert [a.status for a in attempts] == [Attempt.Status.FAILED] * 3
    assert "probe failed" in attempts[0].detail
    escalation = Escalation.objects.get(pk=failure.escalation_id)
    assert escalation.status == Escalation.Status.OPEN
    assert Notification.objects.filter(escalation=escalation, kind="recovery_failed").count() == 1
    assert EscalationEvent.objects.filter(escalation=escalation, kind="recovery_escalated").exists()


def test_without_a_probe_url_the_attempt_fails_and_escalates_at_once(settings, itsm_endpoints):
    settings.ESCALATION_DATABASE_PROBE_URL = ""
    with time_machine.travel(T0, tick=False) as clock:
        failure = fail_job(DATABASE_LOG)
        clock.shift(60)
        recovery.run_due()

    [attempt] = Attempt.objects.all()
    assert (attempt.status, attempt.detail) == (Attempt.Status.FAILED, "no probe configured")
    escalation = Escalation.objects.get(pk=failure.escalation_id)
    assert Notification.objects.filter(escalation=escalation, kind="recovery_failed").count() == 1


@pytest.mark.postgres
def test_the_database_probe_against_postgresql_resolves_as_auto_recovered(settings, itsm_endpoints):
    settings.ESCALATION_DATABASE_PROBE_URL = "postgres://postgres@127.0.0.1:5432/postgres"
    with time_machine.travel(T0, tick=False) as clock:
        failure = fail_job(DATABASE_LOG)
        clock.shift(60)
        recovery.run_due()

    attempt = Attempt.objects.get()
    assert attempt.status == Attempt.Status.SUCCEEDED
    escalation = Escalation.objects.get(pk=failure.escalation_id)
    assert (escalation.status, escalation.resolution) == ("resolved", "auto_recovered")
    assert Notification.objects.filter(kind="recovery_failed").count() == 0


def test_the_probe_itself_against_a_closed_port_fails_within_its_timeout():
    ok, detail = recovery.probe_database(f"postgres://postgres@127.0.0.1:{closed_port()}/postgres")
    assert not ok
    assert detail.startswith("probe failed")


def test_a_due_attempt_is_claimed_exactly_once(itsm_endpoints):
    calls: list[int] = []
    recovery.set_dispatcher(calls.append)
    with time_machine.travel(T0, tick=False) as clock:
        fail_job(RUNNER_LOG)
        attempt = Attempt.objects.get()
        clock.shift(60)
        now = timezone.now()
        assert recovery.claim(attempt.pk, now) is True
        assert recovery.claim(attempt.pk, now) is False  # a second sweep finds it taken
        assert recovery.run_due(now) == []
    assert calls == []
    attempt.refresh_from_db()
    assert (attempt.status, attempt.started_at) == (
        Attempt.Status.RUNNING,
        T0 + timedelta(seconds=60),
    )


def test_an_escalation_without_a_recovery_action_schedules_nothing(itsm_endpoints):
    fail_job("tests/test_x.py::test_y FAILED\nAssertionError: test failed\n")
    assert not Attempt.objects.exists()


def test_an_attempt_due_after_its_escalation_was_resolved_is_cancelled(itsm_endpoints, fakes):
    with time_machine.travel(T0, tick=False) as clock:
        failure = fail_job(RUNNER_LOG)
        sla.resolve(failure.escalation, "fixed by hand")
        clock.shift(60)
        recovery.run_due()
        sweep_now()

    attempt = Attempt.objects.get()
    assert attempt.status == Attempt.Status.CANCELLED
    assert fakes.state("github")["reruns"] == []
    assert not OutboxMessage.objects.filter(kind="github.rerun").exists()


def test_the_workers_task_runs_a_claimed_attempt_once(itsm_endpoints):
    from escalation import tasks

    with time_machine.travel(T0, tick=False) as clock:
        fail_job(RUNNER_LOG)
        attempt = Attempt.objects.get()
        clock.shift(60)
        assert recovery.claim(attempt.pk, timezone.now())
        assert tasks.run_recovery_attempt(attempt.pk) == Attempt.Status.RUNNING
        tasks.run_recovery_attempt(attempt.pk)  # a redelivered task changes nothing

    assert OutboxMessage.objects.filter(kind="github.rerun").count() == 1
    assert EscalationEvent.objects.filter(kind="recovery_started").count() == 1


# --- re-runs that never report ---------------------------------------------------------------


def queued_rerun(clock) -> Attempt:
    """A runner failure whose first re-run was queued at T0 + 60 s."""
    fail_job(RUNNER_LOG)
    clock.shift(60)
    [claimed] = recovery.run_due()
    attempt = Attempt.objects.get(pk=claimed)
    assert attempt.detail.startswith("re-run of run 1001 queued")
    return attempt


def test_a_rerun_that_never_reports_times_out_and_the_next_attempt_follows(itsm_endpoints):
    with time_machine.travel(T0, tick=False) as clock:
        attempt = queued_rerun(clock)
        clock.shift(29 * 60 + 59)
        assert recovery.time_out_reruns() == []
        assert Attempt.objects.get(pk=attempt.pk).status == Attempt.Status.RUNNING
        clock.shift(1)  # 30 minutes after the re-run was queued
        assert recovery.run_due() == []  # the sweep times it out; the next one is not due yet
        timed_out_at = timezone.now()
        assert recovery.run_due() == []  # and a second sweep changes nothing

    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.FAILED
    assert attempt.detail.startswith("timed out: no report of the re-run within 30 min")
    assert attempt.finished_at == timed_out_at
    second = Attempt.objects.get(attempt=2)
    assert second.status == Attempt.Status.SCHEDULED
    assert second.scheduled_for == timed_out_at + timedelta(seconds=120)  # the backoff
    escalation = attempt.escalation
    assert events(escalation).count("recovery_failed") == 1
    assert not Notification.objects.filter(kind="recovery_failed").exists()


def test_the_timeout_is_a_setting(settings, itsm_endpoints):
    settings.ESCALATION_RERUN_TIMEOUT = 600
    with time_machine.travel(T0, tick=False) as clock:
        attempt = queued_rerun(clock)
        clock.shift(599)
        assert recovery.time_out_reruns() == []
        clock.shift(1)
        assert recovery.time_out_reruns() == [attempt.pk]

    assert "within 10 min" in Attempt.objects.get(pk=attempt.pk).detail


def test_reruns_that_keep_timing_out_escalate_once_past_the_maximum(itsm_endpoints, fakes):
    with time_machine.travel(T0, tick=False) as clock:
        fail_job(RUNNER_LOG)
        for number in (1, 2, 3):
            attempt = Attempt.objects.get(attempt=number)
            clock.move_to(attempt.scheduled_for)
            assert recovery.run_due() == [attempt.pk]
            sweep_now()  # the re-run reaches the fake GitHub, which never reports back
            clock.shift(30 * 60)
            recovery.run_due()
        clock.shift(24 * 3600)
        recovery.run_due()

    attempts = list(Attempt.objects.order_by("attempt"))
    assert [a.status for a in attempts] == [Attempt.Status.FAILED] * 3
    assert all(a.detail.startswith("timed out") for a in attempts)
    assert len(fakes.state("github")["reruns"]) == 3
    escalation = attempts[0].escalation
    assert Notification.objects.filter(escalation=escalation, kind="recovery_failed").count() == 1
    assert events(escalation).count("recovery_escalated") == 1
    assert Escalation.objects.get(pk=escalation.pk).status == Escalation.Status.OPEN


def test_a_report_before_the_timeout_wins(itsm_endpoints):
    with time_machine.travel(T0, tick=False) as clock:
        attempt = queued_rerun(clock)
        clock.shift(10 * 60)
        ingest.record_job_passed("acme/shop", COMMIT, "integration", 2)
        clock.shift(30 * 60)
        assert recovery.time_out_reruns() == []

    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.SUCCEEDED
    assert not Attempt.objects.filter(attempt=2).exists()


def test_a_failure_report_and_the_timeout_decide_the_attempt_once(itsm_endpoints):
    with time_machine.travel(T0, tick=False) as clock:
        attempt = queued_rerun(clock)
        clock.shift(30 * 60)
        fail_job(RUNNER_LOG, run_attempt=2)  # the report arrives first at the same moment
        assert recovery.time_out_reruns() == []

    attempt.refresh_from_db()
    assert attempt.detail == "attempt 2 of integration failed again"
    assert Attempt.objects.filter(attempt=2).count() == 1
    assert events(attempt.escalation).count("recovery_failed") == 1


def test_a_claimed_rerun_never_queued_times_out_too(itsm_endpoints):
    calls: list[int] = []
    recovery.set_dispatcher(calls.append)  # the worker never runs it
    with time_machine.travel(T0, tick=False) as clock:
        fail_job(RUNNER_LOG)
        clock.shift(60)
        [attempt_id] = recovery.run_due()
        clock.shift(30 * 60)
        assert recovery.time_out_reruns() == [attempt_id]

    attempt = Attempt.objects.get(pk=attempt_id)
    assert attempt.status == Attempt.Status.FAILED
    assert attempt.detail == "timed out: the re-run was not queued within 30 min"


def test_a_rerun_of_an_escalation_resolved_meanwhile_is_cancelled(itsm_endpoints):
    with time_machine.travel(T0, tick=False) as clock:
        attempt = queued_rerun(clock)
        sla.resolve(attempt.escalation, "fixed by hand")
        clock.shift(30 * 60)
        assert recovery.time_out_reruns() == [attempt.pk]

    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.CANCELLED
    assert not Attempt.objects.filter(attempt=2).exists()
    assert not Notification.objects.filter(kind="recovery_failed").exists()


def test_the_beat_task_of_the_recovery_sweep_times_reruns_out(itsm_endpoints):
    from escalation import tasks

    with time_machine.travel(T0, tick=False) as clock:
        attempt = queued_rerun(clock)
        clock.shift(30 * 60)
        tasks.run_due_recoveries.apply().get()

    assert Attempt.objects.get(pk=attempt.pk).status == Attempt.Status.FAILED
