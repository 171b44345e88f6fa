"""Unit tests of the election rules and of LeaderElector, driven step by step on a fake clock.

The in-memory backend below applies the same ``_decide`` rule as the real backends (which have their
own tests against SQLite, PostgreSQL and Redis); one clock object gives both the elector's monotonic
time and the backend's ``now``, so a test moves time instead of sleeping.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from portal.leader import (
    AcquireResult,
    ElectionConfig,
    LeaderElector,
    LeaseRecord,
    _decide,
    record_holds,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def lease(holder: str = "a", renewed: float | None = 0.0, observed: float = 0.0, **fields):
    values = {
        "name": "lease",
        "holder_identity": holder,
        "lease_duration_seconds": 1.0,
        "acquire_time": None if renewed is None else at(renewed),
        "renew_time": None if renewed is None else at(renewed),
        "lease_transitions": 1,
        "observed_at": at(observed),
    }
    return LeaseRecord(**{**values, **fields})


class FakeClock:
    """Seconds since T0: ``monotonic`` for the elector, ``now`` for the backend."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return at(self.seconds)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


class InMemoryBackend:
    """A LeaseBackend in a dict. ``call_takes`` makes each acquire-or-renew last that long;
    ``unreachable`` makes every call fail as a lost connection would."""

    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.leases: dict[str, LeaseRecord] = {}
        self.call_takes = 0.0
        self.unreachable = False

    def _current(self, name: str) -> LeaseRecord:
        empty = LeaseRecord(name, "", 0.0, None, None, 0, self.clock.now())
        return replace(self.leases.get(name, empty), observed_at=self.clock.now())

    def _check_reachable(self) -> None:
        if self.unreachable:
            raise ConnectionError("backend unreachable")

    def try_acquire_or_renew(self, name: str, identity: str, duration: float) -> AcquireResult:
        self._check_reachable()
        self.clock.advance(self.call_takes)
        result = _decide(self._current(name), identity, duration)
        if result.acquired:
            self.leases[name] = result.record
        return result

    def release(self, name: str, identity: str) -> bool:
        self._check_reachable()
        current = self._current(name)
        if current.holder_identity != identity:
            return False
        self.leases[name] = replace(current, holder_identity="", renew_time=self.clock.now())
        return True

    def get(self, name: str) -> LeaseRecord | None:
        self._check_reachable()
        return self._current(name) if name in self.leases else None

    def holds(self, name: str, identity: str, fencing_token: int) -> bool:
        return record_holds(self.get(name), identity, fencing_token)

    def records(self) -> list[LeaseRecord]:
        return [self._current(name) for name in sorted(self.leases)]


