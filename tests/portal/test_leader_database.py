"""DatabaseLeaseBackend on the configured database (SQLite by default, PostgreSQL in the services run).

The first tests step the backend's clock by hand; the later ones run real electors in threads, each
on its own connection, with real time and short timings. On SQLite the test database is a file
(``DATABASES["default"]["TEST"]["NAME"]``), so the threads share it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from portal.leader import DatabaseLeaseBackend
from portal.models import Lease
from tests.portal.conftest import (
    LEASE_DURATION,
    RETRY_PERIOD,
    ObservedBackend,
    wait_for,
)
from tests.portal.leader_contender import overlapping_intervals

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class SettableClock:
    """The backend's ``now``, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def backend(db, clock) -> DatabaseLeaseBackend:
    return DatabaseLeaseBackend(clock=clock)


# --- the backend's rules, on a clock moved by hand ---------------------------------------------


def test_first_acquire_creates_the_lease_with_term_one(backend, lease_name):
    result = backend.try_acquire_or_renew(lease_name, "a", 1.0)
    assert result.acquired
    lease = Lease.objects.get(name=lease_name)
    assert lease.holder_identity == "a"
    assert lease.lease_transitions == 1
    assert lease.acquire_time == lease.renew_time == T0
    assert lease.lease_duration_seconds == 1.0


def test_renewal_keeps_the_token_and_acquire_time(backend, clock, lease_name):
    backend.try_acquire_or_renew(lease_name, "a", 1.0)
    clock.advance(0.5)
    result = backend.try_acquire_or_renew(lease_name, "a", 1.0)
    assert result.acquired
    assert result.record.lease_transitions == 1
    lease = Lease.objects.get(name=lease_name)
    assert (lease.acquire_time, lease.renew_time) == (T0, T0 + timedelta(seconds=0.5))


def test_another_identity_is_refused_while_the_lease_is_unexpired(backend, clock, lease_name):
    backend.try_acquire_or_renew(lease_name, "a", 1.0)
    clock.advance(0.999)
    result = backend.try_acquire_or_renew(lease_name, "b", 1.0)
    assert not result.acquired
    assert result.record.holder_identity == "a"
    assert Lease.objects.get(name=lease_name).holder_identity == "a"


def test_another_identity_takes_the_lease_once_it_expired_with_a_new_term(
    backend, clock, lease_name
):
    backend.try_acquire_or_renew(lease_name, "a", 1.0)
    clock.advance(1.0)
    result = backend.try_acquire_or_renew(lease_name, "b", 1.0)
    assert result.acquired
    lease = Lease.objects.get(name=lease_name)
    assert (lease.holder_identity, lease.lease_transitions) == ("b", 2)
    assert lease.acquire_time == T0 + timedelta(seconds=1.0)


def test_release_empties_the_holder_and_the_next_acquirer_gets_the_next_term(
    backend, clock, lease_name
):
    backend.try_acquire_or_renew(lease_name, "a", 1.0)
    assert backend.release(lease_name, "a")
    assert Lease.objects.get(name=lease_name).holder_identity == ""
    clock.advance(0.01)  # long before the released lease would have expired
    result = backend.try_acquire_or_renew(lease_name, "b", 1.0)
    assert result.acquired
    assert result.record.lease_transitions == 2


def test_release_by_someone_other_than_the_holder_changes_nothing(backend, lease_name):
    backend.try_acquire_or_renew(lease_name, "a", 1.0)
    assert not backend.release(lease_name, "b")
    assert Lease.objects.get(name=lease_name).holder_identity == "a"


def test_release_of_an_unknown_lease_is_refused(backend, lease_name):
    assert not backend.release(lease_name, "a")


def test_holds_is_true_for_the_holder_with_the_current_token(backend, lease_name):
    token = backend.try_acquire_or_renew(lease_name, "a", 1.0).record.lease_transitions
    assert backend.holds(lease_name, "a", token)


def test_holds_is_false_with_a_stale_token_after_a_takeover(backend, clock, lease_name):
    old_token = backend.try_acquire_or_renew(lease_name, "a", 1.0).record.lease_transitions
    clock.advance(1.0)
    backend.try_acquire_or_renew(lease_name, "b", 1.0)
    clock.advance(1.0)
    backend.try_acquire_or_renew(lease_name, "a", 1.0)
    assert not backend.holds(lease_name, "a", old_token)
    assert backend.holds(lease_name, "a", old_token + 2)


def test_holds_is_false_once_the_lease_expired(backend, clock, lease_name):
    token = backend.try_acquire_or_renew(lease_name, "a", 1.0).record.lease_transitions
    clock.advance(1.0)
    assert not backend.holds(lease_name, "a", token)


def test_get_of_an_unknown_lease_is_none(backend, lease_name):
    assert backend.get(lease_name) is None


