"""Two real ``celery beat`` processes with the LeaderScheduler, on PostgreSQL and Redis.

No worker runs: the test reads the messages the beats put on the broker (the Redis list of the default
queue) and looks at their headers, which say which beat sent them and under which fencing token. The
beats use the pytest-django test database (for django-celery-beat's schedule) and Redis DB 14 as
broker and lease store, flushed before and after.
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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings

from tests.portal.conftest import REPO_ROOT, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

BEAT_DB = 14
LEASE_DURATION = 2.0
RENEW_DEADLINE = 1.2
RETRY_PERIOD = 0.3
TASK = "portal.record_heartbeat"
QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE
# Two sends of one every-second entry closer than this are the same tick dispatched twice.
SAME_TICK = 0.5


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

    def sent_between(self, start: float, end: float = float("inf")) -> list[SentTask]:
        with self._lock:
            return [sent for sent in self.sent if start <= sent.received_at < end]


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
def every_second_heartbeat(transactional_db):
    """The only enabled periodic task: the heartbeat, every second (the migration's 30 s one and
    anything else is disabled)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    PeriodicTask.objects.update(enabled=False)
    interval = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(name="heartbeat every second", task=TASK, interval=interval)


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
def beats(tmp_path, child_database_url, broker, every_second_heartbeat):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": child_database_url,
        "REDIS_URL": broker.url,
        "CELERY_BROKER_URL": broker.url,
        "LEADER_LEASE_DURATION": str(LEASE_DURATION),
        "LEADER_RENEW_DEADLINE": str(RENEW_DEADLINE),
        "LEADER_RETRY_PERIOD": str(RETRY_PERIOD),
    }
    env.pop("LEADER_BACKEND", None)  # Redis, since REDIS_URL is set
    beats = Beats(tmp_path, env)
    try:
        yield beats
    finally:  # before transactional_db flushes the tables they read
        beats.stop_all()


def same_tick_pairs(sent: list[SentTask]) -> list[tuple[SentTask, SentTask]]:
    ordered = sorted(sent, key=lambda s: s.received_at)
    return [
        (first, second)
        for first, second in itertools.pairwise(ordered)
        if second.received_at - first.received_at < SAME_TICK
    ]


def test_two_beats_send_each_tick_once_and_the_standby_takes_over_when_the_leader_is_killed(
    beats, broker
):
    beats.start("beat-1")
    beats.start("beat-2")

    assert wait_for(lambda: broker.sent_between(0), 30, 0.05), (
        f"no beat sent the heartbeat within 30 s\n{beats.report()}"
    )
    steady_start = broker.sent_between(0)[0].received_at
    time.sleep(6.0)
    steady = broker.sent_between(steady_start, steady_start + 6.0)
    # One per second over 6 s, give or take the window's edges; two beats would make about 12.
    assert 4 <= len(steady) <= 8, f"{len(steady)} heartbeats in 6 s\n{beats.report()}"
    before_kill = broker.sent_between(0)
    senders = {sent.beat_identity for sent in before_kill}
    assert len(senders) == 1, f"heartbeats from {senders}\n{beats.report()}"
    assert not same_tick_pairs(before_kill), f"{same_tick_pairs(before_kill)}\n{beats.report()}"

    # An operator edits the schedule in the admin while the standby waits: what every save of a
    # periodic task does. The standby must not take that for a change made after it takes over.
    from django_celery_beat.models import PeriodicTasks

    PeriodicTasks.update_changed()
    time.sleep(1.5)

    leader_identity = broker.sent_between(0)[-1].beat_identity
    leader = beats.by_pid(broker.sent_between(0)[-1].beat_pid)
    leader.process.send_signal(signal.SIGKILL)
    leader.process.wait(10)
    killed_at = time.monotonic()

    def sent_by_the_standby() -> list[SentTask]:
        return [s for s in broker.sent_between(killed_at) if s.beat_identity != leader_identity]

    # The lease runs out within LEASE_DURATION of the kill; the standby notices within
    # RETRY_PERIOD and its next tick (at most RETRY_PERIOD later) sends the overdue heartbeat.
    bound = LEASE_DURATION + 2 * RETRY_PERIOD + 2.0
    assert wait_for(sent_by_the_standby, bound, 0.05), (
        f"no heartbeat within {bound} s of killing {leader.name}\n{beats.report()}"
    )
    takeover = sent_by_the_standby()[0]
    time.sleep(4.0)
    beats.stop_all()

    last_of_the_killed = [s for s in broker.sent_between(0) if s.beat_identity == leader_identity][
        -1
    ]
    assert takeover.fencing_token > last_of_the_killed.fencing_token, beats.report()
    # Whatever the killed beat published just before dying may be popped a little later.
    after_kill = broker.sent_between(killed_at + 0.1)
    assert {s.beat_identity for s in after_kill} == {takeover.beat_identity}, beats.report()
    assert {s.fencing_token for s in after_kill} == {takeover.fencing_token}, beats.report()
    # One a second from the takeover on. The new leader starts from the last_run_at the killed
    # one stored; if it died between publishing a tick and storing its last_run_at, the new
    # leader's first (overdue) send repeats that tick: one boundary tick, which the design accepts
    # at a crash (tasks are idempotent by construction), hence the + 1.
    new_leader_window = broker.sent_between(takeover.received_at, takeover.received_at + 4.0)
    assert 3 <= len(new_leader_window) <= 4 + 1, (
        f"{len(new_leader_window)} heartbeats in the new leader's first 4 s\n{beats.report()}"
    )
    # No tick sent twice: two sends of this every-second entry closer than SAME_TICK. The boundary
    # tick above cannot show up as such a pair, since the new leader sends only after the lease
    # (longer than the interval) expired; a pair straddling the handover is the new leader sending
    # the same overdue tick twice, any other pair is two beats (or one beat twice) dispatching.
    pairs = same_tick_pairs(broker.sent_between(0))
    assert not pairs, f"{pairs}\n{beats.report()}"
