"""What only DatabaseLeaseBackend does: leases are rows of ``portal_lease``, judged by the database
server's clock, over a connection that may drop (the shared rules are in test_leader_backends.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from portal.leader import DatabaseLeaseBackend
from portal.models import Lease
from tests.portal.conftest import LEASE_DURATION, ObservedBackend, wait_for


def test_a_lease_is_a_row_with_the_fields_of_the_record(db, lease_name):
    record = DatabaseLeaseBackend().try_acquire_or_renew(lease_name, "a", 1.5).record
    lease = Lease.objects.get(name=lease_name)
    assert (lease.holder_identity, lease.lease_transitions) == ("a", 1)
    assert lease.acquire_time == lease.renew_time == record.observed_at
    assert lease.lease_duration_seconds == 1.5


def test_the_default_clock_is_the_database_clock_in_utc(db, lease_name):
    before = datetime.now(UTC)
    record = DatabaseLeaseBackend().try_acquire_or_renew(lease_name, "a", 1.0).record
    after = datetime.now(UTC)
    # Same machine: the database's clock agrees with ours to well within a second.
    assert before - timedelta(seconds=1) < record.observed_at < after + timedelta(seconds=1)
    assert record.observed_at.utcoffset() == timedelta(0)


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

    renewals_before = len(backend.successful_calls("a"))
    with connection.cursor() as cursor:
        # What a server restart, a failover or a proxy's idle timeout does to a connection.
        cursor.execute("SELECT pg_terminate_backend(%s)", [database.server_pid])
        assert cursor.fetchone() == (True,)
    renewed = wait_for(
        lambda: len(backend.successful_calls("a")) > renewals_before + 1, LEASE_DURATION + 1
    )
    assert renewed, "the elector never renewed the lease after its connection was dropped"
    assert a.elector.is_leader
    assert not a.stopped_leading, "leadership lapsed: the reconnection came after the deadline"