def config(identity: str = "a", **timings) -> ElectionConfig:
    values = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1, **timings}
    return ElectionConfig(lease_name="lease", identity=identity, **values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(clock) -> InMemoryBackend:
    return InMemoryBackend(clock)


class Callbacks:
    def __init__(self) -> None:
        self.started: list[int] = []
        self.stopped = 0

    def on_started(self, token: int) -> None:
        self.started.append(token)

    def on_stopped(self) -> None:
        self.stopped += 1


@pytest.fixture
def callbacks() -> Callbacks:
    return Callbacks()


@pytest.fixture
def make_elector(backend, clock, callbacks):
    def make(identity: str = "a", **timings) -> LeaderElector:
        return LeaderElector(
            config(identity, **timings),
            backend,
            on_started_leading=callbacks.on_started,
            on_stopped_leading=callbacks.on_stopped,
            clock=clock.monotonic,
        )

    return make


# --- ElectionConfig ----------------------------------------------------------------------------


def test_config_with_client_go_ordering_of_timings_is_accepted():
    assert config(lease_duration=15, renew_deadline=10, retry_period=2).renew_deadline == 10


@pytest.mark.parametrize("lease_duration", [0.6, 0.5])
def test_config_refuses_lease_duration_not_greater_than_renew_deadline(lease_duration):
    with pytest.raises(ValueError, match="lease_duration must be greater than renew_deadline"):
        config(lease_duration=lease_duration, renew_deadline=0.6)


@pytest.mark.parametrize("renew_deadline", [0.12, 0.1])
def test_config_refuses_renew_deadline_not_greater_than_1_2_retry_periods(renew_deadline):
    with pytest.raises(ValueError, match=r"renew_deadline must be greater than 1\.2"):
        config(renew_deadline=renew_deadline, retry_period=0.1)


def test_config_refuses_a_non_positive_retry_period():
    with pytest.raises(ValueError, match="retry_period must be positive"):
        config(retry_period=0)


@pytest.mark.parametrize("missing", ["lease_name", "identity"])
def test_config_refuses_an_empty_name_or_identity(missing):
    values = {"lease_name": "lease", "identity": "a", missing: ""}
    with pytest.raises(ValueError, match="required"):
        ElectionConfig(**values)


def test_invalid_config_raises_value_error_rather_than_exiting_the_process():
    # client-go exits the process on bad timings; a library lets its caller decide.
    with pytest.raises(BaseException) as raised:
        config(lease_duration=1.0, renew_deadline=2.0)
    assert raised.type is ValueError


# --- LeaseRecord -------------------------------------------------------------------------------


def test_expires_at_is_renew_time_plus_lease_duration():
    assert lease(renewed=2.0, lease_duration_seconds=1.5).expires_at == at(3.5)


def test_a_lease_never_renewed_has_no_expiry():
    assert lease(renewed=None).expires_at is None


def test_an_unexpired_lease_of_someone_else_is_held_by_other():
    assert lease(holder="a", renewed=0.0, observed=0.999).is_held_by_other("b")


def test_a_lease_is_not_held_by_other_for_its_own_holder():
    assert not lease(holder="a", renewed=0.0, observed=0.5).is_held_by_other("a")


def test_a_lease_expires_at_exactly_its_expiry_on_the_backend_clock():
    assert not lease(holder="a", renewed=0.0, observed=1.0).is_held_by_other("b")


def test_a_released_lease_is_held_by_nobody():
    assert not lease(holder="", renewed=0.0, observed=0.1).is_held_by_other("b")


def test_a_lease_without_renew_time_is_held_by_nobody():
    assert not lease(holder="a", renewed=None, observed=0.1).is_held_by_other("b")


# --- _decide -----------------------------------------------------------------------------------


def test_decide_refuses_while_another_holder_is_unexpired_and_changes_nothing():
    current = lease(holder="a", renewed=0.0, observed=0.5)
    assert _decide(current, "b", 1.0) == AcquireResult(False, current)


def test_decide_gives_an_expired_lease_to_the_next_contender_with_a_new_term():
    result = _decide(lease(holder="a", renewed=0.0, observed=1.2, lease_transitions=4), "b", 2.0)
    assert result.acquired
    assert result.record.holder_identity == "b"
    assert result.record.lease_transitions == 5
    assert result.record.acquire_time == result.record.renew_time == at(1.2)
    assert result.record.lease_duration_seconds == 2.0


def test_decide_renewal_keeps_acquire_time_and_transitions():
    current = lease(holder="a", renewed=0.0, observed=0.5, lease_transitions=4)
    result = _decide(current, "a", 1.0)
    assert result.acquired
    assert result.record.lease_transitions == 4
    assert result.record.acquire_time == at(0.0)
    assert result.record.renew_time == at(0.5)


def test_decide_counts_taking_a_released_lease_as_a_transition():
    result = _decide(lease(holder="", renewed=0.0, observed=0.1, lease_transitions=4), "a", 1.0)
    assert result.acquired
    assert result.record.lease_transitions == 5
    assert result.record.acquire_time == at(0.1)


# --- record_holds ------------------------------------------------------------------------------


def test_record_holds_for_the_holder_with_the_current_token():
    assert record_holds(lease(holder="a", observed=0.5, lease_transitions=3), "a", 3)


def test_record_holds_refuses_a_stale_token():
    assert not record_holds(lease(holder="a", observed=0.5, lease_transitions=3), "a", 2)


def test_record_holds_refuses_another_identity():
    assert not record_holds(lease(holder="a", observed=0.5, lease_transitions=3), "b", 3)


def test_record_holds_refuses_an_expired_lease():
    assert not record_holds(lease(holder="a", observed=1.0, lease_transitions=3), "a", 3)


def test_record_holds_refuses_a_missing_lease():
    assert not record_holds(None, "a", 1)


# --- LeaderElector, stepped by hand ------------------------------------------------------------


def test_elector_becomes_leader_with_the_lease_transitions_as_fencing_token(make_elector, backend):
    elector = make_elector()
    elector.step()
    assert elector.is_leader
    assert elector.fencing_token == 1
    assert backend.leases["lease"].holder_identity == "a"


def test_on_started_leading_is_called_once_with_the_token_across_renewals(
    make_elector, clock, callbacks
):
    elector = make_elector()
    for _ in range(5):
        elector.step()
        clock.advance(0.1)
    assert callbacks.started == [1]
    assert callbacks.stopped == 0


def test_a_leader_retries_after_retry_period(make_elector):
    assert make_elector().step() == pytest.approx(0.1)


def test_is_leader_turns_false_at_renew_deadline_after_the_last_renewal_started_without_a_step(
    make_elector, backend, clock
):
    backend.call_takes = 0.25  # the deadline counts from the start of a call, not from its end
    elector = make_elector()
    elector.step()
    clock.seconds = 0.5
    elector.step()
    deadline = 0.5 + elector.config.renew_deadline
    clock.seconds = deadline - 0.01
    assert elector.is_leader
    assert elector.fencing_token == 1
    clock.seconds = deadline
    assert not elector.is_leader
    assert elector.fencing_token is None


def test_a_failed_renewal_before_the_deadline_keeps_leadership(
    make_elector, backend, clock, callbacks
):
    elector = make_elector()
    elector.step()
    backend.unreachable = True
    clock.advance(0.5)
    assert elector.step() == pytest.approx(0.1)
    assert elector.is_leader
    assert callbacks.stopped == 0


def test_on_stopped_leading_is_called_once_renewals_fail_past_the_deadline(
    make_elector, backend, clock, callbacks
):
    elector = make_elector()
    elector.step()
    backend.unreachable = True
    for _ in range(10):
        clock.advance(0.1)
        elector.step()
    assert not elector.is_leader
    assert callbacks.stopped == 1


def test_a_leader_whose_lease_was_taken_steps_down_on_its_next_step(make_elector, clock, callbacks):
    a, b = make_elector("a"), make_elector("b")
    a.step()
    clock.advance(1.0)  # a was paused past its lease; b takes it
    b.step()
    a.step()
    assert not a.is_leader
    assert b.is_leader
    assert b.fencing_token == 2
    assert callbacks.started == [1, 2]
    assert callbacks.stopped == 1


def test_a_standby_does_not_lead_while_the_lease_is_held(make_elector, backend, clock):
    a, b = make_elector("a"), make_elector("b")
    a.step()
    clock.advance(0.5)
    b.step()
    assert not b.is_leader
    assert b.fencing_token is None
    assert backend.leases["lease"].holder_identity == "a"


def test_a_leader_that_renews_again_after_its_deadline_is_told_its_term_ended_and_began_anew(
    make_elector, clock, callbacks
):
    # Nobody took the lease meanwhile (same token), but is_leader was false for a while: the
    # application hears the end of the old term before the start of the new one, so callbacks pair.
    elector = make_elector()
    elector.step()
    clock.advance(0.7)
    elector.step()
    assert elector.is_leader
    assert callbacks.started == [1, 1]
    assert callbacks.stopped == 1


def test_stop_with_release_empties_the_holder_and_notifies(make_elector, backend, callbacks):
    elector = make_elector()
    elector.step()
    elector.stop(release=True)
    assert not elector.is_leader
    assert backend.leases["lease"].holder_identity == ""
    assert callbacks.stopped == 1


def test_stop_without_release_leaves_the_lease_to_expire(make_elector, backend, callbacks):
    elector = make_elector()
    elector.step()
    elector.stop(release=False)
    assert not elector.is_leader
    assert backend.leases["lease"].holder_identity == "a"
    assert callbacks.stopped == 1


def test_a_released_lease_is_taken_by_a_standby_at_once(make_elector, clock):
    a, b = make_elector("a"), make_elector("b")
    a.step()
    a.stop(release=True)
    clock.advance(0.01)
    b.step()
    assert b.is_leader
    assert b.fencing_token == 2


def test_stop_of_a_standby_neither_releases_nor_notifies(make_elector, backend, callbacks):
    a, b = make_elector("a"), make_elector("b")
    a.step()
    b.step()
    b.stop(release=True)
    assert backend.leases["lease"].holder_identity == "a"
    assert callbacks.stopped == 0


def test_a_standby_waits_until_the_lease_expires_when_that_is_sooner_than_retry_period(
    make_elector, clock
):
    timings = {"lease_duration": 5.0, "renew_deadline": 3.0, "retry_period": 1.0}
    a, b = make_elector("a", **timings), make_elector("b", **timings)
    a.step()
    clock.seconds = 4.75
    assert b.step() == pytest.approx(0.25 + 0.02)


def test_a_standby_waits_at_most_retry_period(make_elector, clock):
    a = make_elector("a", lease_duration=5.0, renew_deadline=3.0, retry_period=1.0)
    b = make_elector("b", lease_duration=5.0, renew_deadline=3.0, retry_period=1.0)
    a.step()
    assert b.step() == pytest.approx(1.0)


def test_wait_for_expiry_is_short_when_nobody_holds_the_lease(make_elector):
    assert make_elector("b")._wait_for_expiry(lease(holder="", observed=0.5)) == 0.05


def test_wait_for_expiry_is_measured_on_the_backend_clock_not_the_local_one(make_elector, clock):
    # The local clock says 100 s have passed; the backend observed the lease 0.1 s before expiry.
    clock.seconds = 100.0
    record = lease(holder="a", renewed=0.0, observed=0.9)
    assert make_elector("b", retry_period=0.4, renew_deadline=0.6)._wait_for_expiry(
        record
    ) == pytest.approx(0.12)


def test_a_callback_that_raises_does_not_stop_the_election(make_elector):
    def explode(token: int) -> None:
        raise RuntimeError("callback bug")

    elector = make_elector()
    elector.on_started_leading = explode
    elector.step()
    assert elector.is_leader
