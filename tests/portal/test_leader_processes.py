"""Three contenders in separate OS processes (tests/portal/leader_contender.py), on Redis and on
PostgreSQL: one acts at a time, and a leader killed with SIGKILL is replaced once its lease expires.

Each process writes a line every 20 ms while it leads, stamped with CLOCK_MONOTONIC, which all
processes of the machine share; runs of lines are the intervals during which a process acted.
"""

from __future__ import annotations

import signal
import time

import pytest
from django.conf import settings

from tests.portal.conftest import LEASE_DURATION, RETRY_PERIOD, ContenderProcesses, wait_for
from tests.portal.leader_contender import overlapping_intervals


@pytest.mark.redis
def test_contender_processes_on_redis_never_act_at_once_and_a_killed_leader_is_replaced(
    redis_backend, lease_name, contender_processes
):
    arguments = [
        "--backend",
        "redis",
        "--lease-name",
        lease_name,
        "--redis-url",
        settings.REDIS_URL,
    ]
    # The fixture's prefix, so that its teardown deletes the lease the processes wrote.
    arguments += ["--redis-prefix", redis_backend.prefix]
    kill_the_leader_of_three(contender_processes, arguments, env={})


@pytest.mark.postgres
def test_contender_processes_on_postgresql_never_act_at_once_and_a_killed_leader_is_replaced(
    child_database_url, lease_name, contender_processes
):
    arguments = ["--backend", "database", "--lease-name", lease_name]
    kill_the_leader_of_three(
        contender_processes, arguments, env={"DATABASE_URL": child_database_url}
    )


# Fixture order matters: contender_processes comes last so that its teardown kills any process
# still running before the database is flushed or the Redis keys are deleted.


def kill_the_leader_of_three(
    contender_processes: ContenderProcesses, arguments: list[str], env: dict[str, str]
) -> None:
    """Start three contenders, SIGKILL the one that leads, SIGTERM the rest, check the timeline."""
    for identity in ("p1", "p2", "p3"):
        contender_processes.start(identity, arguments, env)

    leader = wait_for(lambda: next(iter(contender_processes.leaders_since(0)), None), 30, 0.05)
    assert leader, f"no contender led within 30 s\n{contender_processes.report()}"
    time.sleep(1.0)  # the standbys contend against a leader that renews

    leader.process.send_signal(signal.SIGKILL)
    leader.process.wait(5)
    killed_at = time.monotonic()  # once it is dead: it wrote its last line before this
    others = [c for c in contender_processes.contenders if c is not leader]
    successor = wait_for(
        lambda: next(
            iter(c for c in contender_processes.leaders_since(killed_at) if c in others), None
        ),
        LEASE_DURATION + RETRY_PERIOD + 5,
        0.05,
    )
    assert successor, f"nobody took over from {leader.identity}\n{contender_processes.report()}"
    first_tick = min(
        (tick for tick in successor.leading_ticks() if tick["t"] >= killed_at),
        key=lambda tick: tick["t"],
    )
    takeover = first_tick["t"] - killed_at
    # The killed leader renewed last before the kill, so its lease ran out within LEASE_DURATION
    # of it; a standby retries at least every RETRY_PERIOD; 1 s for process scheduling.
    assert takeover <= LEASE_DURATION + RETRY_PERIOD + 1.0, (
        f"took over {takeover:.2f} s after the kill\n{contender_processes.report()}"
    )
    assert first_tick["token"] > max(t["token"] for t in leader.leading_ticks())
    time.sleep(0.5)

    for contender in others:
        assert contender_processes.terminate(contender) == 0, contender_processes.report()
    intervals = sorted(contender_processes.intervals(), key=lambda interval: interval.start)
    overlaps = overlapping_intervals(intervals)
    assert not overlaps, f"{overlaps}\n{contender_processes.report()}"
