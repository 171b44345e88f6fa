"""Leader election across OS processes, on PostgreSQL and Redis.

Contenders (tests/portal/leader_contender.py) write a line every 20 ms while they lead, stamped with
CLOCK_MONOTONIC, which all processes of the machine share; runs of lines are the intervals during
which a process acted. One acts at a time, and a leader killed with SIGKILL is replaced once its
lease expires.

Real ``celery beat`` processes with the LeaderScheduler: no worker runs; the test reads the messages
the beats put on the broker (the Redis list of the default queue) and looks at their headers, which
say which beat sent them and under which fencing token. The beats use the pytest-django test
database (for django-celery-beat's schedule) and Redis DB 14 as broker and lease store, flushed
before and after.

Nothing here sleeps a fixed time: every wait polls for what it waits for, with a deadline.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings

from tests.portal.conftest import (
    LEASE_DURATION,
    REPO_ROOT,
    RETRY_PERIOD,
    ContenderProcess,
    ContenderProcesses,
    wait_for,
)
from tests.portal.leader_contender import overlapping_intervals

# --- contender processes -----------------------------------------------------------------------


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


def acted_for(contender: ContenderProcess, since: float = 0.0) -> float:
    """Seconds between the first and the last line ``contender`` wrote as leader after ``since``."""
    moments = [tick["t"] for tick in contender.leading_ticks() if tick["t"] >= since]
    return max(moments) - min(moments) if moments else 0.0


def kill_the_leader_of_three(
    contender_processes: ContenderProcesses, arguments: list[str], env: dict[str, str]
) -> None:
    """Start three contenders, SIGKILL the one that leads, SIGTERM the rest, check the timeline."""
    for identity in ("p1", "p2", "p3"):
        contender_processes.start(identity, arguments, env)

    leader = wait_for(lambda: next(iter(contender_processes.leaders_since(0)), None), 30, 0.05)
    assert leader, f"no contender led within 30 s\n{contender_processes.report()}"
    # The standbys contend against a leader that renews for longer than a lease lasts.
    assert wait_for(lambda: acted_for(leader) > LEASE_DURATION, 10, 0.05), (
        contender_processes.report()
    )

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
    # The successor acts for a while with the third contender still trying.
    assert wait_for(lambda: acted_for(successor, killed_at) > 5 * RETRY_PERIOD, 10, 0.05), (
        contender_processes.report()
    )

    for contender in others:
        assert contender_processes.terminate(contender) == 0, contender_processes.report()
    intervals = sorted(contender_processes.intervals(), key=lambda interval: interval.start)
    overlaps = overlapping_intervals(intervals)
    assert not overlaps, f"{overlaps}\n{contender_processes.report()}"


# --- celery beat processes ---------------------------------------------------------------------

BEAT_DB = 14
BEAT_LEASE_DURATION = 2.0
BEAT_RENEW_DEADLINE = 1.2
BEAT_RETRY_PERIOD = 0.3
TASK = "portal.record_heartbeat"
QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE
EVERY = 0.5  # seconds between two runs of the test's periodic entry
# Two sends closer than this are the same run sent twice.
SAME_RUN = EVERY / 2


@dataclass(frozen=True)
class SentTask:
    received_at: float  # time.monotonic() when the test popped it, a few ms after beat sent it
    task: str
    fencing_token: int
    beat_identity: str

    @property
    def beat_pid(self) -> int:
        # default_identity(): "beat@host:PID:random"
        return int(self.beat_identity.rsplit(":", 2)[1])


class Broker:
    """Pops every message off the default queue in a side thread, keeping the periodic ones."""

    def __init__(self, url: str):
        self.url = url
        self.client = redis.Redis.from_url(url)
        self.sent: list[SentTask] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._collect, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _collect(self) -> None:
        while not self._stop.is_set():
            popped = self.client.brpop([QUEUE], timeout=0.1)
            if popped is None:
                continue
            headers = json.loads(popped[1])["headers"]
            if headers["task"] != TASK:
                continue
            sent = SentTask(
                received_at=time.monotonic(),
                task=headers["task"],
                fencing_token=headers["portal_fencing_token"],
                beat_identity=headers["portal_beat_identity"],
            )
            with self._lock:
                self.sent.append(sent)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def sent_since(self, moment: float = 0.0) -> list[SentTask]:
        with self._lock:
            return [sent for sent in self.sent if sent.received_at >= moment]

    def wait_for_sends(
        self, count: int, since: float = 0.0, by: Callable[[SentTask], bool] = lambda s: True
    ) -> list[SentTask]:
        """The first ``count`` sends after ``since`` that ``by`` accepts, once there are as many."""

        def sends() -> list[SentTask]:
            return [sent for sent in self.sent_since(since) if by(sent)][:count]

        return wait_for(lambda: len(sends()) == count and sends(), 30, 0.05) or sends()


@pytest.fixture
def broker() -> Broker:
    url = urlsplit(settings.REDIS_URL)._replace(path=f"/{BEAT_DB}").geturl()
    broker = Broker(url)
    broker.client.flushdb()
    broker.start()
    yield broker
    broker.stop()
    broker.client.flushdb()
    broker.client.close()


@pytest.fixture
def periodic_heartbeat(transactional_db):
    """The only enabled periodic task: the heartbeat, every half second (the migration's 30 s one
    and anything else is disabled)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    PeriodicTask.objects.update(enabled=False)
    interval = IntervalSchedule.objects.create(
        every=int(EVERY * 1_000_000), period=IntervalSchedule.MICROSECONDS
    )
    return PeriodicTask.objects.create(name="heartbeat (beat test)", task=TASK, interval=interval)