def test_the_default_clock_is_the_database_clock_in_utc(db, lease_name):
    before = datetime.now(UTC)
    record = DatabaseLeaseBackend().try_acquire_or_renew(lease_name, "a", 1.0).record
    after = datetime.now(UTC)
    # Same machine: the database's clock agrees with ours to well within a second.
    assert before - timedelta(seconds=1) < record.observed_at < after + timedelta(seconds=1)
    assert record.observed_at.utcoffset() == timedelta(0)


# --- real electors in threads ------------------------------------------------------------------


def test_three_contenders_never_lead_at_once_and_a_killed_leader_is_replaced_in_time(
    transactional_db, start_contender
):
    backend = ObservedBackend(DatabaseLeaseBackend())
    contenders = [start_contender(identity, backend) for identity in ("a", "b", "c")]

    leader = wait_for(lambda: next((c for c in contenders if c.elector.is_leader), None), 5)
    assert leader, "no contender became leader within 5 s"
    time.sleep(2.5)  # steady state: the leader renews, the standbys keep trying
    assert leader.elector.is_leader, f"{leader.identity} lost leadership without a fault"

    # A crash: the loop stops and the lease is not released; it has to expire.
    leader.elector.stop(release=False)
    last_renewal = backend.successful_calls(leader.identity)[-1]
    others = [c for c in contenders if c is not leader]
    successor = wait_for(
        lambda: next((c for c in others if c.recorder.leading_since(last_renewal.started)), None),
        LEASE_DURATION + RETRY_PERIOD + 3,
    )
    assert successor, "no contender took over from the killed leader"
    # The lease was written during the last renewal call, so it expires at most LEASE_DURATION
    # after that call returned; a standby retries at least every RETRY_PERIOD.
    takeover = successor.recorder.leading_since(last_renewal.started) - last_renewal.finished
    assert takeover <= LEASE_DURATION + RETRY_PERIOD + 0.5, f"took over after {takeover:.2f} s"
    time.sleep(0.5)

    # Freeze the record before anyone releases, or the third contender would lead next.
    for contender in contenders:
        contender.recorder.stop()
    intervals = sorted((i for c in contenders for i in c.recorder.intervals), key=lambda i: i.start)
    assert not overlapping_intervals(intervals), intervals
    assert {i.identity for i in intervals} == {leader.identity, successor.identity}
    assert successor.started_leading == [leader.started_leading[0] + 1]


def test_a_leader_that_cannot_renew_stops_acting_before_its_lease_could_be_taken(
    transactional_db, start_contender
):
    backend = ObservedBackend(DatabaseLeaseBackend())
    a = start_contender("a", backend)
    assert wait_for(lambda: a.elector.is_leader, 5), "a never became leader"
    b = start_contender("b", backend)
    time.sleep(0.3)  # b is a standby, retrying
    assert not b.elector.is_leader

    backend.partition("a")
    partitioned_at = time.monotonic()
    assert wait_for(lambda: b.elector.is_leader, LEASE_DURATION + RETRY_PERIOD + 3), (
        "b never took over from the partitioned leader"
    )
    a.recorder.stop()
    a_stopped = next(t for t in a.recorder.stopped_at if t >= partitioned_at)
    b_acquired = backend.successful_calls("b")[0].started
    # a_stopped is an upper bound (first poll that saw False), b_acquired a lower one (the start of
    # the call that won), so the order holds for the true moments too.
    assert a_stopped < b_acquired, (
        f"a acted until {a_stopped - partitioned_at:.3f} s after the partition, "
        f"b held the lease from {b_acquired - partitioned_at:.3f} s"
    )
    assert a.stopped_leading, "a was never told it stopped leading"


class ServerPidNotingBackend(DatabaseLeaseBackend):
    """The real backend, noting which PostgreSQL server process served its last renewal."""

    server_pid: int | None = None

    def try_acquire_or_renew(self, name: str, identity: str, duration: float):
        result = super().try_acquire_or_renew(name, identity, duration)
        self.server_pid = connections[self.using].connection.info.backend_pid
        return result


@pytest.mark.postgres
def test_a_leader_whose_database_connection_was_dropped_reconnects_and_keeps_leading(
    transactional_db, start_contender
):
    database = ServerPidNotingBackend()
    backend = ObservedBackend(database)
    a = start_contender("a", backend)
    assert wait_for(lambda: a.elector.is_leader, 5), "a never became leader"

    dropped_at = time.monotonic()
    with connection.cursor() as cursor:
        # What a server restart, a failover or a proxy's idle timeout does to a connection.
        cursor.execute("SELECT pg_terminate_backend(%s)", [database.server_pid])
        assert cursor.fetchone() == (True,)
    renewals = wait_for(
        lambda: [call for call in backend.successful_calls("a") if call.started > dropped_at],
        LEASE_DURATION + 1,
    )
    assert renewals, "the elector never renewed the lease after its connection was dropped"
    assert a.elector.is_leader
    assert not a.stopped_leading, "leadership lapsed: the reconnection came after the deadline"
