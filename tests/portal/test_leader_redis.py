"""RedisLeaseBackend against a real Redis: the same rules as the database backend, on Redis' clock.

Redis judges expiry with its own ``TIME`` inside the Lua scripts, so nothing here can move that clock;
the one test about expiry uses a 0.2 s lease and waits it out. Every test has a key prefix of its own
(the ``redis_backend`` fixture), deleted afterwards, because Redis DB 0 is shared with other tests.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.redis


def test_first_acquire_creates_the_lease_with_term_one(redis_backend, lease_name):
    result = redis_backend.try_acquire_or_renew(lease_name, "a", 1.0)
    assert result.acquired
    record = redis_backend.get(lease_name)
    assert (record.holder_identity, record.lease_transitions) == ("a", 1)
    assert record.acquire_time == record.renew_time
    assert record.lease_duration_seconds == 1.0


def test_renewal_keeps_the_token_and_acquire_time(redis_backend, lease_name):
    first = redis_backend.try_acquire_or_renew(lease_name, "a", 1.0).record
    time.sleep(0.01)  # so that Redis' millisecond clock moves
    renewed = redis_backend.try_acquire_or_renew(lease_name, "a", 1.0).record
    assert renewed.lease_transitions == first.lease_transitions == 1
    assert renewed.acquire_time == first.acquire_time
    assert renewed.renew_time > first.renew_time


def test_another_identity_is_refused_while_the_lease_is_unexpired(redis_backend, lease_name):
    redis_backend.try_acquire_or_renew(lease_name, "a", 5.0)
    result = redis_backend.try_acquire_or_renew(lease_name, "b", 5.0)
    assert not result.acquired
    assert result.record.holder_identity == "a"
    assert redis_backend.get(lease_name).holder_identity == "a"


def test_another_identity_takes_the_lease_once_it_expired_with_a_new_term(
    redis_backend, lease_name
):
    redis_backend.try_acquire_or_renew(lease_name, "a", 0.2)
    time.sleep(0.25)  # the lease has to run out on Redis' clock
    result = redis_backend.try_acquire_or_renew(lease_name, "b", 1.0)
    assert result.acquired
    assert (result.record.holder_identity, result.record.lease_transitions) == ("b", 2)
    assert result.record.acquire_time == result.record.renew_time


def test_release_empties_the_holder_and_the_next_acquirer_gets_the_next_term(
    redis_backend, lease_name
):
    redis_backend.try_acquire_or_renew(lease_name, "a", 5.0)
    assert redis_backend.release(lease_name, "a")
    assert redis_backend.get(lease_name).holder_identity == ""
    result = redis_backend.try_acquire_or_renew(lease_name, "b", 5.0)
    assert result.acquired
    assert result.record.lease_transitions == 2


def test_release_by_someone_other_than_the_holder_changes_nothing(redis_backend, lease_name):
    redis_backend.try_acquire_or_renew(lease_name, "a", 5.0)
    assert not redis_backend.release(lease_name, "b")
    assert redis_backend.get(lease_name).holder_identity == "a"


def test_release_of_an_unknown_lease_is_refused(redis_backend, lease_name):
    assert not redis_backend.release(lease_name, "a")


def test_holds_is_true_for_the_holder_with_the_current_token(redis_backend, lease_name):
    token = redis_backend.try_acquire_or_renew(lease_name, "a", 5.0).record.lease_transitions
    assert redis_backend.holds(lease_name, "a", token)


def test_holds_is_false_with_a_stale_token_after_a_takeover(redis_backend, lease_name):
    old_token = redis_backend.try_acquire_or_renew(lease_name, "a", 5.0).record.lease_transitions
    redis_backend.release(lease_name, "a")
    redis_backend.try_acquire_or_renew(lease_name, "b", 5.0)
    redis_backend.release(lease_name, "b")
    redis_backend.try_acquire_or_renew(lease_name, "a", 5.0)
    assert not redis_backend.holds(lease_name, "a", old_token)
    assert redis_backend.holds(lease_name, "a", old_token + 2)


def test_holds_is_false_once_the_lease_expired(redis_backend, lease_name):
    token = redis_backend.try_acquire_or_renew(lease_name, "a", 0.2).record.lease_transitions
    time.sleep(0.25)
    assert not redis_backend.holds(lease_name, "a", token)


def test_get_of_an_unknown_lease_is_none(redis_backend, lease_name):
    assert redis_backend.get(lease_name) is None


def test_the_lease_is_judged_by_the_redis_server_clock(redis_backend, lease_name):
    seconds, microseconds = redis_backend.client.time()
    server_now = datetime.fromtimestamp(seconds + microseconds / 1e6, UTC)
    record = redis_backend.try_acquire_or_renew(lease_name, "a", 1.0).record
    assert server_now - timedelta(milliseconds=1) <= record.observed_at
    assert record.observed_at - server_now < timedelta(seconds=1)
    assert record.renew_time == record.observed_at


def test_leases_live_under_the_backend_prefix(redis_backend, lease_name):
    redis_backend.try_acquire_or_renew(lease_name, "a", 1.0)
    assert redis_backend.client.exists(redis_backend.prefix + lease_name)
