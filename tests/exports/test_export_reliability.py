"""Exactly once under failure: a fake Jira failing 20 % of its answers (503 before and after the
work, 429 with Retry-After, timeouts, dropped connections), a worker process SIGKILLed between
Jira's answer and our commit then reaped or redelivered, the reaper sparing live exports, the
pacer, and bulk mode (50 a call, per-ticket status, fallbacks and resume)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from exports.models import ExportSession, ExportTicket, ManualFix
from exports.services import engine, lifecycle
from exports.services.pacing import Pacer, Superseded
from itsm.config import get_config
from itsm.public import RateLimitHint
from itsm.types import Attempt, CallLog
from tests.exports import export_support
from tests.exports.export_support import (
    assert_exactly_once,
    attach,
    export,
    issues_by_ticket,
    make_session,
    run,
    start,
)
from tests.fakes import FAKE_JIRA_EMAIL, FAKE_JIRA_TOKEN, REPO_ROOT

jira = export_support.jira
dispatched = export_support.dispatched
Status = ExportSession.Status


@pytest.fixture
def short_timeouts(jira, settings):
    """A 0.5 s read timeout, so that a slow answer is a timeout the client retries."""
    path = Path(settings.ITSM_CONFIG_PATH)
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["timeout"].update(read_timeout_seconds=0.5, total_timeout_seconds=30)
    path.write_text(json.dumps(raw), encoding="utf-8")
    get_config.cache_clear()
    yield
    get_config.cache_clear()


def export_until_done(session: ExportSession) -> str:
    """Exports, retrying a failed export as a user would, within the seed's three retries."""
    outcome = export(session)
    while outcome == "failed" and lifecycle.retries_used(session) < ExportSession.MAX_RETRIES:
        lifecycle.retry_export(session.pk)
        outcome = run(session)
    return outcome


@pytest.mark.django_db
def test_twenty_percent_jira_errors_leave_every_ticket_exactly_once(
    jira, short_timeouts, dispatched
):
    for seed, rule in enumerate(
        [
            {"status": 503, "rate": 0.05},
            {"status": 503, "rate": 0.04, "mode": "after"},  # created, then answered 503
            {"status": 429, "rate": 0.04, "retry_after": 0},
            {"drop": True, "rate": 0.04, "mode": "after"},  # created, then hung up
            {"latency_ms": 800, "rate": 0.03},  # longer than the read timeout: a timeout
        ],
        start=11,
    ):
        jira.faults(platform="jira", seed=seed, **rule)
    session = make_session(24, depends={order: [order - 1] for order in range(2, 25, 3)})
    attach(session.tickets.get(order=5))

    assert export_until_done(session) == "completed"

    assert jira.state("jira")["faults_injected"] > 10
    assert_exactly_once(jira, session)
    links = [(link["inward"], link["outward"]) for link in jira.state("jira")["links"]]
    assert len(links) == len(set(links)) == 8
    issue = next(
        i for i in jira.state("jira")["issues"]
        if i["key"] == session.tickets.get(order=5).jira_ticket_key
    )  # fmt: skip
    assert [a["filename"] for a in issue["attachments"]] == ["design.txt"]


