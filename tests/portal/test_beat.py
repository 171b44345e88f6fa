"""LeaderScheduler in one process: two beats, real electors stepped by hand, time moved by hand.

Each test builds beats "a" and "b" on the pytest-django database (django-celery-beat's schedule)
with real electors on the real lease backend (each backend in turn: ``lease_backend``), freezes the
clock with time-machine and moves it; an elector takes a step only when the test says so, so a
handover happens exactly where the test puts it. Messages go to an in-memory broker, and
``before_task_publish`` notes each one with its headers and the (frozen) time it was sent.

A beat's tick can come at any moment relative to the election thread. The tests tick a beat right
after its elector acquired the lease, before anything else happens: the moment at which the
scheduler used to send from the schedule it had loaded as a standby.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery
from celery.signals import before_task_publish
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from portal.beat import LeaderScheduler
from portal.leader import ElectionConfig, LeaderElector

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ENTRY = "outbox sweep (beat test)"
EVERY = 15  # seconds, as the outbox sweep's schedule


@dataclass(frozen=True)
class Sent:
    beat: str
    fencing_token: int
    at: timedelta  # since T0


@pytest.fixture
def sent() -> Iterator[list[Sent]]:
    """The periodic messages published during the test, in order."""
    sends: list[Sent] = []

    def note(sender=None, headers=None, **kwargs) -> None:
        if headers.get("periodic_task_name") == ENTRY:
            sends.append(
                Sent(
                    headers["portal_beat_identity"],
                    headers["portal_fencing_token"],
                    timezone.now() - T0,
                )
            )

    before_task_publish.connect(note, weak=False)
    yield sends
    before_task_publish.disconnect(note)


@pytest.fixture(autouse=True)
def keep_the_test_transaction(monkeypatch):
    """django-celery-beat drops any connection it finds inside a transaction (its
    ``close_old_connections``, before each read of the schedule), as a beat process never is in
    one; pytest-django's ``db`` runs each test inside one, rolled back at the end, which is much
    faster than flushing every table after each test."""
    monkeypatch.setattr("django_celery_beat.schedulers.close_old_connections", lambda: None)


@pytest.fixture
def clock(time_machine):
    """Frozen at T0 before any row is written, so change stamps follow the frozen time."""
    time_machine.move_to(T0, tick=False)
    return time_machine


@pytest.fixture
def due_entry(db, clock) -> PeriodicTask:
    """The only enabled periodic task, every 15 s; its last run was long ago, so it is due."""
    PeriodicTask.objects.update(enabled=False)
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=EVERY, period=IntervalSchedule.SECONDS
    )
    return PeriodicTask.objects.create(
        name=ENTRY,
        task="itsm.sweep_outbox",
        interval=interval,
        last_run_at=T0 - timedelta(minutes=5),
    )


@pytest.fixture
def start_beat(lease_backend, lease_name, due_entry) -> Iterator[Callable[[str], LeaderScheduler]]:
    """Builds a beat (loading the schedule, as at start-up) with an elector the test steps."""
    app = Celery("beat-test", set_as_current=False)
    app.conf.update(broker_url="memory://", timezone="UTC", result_expires=None)
    beats: list[LeaderScheduler] = []

    def start(identity: str) -> LeaderScheduler:
        beat = LeaderScheduler(app=app)
        beat.elector = LeaderElector(ElectionConfig(lease_name, identity), lease_backend)
        beats.append(beat)
        return beat

    yield start
    for beat in beats:
        beat.close()  # releases the lease if it still holds it
        # django-celery-beat registers a sync for interpreter exit; this one is done.
        beat._finalize.cancel()


def tick_until_idle(beat: LeaderScheduler) -> None:
    """Ticks as beat's loop does, until the tick asks to wait (nothing more is due now)."""
    for _ in range(20):
        if beat.tick() > 0:
            return
    raise AssertionError("beat kept sending")


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def test_a_standby_sends_nothing_even_when_an_entry_is_due(start_beat, sent):
    a, b = start_beat("a"), start_beat("b")
    a.elector.step()
    b.elector.step()
    assert not b.elector.is_leader
    tick_until_idle(b)
    assert sent == []


def test_the_leader_sends_a_due_entry_once_with_its_fencing_token(start_beat, sent, clock):
    a = start_beat("a")
    a.elector.step()
    tick_until_idle(a)
    clock.shift(EVERY - 1)
    tick_until_idle(a)
    clock.shift(1)
    tick_until_idle(a)
    assert sent == [Sent("a", 1, seconds(0)), Sent("a", 1, seconds(EVERY))]
    entry = PeriodicTask.objects.get(name=ENTRY)
    assert (entry.last_run_at, entry.total_run_count) == (T0 + seconds(EVERY), 2)


def test_a_handover_in_the_middle_of_a_period_does_not_send_the_entry_again(
    start_beat, sent, clock
):
    a, b = start_beat("a"), start_beat("b")  # b loads the schedule now, and waits
    clock.shift(1)
    a.elector.step()
    tick_until_idle(a)
    tick_until_idle(b)

    clock.shift(5)
    a.close()  # a graceful stop releases the lease
    b.elector.step()
    tick_until_idle(b)  # b's first tick as leader: a sent this period's run 5 s ago
    clock.shift(EVERY - 6)
    tick_until_idle(b)
    clock.shift(1)
    tick_until_idle(b)

    assert sent == [Sent("a", 1, seconds(1)), Sent("b", 2, seconds(1 + EVERY))]


def test_a_new_leader_sends_an_overdue_entry_once_although_the_schedule_changed_while_it_waited(
    start_beat, sent, clock
):
    a, b = start_beat("a"), start_beat("b")
    clock.shift(1)
    a.elector.step()
    tick_until_idle(a)

    clock.shift(5)
    # What every save of a periodic task in the admin does, and every beat that starts.
    PeriodicTasks.update_changed()
    clock.shift(1)
    a.close()
    # b's election thread could not reach the backend for a while: the entry became due at 16 s
    # with nobody leading, and b takes over at 20 s.
    clock.shift(13)
    b.elector.step()
    tick_until_idle(b)
    tick_until_idle(b)

    assert sent == [Sent("a", 1, seconds(1)), Sent("b", 2, seconds(20))]


def test_two_beats_that_both_believe_they_lead_send_each_run_once(
    start_beat, sent, clock, lease_backend, lease_name, due_entry
):
    PeriodicTask.objects.filter(pk=due_entry.pk).update(last_run_at=T0 - seconds(EVERY - 5))
    a, b = start_beat("a"), start_beat("b")
    clock.shift(1)
    a.elector.step()
    # A failover that lost a's renewal: the backend no longer knows a holds the lease, while a,
    # within its renew deadline, still leads. b takes the lease: two beats lead for a while.
    lease_backend.release(lease_name, "a")
    b.elector.step()
    assert a.elector.is_leader and b.elector.is_leader
    tick_until_idle(a)
    tick_until_idle(b)

    clock.shift(4)  # the entry is due, and both beats' schedules say so
    tick_until_idle(a)
    tick_until_idle(b)
    clock.shift(EVERY)
    tick_until_idle(b)
    tick_until_idle(a)

    assert sent == [Sent("a", 1, seconds(5)), Sent("b", 2, seconds(5 + EVERY))]
    assert PeriodicTask.objects.get(pk=due_entry.pk).total_run_count == 2