@dataclass
class Beat:
    name: str
    process: subprocess.Popen
    stderr: Path


class Beats:
    def __init__(self, directory: Path, env: dict[str, str]):
        self.directory = directory
        self.env = env
        self.beats: list[Beat] = []

    def start(self, name: str) -> Beat:
        stderr = self.directory / f"{name}.stderr"
        celery = Path(sys.executable).parent / "celery"
        command = [str(celery), "-A", "portal", "beat", "-S", "portal.beat:LeaderScheduler"]
        with stderr.open("wb") as stderr_file:
            process = subprocess.Popen(
                [*command, "-l", "info"],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=stderr_file,
            )
        beat = Beat(name, process, stderr)
        self.beats.append(beat)
        return beat

    def wait_until_started(self, beat: Beat, timeout: float = 30) -> bool:
        """Until ``beat`` runs its loop (its first tick starts its elector)."""
        return bool(
            wait_for(lambda: b"beat: Starting..." in beat.stderr.read_bytes(), timeout, 0.05)
        )

    def by_pid(self, pid: int) -> Beat:
        return next(beat for beat in self.beats if beat.process.pid == pid)

    def report(self) -> str:
        return "\n".join(
            f"--- {beat.name} (pid {beat.process.pid}, exit {beat.process.poll()})\n"
            + beat.stderr.read_text(errors="replace")[-4000:]
            for beat in self.beats
        )

    def stop_all(self) -> None:
        for beat in self.beats:
            if beat.process.poll() is None:
                beat.process.send_signal(signal.SIGTERM)
        for beat in self.beats:
            try:
                beat.process.wait(10)
            except subprocess.TimeoutExpired:
                beat.process.kill()
                beat.process.wait(10)


@pytest.fixture
def beats(tmp_path, child_database_url, broker, periodic_heartbeat):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": child_database_url,
        "REDIS_URL": broker.url,
        "CELERY_BROKER_URL": broker.url,
        "LEADER_LEASE_DURATION": str(BEAT_LEASE_DURATION),
        "LEADER_RENEW_DEADLINE": str(BEAT_RENEW_DEADLINE),
        "LEADER_RETRY_PERIOD": str(BEAT_RETRY_PERIOD),
    }
    env.pop("LEADER_BACKEND", None)  # Redis, since REDIS_URL is set
    beats = Beats(tmp_path, env)
    try:
        yield beats
    finally:  # before transactional_db flushes the tables they read
        beats.stop_all()


