"""The transactional outbox: enqueue with the change, deliver through the fakes, survive outages.

Without ``REDIS_URL`` Celery's broker is ``memory://`` and ``.delay`` only queues, so these tests
call ``outbox.deliver``/``outbox.sweep`` directly, as the worker and the leader's beat would.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from itsm import outbox, tasks
from itsm.config import get_config
from itsm.models import OutboxMessage, Ticket
from itsm.services.tickets import create_from_template
from tests.factories import RCA_VARIABLES
from tests.itsm.deliveries import sweep_now

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_itsm_config")]


@pytest.fixture
def scheduled(monkeypatch) -> list[int]:
    """Message ids handed to the delivery task (instead of queueing them on the broker)."""
    ids: list[int] = []
    monkeypatch.setattr(
        tasks,
        "deliver_outbox_message",
        SimpleNamespace(delay=lambda message_id, token=None: ids.append(message_id)),
    )
    return ids


def jira_ticket(job_id: str = "7") -> tuple[Ticket, OutboxMessage]:
    ticket, created = create_from_template(
        job_id=job_id, platform="jira", template_name="rca_issue", variables=RCA_VARIABLES
    )
    assert created
    return ticket, ticket.outbox_messages.get()


def slack_message(key: str = "slack-1") -> OutboxMessage:
    return outbox.enqueue("slack.post", "slack", {"text": "Build failed"}, idempotency_key=key)


def jira_issues(fakes) -> list[dict]:
    return fakes.state("jira")["issues"]


# --- enqueue ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_enqueue_inside_a_rolled_back_transaction_leaves_nothing(scheduled):
    with pytest.raises(RuntimeError), transaction.atomic():
        slack_message()
        raise RuntimeError("the business change failed")

    assert not OutboxMessage.objects.exists()
    assert scheduled == []


@pytest.mark.django_db(transaction=True)
def test_enqueue_schedules_the_delivery_only_once_the_transaction_commits(scheduled):
    with transaction.atomic():
        message = slack_message()
        assert scheduled == []

    assert scheduled == [message.pk]


def test_enqueue_with_the_same_idempotency_key_twice_keeps_one_message(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as callbacks:
        first = slack_message("same-key")
        second = slack_message("same-key")

    assert first.pk == second.pk
    assert OutboxMessage.objects.count() == 1
    assert len(callbacks) == 1


def test_enqueue_of_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="no outbox handler"):
        outbox.enqueue("fax.send", "slack", {}, idempotency_key="fax")


# --- delivery ---------------------------------------------------------------------------------


def test_delivery_while_jira_is_down_keeps_the_message_pending_with_backoff(itsm_endpoints, fakes):
    ticket, message = jira_ticket()
    fakes.faults(platform="jira", status=503, count=1000)
    started = timezone.now()

    assert outbox.deliver(message.pk) == OutboxMessage.Status.PENDING

    message.refresh_from_db()
    ticket.refresh_from_db()
    assert message.status == OutboxMessage.Status.PENDING
    assert message.attempts == 1
    assert message.next_attempt_at >= started + timedelta(seconds=outbox.backoff_seconds(1))
    assert "503" in message.last_error
    assert ticket.status == Ticket.Status.PENDING
    assert ticket.external_key == ""
    assert ticket.attempts == get_config().retry_policy.max_retries + 1
    assert jira_issues(fakes) == []


def test_message_postponed_by_an_outage_is_not_swept_before_it_is_due(itsm_endpoints, fakes):
    _, message = jira_ticket()
    fakes.faults(platform="jira", status=503, count=1000)
    outbox.deliver(message.pk)
    fakes.clear_faults()

    assert sweep_now() == {}
    assert jira_issues(fakes) == []


def test_sweep_after_the_outage_delivers_the_ticket_exactly_once(itsm_endpoints, fakes):
    ticket, message = jira_ticket()
    fakes.faults(platform="jira", status=503, count=1000)
    outbox.deliver(message.pk)
    fakes.clear_faults()
    message.refresh_from_db()

    with time_machine.travel(message.next_attempt_at + timedelta(seconds=1), tick=True):
        assert sweep_now() == {OutboxMessage.Status.DELIVERED: 1}

    message.refresh_from_db()
    ticket.refresh_from_db()
    [issue] = jira_issues(fakes)
    assert message.status == OutboxMessage.Status.DELIVERED
    assert message.attempts == 2
    assert message.result["key"] == issue["key"]
    assert ticket.status == Ticket.Status.CREATED
    assert ticket.external_key == issue["key"]


def test_redelivery_finds_the_issue_whose_answer_was_lost_before_the_outage(itsm_endpoints, fakes):
    ticket, message = jira_ticket()
    fakes.faults(platform="jira", mode="after", status=503, count=1, method="POST")
    fakes.faults(platform="jira", status=503, count=1000)
    outbox.deliver(message.pk)
    fakes.clear_faults()
    message.refresh_from_db()

    with time_machine.travel(message.next_attempt_at + timedelta(seconds=1), tick=True):
        sweep_now()

    message.refresh_from_db()
    ticket.refresh_from_db()
    [issue] = jira_issues(fakes)
    assert message.result == {"key": issue["key"], "id": issue["id"], "reconciled": True}
    assert ticket.external_key == issue["key"]


def test_ticket_rejected_by_jira_kills_the_message_and_fails_the_ticket(
    itsm_endpoints, fakes, settings
):
    settings.ITSM_ENDPOINTS = {**itsm_endpoints, "JIRA_PROJECT_KEY": "NOPE"}
    ticket, message = jira_ticket()

    assert outbox.deliver(message.pk) == OutboxMessage.Status.DEAD

    message.refresh_from_db()
    ticket.refresh_from_db()
    assert message.status == OutboxMessage.Status.DEAD
    assert "400" in message.last_error
    assert ticket.status == Ticket.Status.FAILED
    assert ticket.error["code"] == "upstream_rejected"
    assert "project" in ticket.error["field_errors"]
    assert jira_issues(fakes) == []


def test_a_delivered_message_is_not_delivered_again(itsm_endpoints, fakes):
    _, message = jira_ticket()
    outbox.deliver(message.pk)

    assert outbox.deliver(message.pk) == "skipped"
    assert sweep_now() == {}
    assert len(jira_issues(fakes)) == 1


def test_a_second_claim_of_the_same_message_loses():
    message = slack_message()

    assert outbox.claim(message.pk) is not None
    assert outbox.claim(message.pk) is None
    assert outbox.deliver(message.pk) == "skipped"


def test_retry_now_revives_a_dead_message_and_the_sweep_delivers_it(itsm_endpoints, fakes):
    message = slack_message()
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.DEAD)

    assert outbox.retry_now([message.pk]) == 1

    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.PENDING
    assert message.next_attempt_at <= timezone.now()
    assert sweep_now() == {OutboxMessage.Status.DELIVERED: 1}
    assert len(fakes.state("slack")["messages"]) == 1


def test_retry_now_leaves_delivered_messages_alone():
    message = slack_message()
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.DELIVERED)

    assert outbox.retry_now([message.pk]) == 0


def test_backoff_doubles_from_30_seconds_up_to_15_minutes():
    assert [outbox.backoff_seconds(n) for n in (1, 2, 3, 10)] == [30.0, 60.0, 120.0, 900.0]


# --- the other handlers -----------------------------------------------------------------------


def deliver_new(kind: str, platform: str, payload: dict, key: str) -> OutboxMessage:
    message = outbox.enqueue(kind, platform, payload, idempotency_key=key)
    assert outbox.deliver(message.pk) == OutboxMessage.Status.DELIVERED
    message.refresh_from_db()
    return message


def test_jira_comment_and_transition_messages_reach_the_issue(itsm_endpoints, fakes):
    _, ticket_message = jira_ticket()
    outbox.deliver(ticket_message.pk)
    key = jira_issues(fakes)[0]["key"]

    deliver_new("jira.comment", "jira", {"key": key, "body": "Job 7 failed."}, "comment-1")
    moved = deliver_new(
        "jira.transition", "jira", {"key": key, "preferred": ["Failed", "Blocked"]}, "move-1"
    )

    [issue] = jira_issues(fakes)
    assert len(issue["comments"]) == 1
    assert issue["status"] == "Failed"
    assert moved.result == {"transition": "Failed"}


def test_linear_create_message_names_the_issue_by_its_key_so_a_redelivery_finds_it(
    itsm_endpoints, fakes
):
    payload = {"team": "PLT", "title": "Flaky test", "labels": ["flaky"], "priority": 2}
    message = deliver_new("linear.create", "linear", payload, "linear-1")

    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxMessage.Status.PENDING, next_attempt_at=timezone.now()
    )
    assert outbox.deliver(message.pk) == OutboxMessage.Status.DELIVERED

    [issue] = fakes.state("linear")["issues"]
    message.refresh_from_db()
    assert message.result["id"] == issue["id"]


def test_linear_create_message_postponed_by_an_outage_is_created_on_redelivery(
    itsm_endpoints, fakes
):
    payload = {"team": "PLT", "title": "Flaky test"}
    message = outbox.enqueue("linear.create", "linear", payload, idempotency_key="linear-2")
    fakes.faults(platform="linear", status=503, count=1000)
    assert outbox.deliver(message.pk) == OutboxMessage.Status.PENDING
    fakes.clear_faults()
    message.refresh_from_db()

    with time_machine.travel(message.next_attempt_at + timedelta(seconds=1), tick=True):
        assert sweep_now() == {OutboxMessage.Status.DELIVERED: 1}

    assert len(fakes.state("linear")["issues"]) == 1


def test_github_rerun_message_reruns_the_failed_jobs(itsm_endpoints, fakes):
    deliver_new("github.rerun", "github", {"owner": "acme", "repo": "shop", "run_id": 5}, "gh-1")

    [rerun] = fakes.state("github")["reruns"]
    assert rerun["run_id"] == 5


# --- one message, one task: failures stay with their message --------------------------------


@pytest.fixture
def crashing_kind():
    """A registered kind whose handler fails with something else than an ItsmError (a bug)."""

    @outbox.handler("test.crash")
    def crash(message):
        raise KeyError("ticket_id")

    yield "test.crash"
    outbox.HANDLERS.pop("test.crash")


def test_the_sweep_queues_each_due_message_as_its_own_delivery(
    django_capture_on_commit_callbacks,
):
    messages = [slack_message(f"slack-{n}") for n in range(3)]
    queued: list[tuple[int, str | None]] = []
    outbox.set_dispatcher(lambda message_id, token: queued.append((message_id, token)))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = outbox.sweep()
    finally:
        outbox.set_dispatcher(tasks.queue_delivery)

    assert result == {"queued": 3}
    assert sorted(message_id for message_id, _ in queued) == [m.pk for m in messages]
    assert all(token for _, token in queued)
    # Claimed by the sweep: a second sweep (or an early task) does not take them again.
    assert outbox.sweep() == {"queued": 0}


def test_a_crashing_handler_fails_its_message_alone_with_the_reason_stored(
    itsm_endpoints, fakes, crashing_kind
):
    broken = outbox.enqueue(crashing_kind, "slack", {}, idempotency_key="broken")
    healthy = slack_message("healthy")

    assert sweep_now() == {OutboxMessage.Status.PENDING: 1, OutboxMessage.Status.DELIVERED: 1}

    broken.refresh_from_db()
    healthy.refresh_from_db()
    assert broken.status == OutboxMessage.Status.PENDING
    assert broken.last_error == "KeyError: 'ticket_id'"
    assert broken.next_attempt_at > timezone.now()
    assert healthy.status == OutboxMessage.Status.DELIVERED
    assert len(fakes.state("slack")["messages"]) == 1


def test_a_message_that_keeps_crashing_is_kept_dead_for_an_operator(crashing_kind):
    message = outbox.enqueue(crashing_kind, "slack", {}, idempotency_key="broken")
    OutboxMessage.objects.filter(pk=message.pk).update(attempts=outbox.MAX_UNEXPECTED_FAILURES - 1)

    assert outbox.deliver(message.pk) == OutboxMessage.Status.DEAD

    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.DEAD
    assert "KeyError" in message.last_error


def test_text_that_cannot_be_stored_in_a_failure_is_replaced_not_fatal():
    @outbox.handler("test.surrogate")
    def surrogate(message):
        raise ValueError("bad \ud800 text")

    try:
        message = outbox.enqueue("test.surrogate", "slack", {}, idempotency_key="surrogate")
        assert outbox.deliver(message.pk) == OutboxMessage.Status.PENDING
    finally:
        outbox.HANDLERS.pop("test.surrogate")

    message.refresh_from_db()
    assert message.last_error == "ValueError: bad ? text"


def test_a_delivery_whose_claim_lapsed_and_was_retaken_writes_nothing(itsm_endpoints, fakes):
    message = slack_message()
    stale = outbox.claim(message.pk)
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    current = outbox.claim(message.pk)

    assert stale and current and stale != current
    assert outbox.deliver(message.pk, stale) == "skipped"
    assert outbox.deliver(message.pk, current) == OutboxMessage.Status.DELIVERED
    assert len(fakes.state("slack")["messages"]) == 1


def test_an_unknown_kind_is_refused_when_enqueued():
    with pytest.raises(ValueError, match="no outbox handler"):
        outbox.enqueue("nope.kind", "slack", {}, idempotency_key="nope")


def test_a_sweep_stops_claiming_when_its_budget_is_spent(
    monkeypatch, django_capture_on_commit_callbacks
):
    for n in range(3):
        slack_message(f"budget-{n}")
    monkeypatch.setattr(outbox, "SWEEP_BUDGET_SECONDS", -1.0)  # spent before it starts

    with django_capture_on_commit_callbacks(execute=False):
        assert outbox.sweep() == {"queued": 0}
    assert len(outbox.due_message_ids()) == 3  # left for the next sweep