# --- a worker killed mid-export ------------------------------------------------------------------
def current_database_url() -> str:
    """The URL of the database this test runs on (SQLite file or PostgreSQL test database)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_env(jira, fast_config_path: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": current_database_url(),
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "memory://",
        "JIRA_BASE_URL": jira.base_url("jira"),
        "JIRA_EMAIL": FAKE_JIRA_EMAIL,
        "JIRA_API_TOKEN": FAKE_JIRA_TOKEN,
        "JIRA_PROJECT_KEY": "OPS",
        "ITSM_CONFIG_PATH": fast_config_path,
        "EXPORT_TICKET_DELAY_SECONDS": "0",
        "PORTAL_MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
        "PYTHONUNBUFFERED": "1",
    }


def kill_worker_after_jira_answers(jira, session, task_id: str, title: str) -> str:
    """Runs the export's task in a worker process and SIGKILLs it once Jira has created
    ``title`` and before the portal stored its key; returns the key Jira gave."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.exports.export_worker_process", "task", str(session.pk),
         task_id, title],
        cwd=REPO_ROOT, env=worker_env(jira, django_settings.ITSM_CONFIG_PATH),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "running", process.stderr.read()
        answered = process.stdout.readline().strip()
        assert answered.startswith("jira-answered "), answered + process.stderr.read()
        process.send_signal(signal.SIGKILL)
        assert process.wait(30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream:
                stream.close()
    return answered.removeprefix("jira-answered ")


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_export_is_reaped_and_the_retry_leaves_one_issue_per_ticket(
    jira, dispatched
):
    session = make_session(5, depends={4: [3]})
    task_id = start(session)

    key = kill_worker_after_jira_answers(jira, session, task_id, "Ticket 3")

    session.refresh_from_db()
    assert session.status == Status.EXPORTING  # the worker died holding it
    assert not session.tickets.get(order=3).jira_ticket_key  # Jira has it; we do not know it
    assert len(jira.state("jira")["issues"]) == 3
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert lifecycle.reap_stuck_exports() == [str(session.pk)]
    session.refresh_from_db()
    assert session.status == Status.EXPORT_FAILED and session.error_category == "temporary"
    assert session.failed_at_ticket_order == 3
    assert engine.run_export(session.pk, task_id) == "stale"  # a late redelivery does nothing

    lifecycle.retry_export(session.pk)
    assert run(session) == "completed"

    assert session.tickets.get(order=3).jira_ticket_key == key
    assert_exactly_once(jira, session)


@pytest.mark.django_db(transaction=True)
def test_a_killed_workers_redelivered_task_resumes_without_duplicates(jira, dispatched):
    session = make_session(4)
    task_id = start(session)
    kill_worker_after_jira_answers(jira, session, task_id, "Ticket 2")

    # Celery hands the unacknowledged message (acks_late) to the next worker: same task id.
    assert engine.run_export(session.pk, task_id, redelivered=True) == "completed"

    assert_exactly_once(jira, session)


class LineReader:
    """A process's stdout lines, read by a thread, waited for with a bound (never a sleep)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self.drain, args=(process.stdout,), daemon=True).start()

    def drain(self, stream) -> None:
        for line in stream:
            self.lines.put(line.strip())

    def wait_for(self, prefix: str, timeout: float = 60) -> str:
        while True:
            line = self.lines.get(timeout=timeout)
            if line.startswith(prefix):
                return line


def start_celery_worker(jira, queue_name: str, stop_after: str, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.exports.export_worker_process", "worker", queue_name,
         stop_after],
        cwd=REPO_ROOT,
        env={**worker_env(jira, django_settings.ITSM_CONFIG_PATH),
             "REDIS_URL": django_settings.REDIS_URL, "CELERY_BROKER_URL": django_settings.REDIS_URL},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    for stream in (process.stdin, process.stdout):
        if stream:
            stream.close()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_sigkilled_celery_worker_then_a_restarted_one_leave_one_issue_per_ticket(jira, tmp_path):
    """A real Celery worker on the Redis broker, killed between Jira's answer and our commit;
    the reaper fails the export; the retry is consumed by a restarted worker."""
    from celery import current_app

    queue_name = f"exports-kill-{uuid.uuid4().hex[:8]}"
    lifecycle.set_dispatcher(
        lambda session_id, task_id: current_app.send_task(
            "exports.run_export", args=[session_id, task_id], task_id=task_id, queue=queue_name
        )
    )
    session = make_session(4, depends={4: [3]})
    with open(tmp_path / "worker.log", "w") as log:
        first = start_celery_worker(jira, queue_name, "Ticket 2", log)
        try:
            reader = LineReader(first)
            reader.wait_for("ready")
            start(session)  # queued after commit to the worker
            reader.wait_for("jira-answered")
            first.send_signal(signal.SIGKILL)
            assert first.wait(30) == -signal.SIGKILL
        finally:
            stop(first, signal.SIGKILL)
            lifecycle.set_dispatcher(None)
    session.refresh_from_db()
    assert session.status == Status.EXPORTING
    assert len(jira.state("jira")["issues"]) == 2  # Jira has #2; the portal never stored it

    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert lifecycle.reap_stuck_exports() == [str(session.pk)]

    lifecycle.set_dispatcher(
        lambda session_id, task_id: current_app.send_task(
            "exports.run_export", args=[session_id, task_id], task_id=task_id, queue=queue_name
        )
    )
    with open(tmp_path / "worker2.log", "w") as log:
        second = start_celery_worker(jira, queue_name, "", log)
        try:
            reader = LineReader(second)
            reader.wait_for("ready")
            retry = lifecycle.retry_export(session.pk)
            reader.wait_for(f"done {retry.session.export_task_id}")
        finally:
            lifecycle.set_dispatcher(None)
            stop(second)

    session.refresh_from_db()
    assert session.status == Status.COMPLETED, (tmp_path / "worker2.log").read_text()
    assert_exactly_once(jira, session)


# --- the reaper ------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_reaper_spares_an_export_that_keeps_beating(dispatched, settings):
    settings.EXPORT_STALE_MINUTES = 10
    live, stuck = make_session(2), make_session(2)
    live_task, stuck_task = start(live), start(stuck)
    now = timezone.now()
    with time_machine.travel(now + timedelta(minutes=8)):
        assert lifecycle.heartbeat(live.pk, live_task)
    with time_machine.travel(now + timedelta(minutes=12)):
        reaped = lifecycle.reap_stuck_exports()

    assert reaped == [str(stuck.pk)]
    live.refresh_from_db()
    stuck.refresh_from_db()
    assert live.status == Status.EXPORTING
    assert stuck.status == Status.EXPORT_FAILED and stuck.export_retry_count == 1
    assert stuck.events.filter(kind="export_reaped").count() == 1
    assert lifecycle.heartbeat(stuck.pk, stuck_task) is False


@pytest.mark.django_db
def test_the_reaper_task_is_scheduled_on_beat():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="exports.reap_stuck_exports")
    assert task.enabled and task.interval.every == 60


def test_the_export_tasks_limits_stay_below_the_brokers_visibility_timeout():
    from exports.tasks import run_export

    limits = django_settings.CELERY_TASK_ANNOTATIONS["exports.run_export"]
    assert run_export.acks_late and run_export.reject_on_worker_lost
    assert limits["soft_time_limit"] < limits["time_limit"]
    visibility = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert limits["time_limit"] * 2 <= visibility
    budget = django_settings.EXPORT_MAX_TICKETS * django_settings.EXPORT_TICKET_DELAY_SECONDS
    assert limits["soft_time_limit"] > budget


# --- pacing --------------------------------------------------------------------------------------
def log_with(*codes: int | None, delay: float = 0.0) -> CallLog:
    return CallLog([Attempt(n, "t", "retryable", code, "", delay) for n, code in enumerate(codes)])


def test_a_rate_limited_call_widens_the_gap_and_clean_calls_narrow_it_back():
    pacer = Pacer(1.5, sleep=lambda s: None)
    pacer.observe(log_with(429, delay=4.0))
    assert pacer.delay == 4.0  # at least what Jira asked for
    pacer.observe(log_with(429, delay=1.0))
    assert pacer.delay == 8.0
    for _ in range(20):
        pacer.observe(CallLog())
    assert pacer.delay == 1.5


def test_an_answer_near_jiras_rate_limit_widens_the_gap_before_any_429():
    pacer = Pacer(1.0, sleep=lambda s: None)
    pacer.observe(CallLog(), RateLimitHint(near_limit=True))
    assert pacer.delay == 1.5
    pacer.observe(CallLog(), RateLimitHint(near_limit=False, remaining=5, limit=100))
    assert pacer.delay == 2.25 and pacer.near_limit_calls == 2
    pacer.observe(CallLog(), RateLimitHint(near_limit=False, remaining=90, limit=100))
    assert pacer.delay < 2.25


@pytest.mark.django_db
def test_the_jira_client_keeps_the_rate_limit_headers_it_was_answered_with(jira):
    jira.faults(platform="jira", status=429, retry_after=0, count=1, method="POST")
    client = engine.client_for("jira")

    client.create_ticket("OPS", "Paced", None, "Task", idempotency_key="paced-1")

    hint = client.take_rate_limit()
    assert hint.remaining == 0 and hint.limit == 100 and hint.pressing
    assert hint.reason == "jira-burst-based"
    assert client.take_rate_limit() is None


def test_waits_beat_the_heartbeat_in_slices_and_stop_when_superseded():
    slept, beats = [], []
    pacer = Pacer(0, sleep=slept.append, beat=lambda: beats.append(1) or len(beats) < 3)

    with pytest.raises(Superseded):
        pacer.wait(100)

    assert slept == [20.0, 20.0, 20.0] and len(beats) == 3


def test_rate_limit_waits_are_bounded_by_the_budget():
    pacer = Pacer(0, sleep=lambda s: None, wait_budget=10)
    assert pacer.may_wait_for_limit(6)
    pacer.wait_for_limit(6)
    assert not pacer.may_wait_for_limit(6)


@pytest.mark.django_db
def test_a_long_retry_after_is_waited_out_instead_of_failing(jira, dispatched):
    jira.faults(platform="jira", status=429, retry_after=120, count=1, method="POST")
    session = make_session(2)
    waited = []

    assert export(session, sleep=waited.append) == "completed"

    assert sum(waited) >= 120  # the client would not sleep that long; the pacer did
    assert_exactly_once(jira, session)


# --- bulk mode ---------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_bulk_mode_creates_50_a_call_with_per_ticket_status_and_fallbacks(jira, dispatched):
    session = make_session(
        60,
        mode=ExportSession.Mode.BULK,
        depends={60: [1]},
        fields={7: {"assignee": "nobody"}, 55: {"priority": "Urgent"}},
    )
    attach(session.tickets.get(order=52))

    assert export(session) == "completed"

    requests = jira.state("jira")["requests"]
    assert requests["POST /rest/api/3/issue/bulk"] == 2
    assert requests.get("POST /rest/api/3/issue", 0) == 0
    assert_exactly_once(jira, session)
    assert set(session.tickets.values_list("jira_export_status", flat=True)) == {"exported"}
    fixes = {(f.ticket.order, f.issue_type) for f in ManualFix.objects.select_related("ticket")}
    assert fixes == {(7, "assignee_invalid"), (55, "priority_unavailable")}
    assert len(jira.state("jira")["links"]) == 1
    assert session.tickets.get(order=52).attachment_uploaded


@pytest.mark.django_db
def test_bulk_mode_falls_back_for_an_element_jira_refused(jira, dispatched):
    jira.faults(platform="jira", status=403, path_contains="/user/assignable")
    session = make_session(3, mode=ExportSession.Mode.BULK, fields={2: {"assignee": "ghost"}})

    assert export(session) == "completed"

    assert_exactly_once(jira, session)
    assert ManualFix.objects.get().issue_type == "assignee_invalid"
    issue = next(i for i in jira.state("jira")["issues"] if i["fields"]["summary"] == "Ticket 2")
    assert issue["fields"]["assignee"] is None


@pytest.mark.django_db
def test_bulk_mode_resumes_after_an_ambiguous_failure_without_duplicates(jira, dispatched):
    # Jira creates the chunk, then the answer is lost: bulk create is not retried blindly.
    jira.faults(platform="jira", status=503, mode="after", count=1, path_contains="/issue/bulk")
    session = make_session(5, mode=ExportSession.Mode.BULK)

    assert export(session) == "failed"
    session.refresh_from_db()
    assert session.error_category == "temporary" and session.failed_at_ticket_order == 1
    assert issues_by_ticket(jira).total() == 5  # Jira has them all; we know none
    assert not ExportTicket.objects.exclude(jira_ticket_key="").exists()

    lifecycle.retry_export(session.pk)
    assert run(session) == "completed"

    assert_exactly_once(jira, session)
    assert jira.state("jira")["requests"]["POST /rest/api/3/issue/bulk"] == 1


# --- links, several at a time -------------------------------------------------------------------
@pytest.mark.django_db
def test_links_posted_four_at_a_time_are_each_made_once_and_a_refused_one_is_a_manual_fix(
    jira, dispatched, settings
):
    settings.EXPORT_LINK_CONCURRENCY = 4
    jira.faults(platform="jira", status=400, count=1, path_contains="/issueLink")
    session = make_session(31, depends={order: [1] for order in range(2, 32)})

    assert export(session) == "completed"

    links = [(link["inward"], link["outward"]) for link in jira.state("jira")["links"]]
    assert len(links) == len(set(links)) == 29  # 30 dependencies, one refused
    session.refresh_from_db()
    assert session.dependencies_created == 29
    (fix,) = ManualFix.objects.all()
    assert fix.issue_type == "link_failed" and "add it in Jira" in fix.recommended_action
    assert session.events.filter(kind="link_created").count() == 29


@pytest.mark.django_db
def test_revoked_credentials_while_linking_stop_the_export_and_the_retry_finishes_the_links(
    jira, dispatched, settings
):
    settings.EXPORT_LINK_CONCURRENCY = 4
    session = make_session(30, depends={order: [1] for order in range(2, 31)})
    jira.faults(platform="jira", status=401, path_contains="/issueLink")

    assert export(session) == "failed"
    session.refresh_from_db()
    assert session.error_category == "admin_required"
    assert jira.state("jira")["links"] == []

    jira.clear_faults()
    lifecycle.retry_export(session.pk)
    assert run(session) == "completed"

    links = [(link["inward"], link["outward"]) for link in jira.state("jira")["links"]]
    assert len(links) == len(set(links)) == 29
    session.refresh_from_db()
    assert session.dependencies_created == 29
    assert_exactly_once(jira, session)


@pytest.mark.django_db
def test_slow_links_beat_the_heartbeat_within_a_batch_and_stop_once_superseded(
    jira, dispatched, settings, monkeypatch
):
    settings.EXPORT_LINK_CONCURRENCY = 1
    monkeypatch.setattr(engine, "HEARTBEAT_SECONDS", -1.0)  # every link counts as slow
    session = make_session(11, depends={order: [1] for order in range(2, 12)})
    client = engine.client_for("jira")
    real_link = client.link_issues
    posted = []

    def link_then_lose_the_export(blocker, blocked, *args):
        real_link(blocker, blocked, *args)
        posted.append(blocked)
        if len(posted) == 3:  # a retry took the export over meanwhile
            ExportSession.objects.filter(pk=session.pk).update(export_task_id=uuid.uuid4())

    client.link_issues = link_then_lose_the_export

    assert export(session, client=client) == "stale"

    assert len(posted) == 3 and len(jira.state("jira")["links"]) == 3
    session.refresh_from_db()
    assert session.dependencies_created == 3  # what was made is still recorded