def same_run_pairs(sent: list[SentTask]) -> list[tuple[SentTask, SentTask]]:
    ordered = sorted(sent, key=lambda s: s.received_at)
    return [
        (first, second)
        for first, second in itertools.pairwise(ordered)
        if second.received_at - first.received_at < SAME_RUN
    ]


@pytest.mark.postgres
@pytest.mark.redis
def test_beats_send_each_run_once_across_a_graceful_handover_and_a_killed_leader(beats, broker):
    from django_celery_beat.models import PeriodicTasks

    beats.start("beat-1")
    beats.start("beat-2")

    steady = broker.wait_for_sends(4)
    assert len(steady) == 4, f"{len(steady)} heartbeats within 30 s\n{beats.report()}"
    assert len({sent.beat_identity for sent in steady}) == 1, beats.report()
    # One a run: two beats sending would fit four sends in well under three intervals.
    assert steady[-1].received_at - steady[0].received_at > 2.5 * EVERY, beats.report()

    # An operator edits the schedule in the admin while the standby waits: what every save of a
    # periodic task does. The standby must not take that for a change made after it takes over.
    PeriodicTasks.update_changed()
    first_leader = steady[-1].beat_identity

    # A graceful stop, in the middle of a period: the standby takes over at once and must not
    # send again the run the stopping leader sent.
    beats.by_pid(steady[-1].beat_pid).process.send_signal(signal.SIGTERM)
    beats.by_pid(steady[-1].beat_pid).process.wait(10)
    stopped_at = time.monotonic()
    restarted = beats.start("beat-3")  # the stopped one is restarted, and waits
    after_stop = broker.wait_for_sends(3, stopped_at, by=lambda s: s.beat_identity != first_leader)
    assert len(after_stop) == 3, f"no takeover after a graceful stop\n{beats.report()}"
    second_leader = after_stop[0].beat_identity
    assert after_stop[0].fencing_token > steady[-1].fencing_token, beats.report()

    # A crash: the lease has to run out before the restarted beat takes over.
    assert beats.wait_until_started(restarted), beats.report()
    leader = beats.by_pid(after_stop[-1].beat_pid)
    leader.process.send_signal(signal.SIGKILL)
    leader.process.wait(10)
    killed_at = time.monotonic()
    after_kill = broker.wait_for_sends(3, killed_at, by=lambda s: s.beat_identity != second_leader)
    assert len(after_kill) == 3, f"no takeover after a kill\n{beats.report()}"
    # The lease runs out within BEAT_LEASE_DURATION of the kill; the standby notices within
    # BEAT_RETRY_PERIOD and its next tick (at most BEAT_RETRY_PERIOD later) sends the overdue run.
    takeover = after_kill[0].received_at - killed_at
    assert takeover < BEAT_LEASE_DURATION + 2 * BEAT_RETRY_PERIOD + 2.0, beats.report()
    assert after_kill[0].fencing_token > after_stop[-1].fencing_token, beats.report()
    beats.stop_all()

    everything = broker.sent_since()
    # Each term's sends come from its leader alone: what was sent after a handover (give or take
    # what the stopped beat published just before it died, popped a little later) is the next's.
    assert {s.beat_identity for s in everything if s.received_at > stopped_at + 0.1} <= {
        second_leader,
        after_kill[0].beat_identity,
    }, beats.report()
    assert {s.beat_identity for s in everything if s.received_at > killed_at + 0.1} == {
        after_kill[0].beat_identity
    }, beats.report()
    # No run sent twice, across either handover.
    pairs = same_run_pairs(everything)
    assert not pairs, f"{pairs}\n{beats.report()}"
