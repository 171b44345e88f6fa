"""Fixtures for the leader-election tests: isolated leases, observed electors, contender processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from portal.leader import (
    AcquireResult,
    DatabaseLeaseBackend,
    ElectionConfig,
    LeaderElector,
    LeaseBackend,
    LeaseRecord,
    RedisLeaseBackend,
)
from tests.portal.leader_contender import Interval, acting_intervals, read_ticks

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTENDER_SCRIPT = Path(__file__).with_name("leader_contender.py")

# Short timings keep every test in seconds while keeping client-go's ordering of the three.
LEASE_DURATION = 1.0
RENEW_DEADLINE = 0.6
RETRY_PERIOD = 0.1


@pytest.fixture
def lease_name() -> str:
    """A lease no other test (or other run sharing the database or Redis) contends for."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_backend() -> Iterator[RedisLeaseBackend]:
    """A Redis backend under a prefix of its own; its keys are deleted afterwards."""
    backend = RedisLeaseBackend(settings.REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")
    yield backend
    keys = list(backend.client.scan_iter(match=f"{backend.prefix}*"))
    if keys:
        backend.client.delete(*keys)
    backend.client.close()


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
def lease_backend(request) -> LeaseBackend:
    """Each lease backend in turn, on its real clock: the database's (SQLite, or PostgreSQL when
    ``DATABASE_URL`` says so) and, when ``REDIS_URL`` is set, Redis'.

    A test that runs electors in threads (each on a connection of its own) also asks for
    ``transactional_db``, which pytest-django then uses instead of ``db``.
    """
    if request.param == "redis":
        return request.getfixturevalue("redis_backend")
    request.getfixturevalue("db")
    return DatabaseLeaseBackend()


@pytest.fixture
def child_database_url(transactional_db) -> str:
    """A ``DATABASE_URL`` for child processes: the pytest-django test database, whose rows the
    test commits (``transactional_db``) and pytest-django flushes afterwards."""
    database = connections["default"].settings_dict
    # Never hand children the development database, whatever happened to the settings.
    assert database["NAME"].startswith("test_"), database["NAME"]
    assert database["ENGINE"] == "django.db.backends.postgresql", database["ENGINE"]
    password = f":{database['PASSWORD']}" if database["PASSWORD"] else ""
    return (
        f"postgres://{database['USER']}{password}@{database['HOST']}:{database['PORT'] or 5432}"
        f"/{database['NAME']}"
    )


# --- electors in threads ----------------------------------------------------------------------


@dataclass(frozen=True)
class BackendCall:
    identity: str
    started: float
    finished: float
    acquired: bool


class ObservedBackend:
    """Delegates to a real backend and notes when each acquire-or-renew started and finished.

    With :meth:`partition` it also injects a network fault: calls made for that identity raise
    ``ConnectionError`` as a real client would when the backend is unreachable.
    """

    def __init__(self, backend: LeaseBackend):
        self.backend = backend
        self.calls: list[BackendCall] = []
        self._partitioned: set[str] = set()
        self._lock = threading.Lock()

    def partition(self, identity: str) -> None:
        with self._lock:
            self._partitioned.add(identity)

    def _check_reachable(self, identity: str) -> None:
        with self._lock:
            if identity in self._partitioned:
                raise ConnectionError(f"{identity} is partitioned from the lease backend")

    def try_acquire_or_renew(self, name: str, identity: str, duration: float) -> AcquireResult:
        started = time.monotonic()
        self._check_reachable(identity)
        result = self.backend.try_acquire_or_renew(name, identity, duration)
        with self._lock:
            self.calls.append(BackendCall(identity, started, time.monotonic(), result.acquired))
        return result

    def release(self, name: str, identity: str) -> bool:
        self._check_reachable(identity)
        return self.backend.release(name, identity)

    def get(self, name: str) -> LeaseRecord | None:
        return self.backend.get(name)

    def holds(self, name: str, identity: str, fencing_token: int) -> bool:
        self._check_reachable(identity)
        return self.backend.holds(name, identity, fencing_token)

    def __getattr__(self, name: str):
        # The rest of the LeaseBackend protocol (listing leases, ...) passes straight through.
        return getattr(self.backend, name)

    def successful_calls(self, identity: str) -> list[BackendCall]:
        with self._lock:
            return [call for call in self.calls if call.identity == identity and call.acquired]

    def refused_calls(self, identity: str) -> list[BackendCall]:
        with self._lock:
            return [call for call in self.calls if call.identity == identity and not call.acquired]


class ThreadElector(LeaderElector):
    """The real elector; its loop closes the thread's database connections when it ends."""

    def run(self) -> None:
        try:
            super().run()
        finally:
            connections.close_all()


class LeadershipRecorder:
    """Polls ``elector.is_leader`` every 10 ms from a side thread and keeps what it saw.

    ``intervals`` are [first poll that saw True, last poll that saw True]; ``stopped_at`` holds the
    first poll that saw False after each interval (an upper bound of when leadership ended).
    """

    POLL = 0.01

    def __init__(self, elector: LeaderElector):
        self.elector = elector
        self.identity = elector.config.identity
        self.intervals: list[Interval] = []
        self.stopped_at: list[float] = []
        self._current_start: float | None = None
        self._last_true = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            leading = self.elector.is_leader
            with self._lock:
                if leading:
                    if self._current_start is None:
                        self._current_start = now
                    self._last_true = now
                elif self._current_start is not None:
                    self.intervals.append(
                        Interval(self.identity, self._current_start, self._last_true)
                    )
                    self.stopped_at.append(now)
                    self._current_start = None
            self._stop.wait(self.POLL)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            if self._current_start is not None:
                self.intervals.append(Interval(self.identity, self._current_start, self._last_true))
                self._current_start = None

    @property
    def first_leading_at(self) -> float | None:
        with self._lock:
            starts = [interval.start for interval in self.intervals]
            if self._current_start is not None:
                starts.append(self._current_start)
        return min(starts, default=None)

    def leading_since(self, moment: float) -> float | None:
        """When this contender was first seen leading at or after ``moment``."""
        with self._lock:
            starts = [interval.start for interval in self.intervals if interval.start >= moment]
            if self._current_start is not None and self._current_start >= moment:
                starts.append(self._current_start)
        return min(starts, default=None)


@dataclass
class Contender:
    elector: ThreadElector
    recorder: LeadershipRecorder
    started_leading: list[int] = field(default_factory=list)
    stopped_leading: list[float] = field(default_factory=list)

    @property
    def identity(self) -> str:
        return self.elector.config.identity

    def start(self) -> None:
        self.recorder.start()
        self.elector.start()


@pytest.fixture
def start_contender(lease_name) -> Iterator[Callable[..., Contender]]:
    """Starts a real elector thread (plus its recorder) on ``backend``; all are stopped afterwards."""
    contenders: list[Contender] = []

    def start(identity: str, backend: LeaseBackend) -> Contender:
        config = ElectionConfig(
            lease_name=lease_name,
            identity=identity,
            lease_duration=LEASE_DURATION,
            renew_deadline=RENEW_DEADLINE,
            retry_period=RETRY_PERIOD,
        )
        started: list[int] = []
        stopped: list[float] = []
        elector = ThreadElector(
            config,
            backend,
            on_started_leading=started.append,
            on_stopped_leading=lambda: stopped.append(time.monotonic()),
        )
        contender = Contender(elector, LeadershipRecorder(elector), started, stopped)
        contenders.append(contender)
        contender.start()
        return contender

    yield start
    for contender in contenders:
        contender.elector.stop(release=False)
        contender.recorder.stop()
    connections.close_all()


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.01) -> object:
    """Polls ``predicate`` until it returns something truthy, or returns that falsy value at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --- contenders in OS processes ---------------------------------------------------------------


@dataclass
class ContenderProcess:
    identity: str
    process: subprocess.Popen
    out: Path
    stderr: Path

    def ticks(self) -> list[dict]:
        return read_ticks(self.out)

    def leading_ticks(self) -> list[dict]:
        return [tick for tick in self.ticks() if tick["leading"]]

    def stderr_text(self) -> str:
        return self.stderr.read_text(errors="replace") if self.stderr.exists() else ""


class ContenderProcesses:
    """Contender processes of one test, with what a failure message needs to explain itself."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.contenders: list[ContenderProcess] = []

    def start(self, identity: str, args: list[str], env: dict[str, str]) -> ContenderProcess:
        out = self.directory / f"{identity}.jsonl"
        stderr = self.directory / f"{identity}.stderr"
        command = [
            sys.executable,
            str(CONTENDER_SCRIPT),
            "--identity",
            identity,
            "--out",
            str(out),
            "--lease-duration",
            str(LEASE_DURATION),
            "--renew-deadline",
            str(RENEW_DEADLINE),
            "--retry-period",
            str(RETRY_PERIOD),
            *args,
        ]
        with stderr.open("wb") as stderr_file:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
                stdout=subprocess.DEVNULL,
                stderr=stderr_file,
            )
        contender = ContenderProcess(identity, process, out, stderr)
        self.contenders.append(contender)
        return contender

    def leaders_since(self, moment: float) -> list[ContenderProcess]:
        return [
            contender
            for contender in self.contenders
            if any(tick["t"] >= moment for tick in contender.leading_ticks())
        ]

    def intervals(self) -> list[Interval]:
        return [
            interval
            for contender in self.contenders
            for interval in acting_intervals(contender.leading_ticks())
        ]

    def report(self) -> str:
        lines = []
        for contender in self.contenders:
            lines.append(
                f"--- {contender.identity} (pid {contender.process.pid}, "
                f"exit {contender.process.poll()}): intervals "
                f"{acting_intervals(contender.leading_ticks())}"
            )
            lines.append(contender.stderr_text()[-3000:])
        return "\n".join(lines)

    def terminate(self, contender: ContenderProcess, timeout: float = 10) -> int | None:
        contender.process.send_signal(signal.SIGTERM)
        try:
            return contender.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_all(self) -> None:
        for contender in self.contenders:
            if contender.process.poll() is None:
                contender.process.kill()
                contender.process.wait(10)


@pytest.fixture
def contender_processes(tmp_path) -> Iterator[ContenderProcesses]:
    processes = ContenderProcesses(tmp_path)
    yield processes
    processes.kill_all()
