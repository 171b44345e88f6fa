"""The lease-backend contract, once, against every backend (the ``lease_backend`` fixture): the
database (SQLite by default, PostgreSQL when ``DATABASE_URL`` says so) and Redis (when ``REDIS_URL``
is set).

Each backend judges time by its own server's clock, which a test cannot move: a test about expiry
uses a lease of a few hundredths of a second and polls the backend until its clock has passed the
expiry. The later tests run real electors in threads, each on a connection of its own, with real
time and short timings; they ask for ``transactional_db`` so that the threads see committed rows.
Backend-specific tests (storage, clock source, reconnection) live in test_leader_database.py and
test_leader_redis.py.
"""

from __future__ import annotations

import time

from portal.leader import LeaseBackend
from tests.portal.conftest import (
    LEASE_DURATION,
    RETRY_PERIOD,
    ObservedBackend,
    wait_for,
)
from tests.portal.leader_contender import overlapping_intervals

SHORT = 0.05  # seconds: a lease that runs out while the test polls
TIMEOUT = 5.0  # seconds: what a poll waits at most before the test fails


def wait_until_expired(backend: LeaseBackend, name: str) -> None:
    """Polls until the backend's own clock has passed the lease's expiry."""
    expired = wait_for(lambda: (r := backend.get(name)) and r.observed_at >= r.expires_at, TIMEOUT)
    assert expired, f"lease {name} did not expire on the backend's clock within {TIMEOUT} s"


# --- the backend's rules -----------------------------------------------------------------------


def test_first_acquire_creates_the_lease_with_term_one(lease_backend, lease_name):
    result = lease_backend.try_acquire_or_renew(lease_name, "a", 1.0)
    assert result.acquired
    record = lease_backend.get(lease_name)
    assert (record.holder_identity, record.lease_transitions) == ("a", 1)
    assert record.acquire_time == record.renew_time == result.record.observed_at
    assert record.lease_duration_seconds == 1.0


def test_renewal_keeps_the_token_and_acquire_time_and_moves_renew_time(lease_backend, lease_name):
    first = lease_backend.try_acquire_or_renew(lease_name, "a", 5.0).record
    # Redis' clock counts milliseconds: let it move before renewing.
    assert wait_for(lambda: lease_backend.get(lease_name).observed_at > first.renew_time, TIMEOUT)
    renewed = lease_backend.try_acquire_or_renew(lease_name, "a", 5.0)
    assert renewed.acquired
    assert renewed.record.lease_transitions == first.lease_transitions == 1
    assert renewed.record.acquire_time == first.acquire_time
    assert renewed.record.renew_time > first.renew_time


def test_another_identity_is_refused_while_the_lease_is_unexpired(lease_backend, lease_name):
    lease_backend.try_acquire_or_renew(lease_name, "a", 5.0)
    result = lease_backend.try_acquire_or_renew(lease_name, "b", 5.0)
    assert not result.acquired
    assert result.record.holder_identity == "a"
    assert lease_backend.get(lease_name).holder_identity == "a"


def test_another_identity_takes_the_lease_once_it_expired_with_a_new_term(
    lease_backend, lease_name
):
    lease_backend.try_acquire_or_renew(lease_name, "a", SHORT)
    wait_until_expired(lease_backend, lease_name)
    result = lease_backend.try_acquire_or_renew(lease_name, "b", 1.0)
    assert result.acquired
    assert (result.record.holder_identity, result.record.lease_transitions) == ("b", 2)
    assert result.record.acquire_time == result.record.renew_time == result.record.observed_at


def test_the_holder_renews_its_expired_lease_in_the_same_term(lease_backend, lease_name):
    # Nobody took it meanwhile: no change of holder, so no new fencing token.
    lease_backend.try_acquire_or_renew(lease_name, "a", SHORT)
    wait_until_expired(lease_backend, lease_name)
    result = lease_backend.try_acquire_or_renew(lease_name, "a", 1.0)
    assert result.acquired
    assert result.record.lease_transitions == 1


def test_release_empties_the_holder_and_the_next_acquirer_gets_the_next_term(
    lease_backend, lease_name
):
    lease_backend.try_acquire_or_renew(lease_name, "a", 5.0)
    assert lease_backend.release(lease_name, "a")
    assert lease_backend.get(lease_name).holder_identity == ""
    # Long before the released lease would have expired.
    result = lease_backend.try_acquire_or_renew(lease_name, "b", 5.0)
    assert result.acquired
    assert result.record.lease_transitions == 2


def test_release_by_someone_other_than_the_holder_changes_nothing(lease_backend, lease_name):
    lease_backend.try_acquire_or_renew(lease_name, "a", 5.0)
    assert not lease_backend.release(lease_name, "b")
    assert lease_backend.get(lease_name).holder_identity == "a"


def test_release_of_an_unknown_lease_is_refused(lease_backend, lease_name):
    assert not lease_backend.release(lease_name, "a")


