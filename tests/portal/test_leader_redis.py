"""What only RedisLeaseBackend does: leases are hashes under the backend's key prefix, judged by the
Redis server's ``TIME`` inside the Lua scripts (the shared rules are in test_leader_backends.py).
Every test has a key prefix of its own (the ``redis_backend`` fixture), deleted afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.redis


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
    assert [record.name for record in redis_backend.records()] == [lease_name]