def test_holds_is_true_for_the_holder_with_the_current_token(lease_backend, lease_name):
    token = lease_backend.try_acquire_or_renew(lease_name, "a", 5.0).record.lease_transitions
    assert lease_backend.holds(lease_name, "a", token)


def test_holds_is_false_with_a_stale_token_after_a_takeover(lease_backend, lease_name):
    old_token = lease_backend.try_acquire_or_renew(lease_name, "a", 5.0).record.lease_transitions
    lease_backend.release(lease_name, "a")
    lease_backend.try_acquire_or_renew(lease_name, "b", 5.0)
    lease_backend.release(lease_name, "b")
    lease_backend.try_acquire_or_renew(lease_name, "a", 5.0)
    assert not lease_backend.holds(lease_name, "a", old_token)
    assert lease_backend.holds(lease_name, "a", old_token + 2)


def test_holds_is_false_once_the_lease_expired(lease_backend, lease_name):
    token = lease_backend.try_acquire_or_renew(lease_name, "a", SHORT).record.lease_transitions
    assert lease_backend.holds(lease_name, "a", token)
    wait_until_expired(lease_backend, lease_name)
    assert not lease_backend.holds(lease_name, "a", token)


def test_get_of_an_unknown_lease_is_none(lease_backend, lease_name):
    assert lease_backend.get(lease_name) is None


def test_records_lists_every_lease_in_name_order(lease_backend, lease_name):
    lease_backend.try_acquire_or_renew(f"{lease_name}-b", "beat@host-b", 5.0)
    lease_backend.try_acquire_or_renew(f"{lease_name}-a", "beat@host-a", 5.0)
    records = [r for r in lease_backend.records() if r.name.startswith(lease_name)]
    assert [(r.name, r.holder_identity) for r in records] == [
        (f"{lease_name}-a", "beat@host-a"),
        (f"{lease_name}-b", "beat@host-b"),
    ]
    assert all(record.lease_transitions == 1 for record in records)


# --- real electors in threads ------------------------------------------------------------------


def test_three_contenders_never_lead_at_once_and_a_killed_leader_is_replaced_in_time(
    transactional_db, lease_backend, start_contender
):
    backend = ObservedBackend(lease_backend)
    contenders = [start_contender(identity, backend) for identity in ("a", "b", "c")]

    leader = wait_for(lambda: next((c for c in contenders if c.elector.is_leader), None), TIMEOUT)
    assert leader, f"no contender became leader within {TIMEOUT} s"
    others = [c for c in contenders if c is not leader]

    def renewed_over_a_lease_duration_while_refusing_the_others() -> bool:
        renewals = backend.successful_calls(leader.identity)
        return renewals[-1].started - renewals[0].started > LEASE_DURATION and all(
            backend.refused_calls(other.identity) for other in others
        )

    # Steady state: the leader renews for longer than a lease lasts, the standbys keep trying.
    assert wait_for(renewed_over_a_lease_duration_while_refusing_the_others, TIMEOUT)
    assert leader.elector.is_leader, f"{leader.identity} lost leadership without a fault"
    assert not any(other.recorder.first_leading_at for other in others)

    # A crash: the loop stops and the lease is not released; it has to expire.
    leader.elector.stop(release=False)
    last_renewal = backend.successful_calls(leader.identity)[-1]
    successor = wait_for(
        lambda: next((c for c in others if c.recorder.leading_since(last_renewal.started)), None),
        LEASE_DURATION + RETRY_PERIOD + 3,
    )
    assert successor, "no contender took over from the killed leader"
    # The lease was written during the last renewal call, so it expires at most LEASE_DURATION
    # after that call returned; a standby retries at least every RETRY_PERIOD.
    takeover = successor.recorder.leading_since(last_renewal.started) - last_renewal.finished
    assert takeover <= LEASE_DURATION + RETRY_PERIOD + 0.5, f"took over after {takeover:.2f} s"
    # The successor renews a few times with the third contender still trying, before the record
    # is frozen (or the third would lead next once everyone stops).
    renewals_at_takeover = len(backend.successful_calls(successor.identity))
    assert wait_for(
        lambda: len(backend.successful_calls(successor.identity)) >= renewals_at_takeover + 3,
        TIMEOUT,
    )

    for contender in contenders:
        contender.recorder.stop()
    intervals = sorted((i for c in contenders for i in c.recorder.intervals), key=lambda i: i.start)
    assert not overlapping_intervals(intervals), intervals
    assert {i.identity for i in intervals} == {leader.identity, successor.identity}
    assert successor.started_leading == [leader.started_leading[0] + 1]


def test_a_leader_that_cannot_renew_stops_acting_before_its_lease_could_be_taken(
    transactional_db, lease_backend, start_contender
):
    backend = ObservedBackend(lease_backend)
    a = start_contender("a", backend)
    assert wait_for(lambda: a.elector.is_leader, TIMEOUT), "a never became leader"
    b = start_contender("b", backend)
    assert wait_for(lambda: len(backend.refused_calls("b")) >= 2, TIMEOUT), "b is not retrying"
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
