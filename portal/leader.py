"""Lease-based leader election, so that periodic work runs on one instance at a time (seed 002).

The model is Kubernetes' ``Lease`` with client-go's loop: a named lease carries a holder identity, a
lease duration, acquire and renew times and a transitions counter. Contenders try to acquire it every
``retry_period``; the holder renews it and stops acting if it could not renew for ``renew_deadline``,
which is shorter than ``lease_duration``, so a leader that cannot reach the backend steps down before
anyone else may take the lease.

Two deliberate differences from client-go (see ../shared/INTEGRATIONS.md §6):

* Expiry is judged by the *backend's* clock (PostgreSQL/SQLite ``now``, Redis ``TIME``), never by the
  contenders' wall clocks, so clock skew between machines cannot make two leaders.
* ``lease_transitions`` is incremented on every change of holder and handed to the leader as a fencing
  token; singleton work passes it to :meth:`LeaseBackend.holds` (or compares it in its own
  transaction) before acting, so a paused ex-leader that wakes up late is refused.

Backends: :class:`DatabaseLeaseBackend` (the default; ``SELECT ... FOR UPDATE`` on PostgreSQL, an
``IMMEDIATE`` transaction on SQLite) and :class:`RedisLeaseBackend` (one Lua script per operation),
chosen by ``settings.LEADER_ELECTION["BACKEND"]``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, connections, transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseRecord:
    """A lease as the backend saw it, with the backend's own ``now`` at that moment."""

    name: str
    holder_identity: str
    lease_duration_seconds: float
    acquire_time: datetime | None
    renew_time: datetime | None
    lease_transitions: int
    observed_at: datetime

    @property
    def expires_at(self) -> datetime | None:
        if self.renew_time is None:
            return None
        return self.renew_time + timedelta(seconds=self.lease_duration_seconds)

    def is_held_by_other(self, identity: str) -> bool:
        """True while someone else holds the lease and it has not expired on the backend's clock."""
        expires_at = self.expires_at
        return bool(
            self.holder_identity
            and self.holder_identity != identity
            and expires_at is not None
            and self.observed_at < expires_at
        )


@dataclass(frozen=True)
class AcquireResult:
    acquired: bool
    record: LeaseRecord


def record_holds(record: LeaseRecord | None, identity: str, fencing_token: int) -> bool:
    """The fencing check: ``identity`` still holds the unexpired lease of term ``fencing_token``."""
    return bool(
        record
        and record.holder_identity == identity
        and record.lease_transitions == fencing_token
        and record.expires_at is not None
        and record.observed_at < record.expires_at
    )


class LeaseBackend(Protocol):
    """Where leases live. Every method is atomic against concurrent contenders."""

    def try_acquire_or_renew(self, name: str, identity: str, duration: float) -> AcquireResult: ...

    def release(self, name: str, identity: str) -> bool: ...

    def get(self, name: str) -> LeaseRecord | None: ...

    def holds(self, name: str, identity: str, fencing_token: int) -> bool: ...

    def records(self) -> list[LeaseRecord]: ...


def _decide(current: LeaseRecord, identity: str, duration: float) -> AcquireResult:
    """The one acquisition rule both backends apply (Redis in Lua, mirrored in its script)."""
    if current.is_held_by_other(identity):
        return AcquireResult(False, current)
    now = current.observed_at
    if current.holder_identity != identity:
        current = replace(
            current,
            holder_identity=identity,
            acquire_time=now,
            lease_transitions=current.lease_transitions + 1,
        )
    return AcquireResult(True, replace(current, renew_time=now, lease_duration_seconds=duration))


def database_now(using: str = "default") -> datetime:
    """The database server's current time (not the transaction's start), timezone-aware UTC."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0].astimezone(UTC)
        if connection.vendor == "sqlite":
            cursor.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
            return datetime.fromisoformat(cursor.fetchone()[0]).replace(tzinfo=UTC)
    # Other backends have no portable statement for it; the caller's clock is the fallback.
    return datetime.now(UTC)


class DatabaseLeaseBackend:
    """Leases as rows of :class:`portal.models.Lease`, judged by the database's clock.

    On PostgreSQL the row is locked with ``SELECT ... FOR UPDATE``; on SQLite ``FOR UPDATE`` does not
    exist, and the settings open every transaction ``IMMEDIATE``, which takes the database's write lock
    at ``BEGIN`` and so serialises contenders just as well.
    """

    def __init__(self, using: str = "default", clock: Callable[[], datetime] | None = None):
        self.using = using
        self._clock = clock or (lambda: database_now(self.using))

    def _record(self, lease, observed_at: datetime) -> LeaseRecord:
        return LeaseRecord(
            name=lease.name,
            holder_identity=lease.holder_identity,
            lease_duration_seconds=lease.lease_duration_seconds,
            acquire_time=lease.acquire_time,
            renew_time=lease.renew_time,
            lease_transitions=lease.lease_transitions,
            observed_at=observed_at,
        )

    def _locked(self, name: str):
        from portal.models import Lease

        return Lease.objects.using(self.using).select_for_update().get(name=name)

    def _reconnect_if_broken(self) -> None:
        """Drop a connection that failed (server restart, failover, idle timeout) so the next
        query reconnects. Django does this per request; the elector's thread makes none, and
        would otherwise fail every renewal on the dead connection for the life of the process."""
        connection = connections[self.using]
        if connection.errors_occurred and not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()

    def _ensure_row(self, name: str) -> None:
        from portal.models import Lease

        if Lease.objects.using(self.using).filter(name=name).exists():
            return
        try:
            with transaction.atomic(using=self.using):
                Lease.objects.using(self.using).create(name=name)
        except IntegrityError:
            pass  # another contender created it first

    def try_acquire_or_renew(self, name: str, identity: str, duration: float) -> AcquireResult:
        self._reconnect_if_broken()
        self._ensure_row(name)
        with transaction.atomic(using=self.using):
            lease = self._locked(name)
            result = _decide(self._record(lease, self._clock()), identity, duration)
            if result.acquired:
                record = result.record
                lease.holder_identity = record.holder_identity
                lease.acquire_time = record.acquire_time
                lease.renew_time = record.renew_time
                lease.lease_duration_seconds = record.lease_duration_seconds
                lease.lease_transitions = record.lease_transitions
                lease.save()
            return result

    def release(self, name: str, identity: str) -> bool:
        from portal.models import Lease

        self._reconnect_if_broken()
        with transaction.atomic(using=self.using):
            try:
                lease = self._locked(name)
            except Lease.DoesNotExist:
                return False
            if lease.holder_identity != identity:
                return False
            # As client-go does on release: empty holder, so the next contender need not wait.
            lease.holder_identity = ""
            lease.renew_time = self._clock()
            lease.save(update_fields=["holder_identity", "renew_time"])
            return True

    def get(self, name: str) -> LeaseRecord | None:
        from portal.models import Lease

        self._reconnect_if_broken()
        lease = Lease.objects.using(self.using).filter(name=name).first()
        return self._record(lease, self._clock()) if lease else None

    def holds(self, name: str, identity: str, fencing_token: int) -> bool:
        return record_holds(self.get(name), identity, fencing_token)

    def records(self) -> list[LeaseRecord]:
        """Every lease, read in one query and judged by one reading of the clock (list pages)."""
        from portal.models import Lease

        observed_at = self._clock()
        leases = Lease.objects.using(self.using).order_by("name")
        return [self._record(lease, observed_at) for lease in leases]


# One script per operation keeps read-decide-write atomic inside Redis; TIME is Redis' clock.
_REDIS_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
_REDIS_ACQUIRE = (
    _REDIS_NOW
    + """
local holder = redis.call('HGET', KEYS[1], 'holder') or ''
local renew = tonumber(redis.call('HGET', KEYS[1], 'renew_ms') or '-1')
local duration = tonumber(redis.call('HGET', KEYS[1], 'duration_ms') or '0')
local acquire = tonumber(redis.call('HGET', KEYS[1], 'acquire_ms') or '-1')
local transitions = tonumber(redis.call('HGET', KEYS[1], 'transitions') or '0')
if holder ~= '' and holder ~= ARGV[1] and renew >= 0 and now < renew + duration then
  return {0, holder, duration, acquire, renew, transitions, now}
end
if holder ~= ARGV[1] then
  transitions = transitions + 1
  acquire = now
end
duration = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'renew_ms', now, 'duration_ms', duration,
           'acquire_ms', acquire, 'transitions', transitions)
return {1, ARGV[1], duration, acquire, now, transitions, now}
"""
)
_REDIS_RELEASE = (
    _REDIS_NOW
    + """
if (redis.call('HGET', KEYS[1], 'holder') or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'holder', '', 'renew_ms', now)
return 1
"""
)
_REDIS_GET = (
    _REDIS_NOW
    + """
local v = redis.call('HMGET', KEYS[1], 'holder', 'duration_ms', 'acquire_ms', 'renew_ms',
                     'transitions')
if not v[1] then return {0, '', 0, -1, -1, 0, now} end
return {1, v[1], tonumber(v[2]), tonumber(v[3]), tonumber(v[4]), tonumber(v[5]), now}
"""
)


def _from_ms(value: int) -> datetime | None:
    return None if value < 0 else datetime.fromtimestamp(value / 1000, UTC)


class RedisLeaseBackend:
    """Leases as Redis hashes ``<prefix><name>``, judged by the Redis server's clock.

    A single Redis primary is assumed: with asynchronous replication a failover can lose a renewal,
    which is why work still checks the fencing token (see the module docstring).
    """

    def __init__(self, url: str, prefix: str = "portal:lease:", socket_timeout: float = 2.0):
        import redis

        self.client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        self.prefix = prefix
        self._acquire = self.client.register_script(_REDIS_ACQUIRE)
        self._release = self.client.register_script(_REDIS_RELEASE)
        self._get = self.client.register_script(_REDIS_GET)

    def _record(self, name: str, reply: list) -> LeaseRecord:
        _, holder, duration_ms, acquire_ms, renew_ms, transitions, now_ms = reply
        holder = holder.decode() if isinstance(holder, bytes) else holder
        return LeaseRecord(
            name=name,
            holder_identity=holder,
            lease_duration_seconds=int(duration_ms) / 1000,
            acquire_time=_from_ms(int(acquire_ms)),
            renew_time=_from_ms(int(renew_ms)),
            lease_transitions=int(transitions),
            observed_at=_from_ms(int(now_ms)) or datetime.now(UTC),
        )

    def try_acquire_or_renew(self, name: str, identity: str, duration: float) -> AcquireResult:
        reply = self._acquire(keys=[self.prefix + name], args=[identity, int(duration * 1000)])
        return AcquireResult(bool(reply[0]), self._record(name, reply))

    def release(self, name: str, identity: str) -> bool:
        return bool(self._release(keys=[self.prefix + name], args=[identity]))

    def get(self, name: str) -> LeaseRecord | None:
        reply = self._get(keys=[self.prefix + name])
        return self._record(name, reply) if reply[0] else None

    def holds(self, name: str, identity: str, fencing_token: int) -> bool:
        return record_holds(self.get(name), identity, fencing_token)

    def records(self) -> list[LeaseRecord]:
        """Every lease, read in one round trip after the scan (list pages)."""
        keys = self.client.scan_iter(match=self.prefix + "*", count=100)
        names = sorted(key.decode()[len(self.prefix) :] for key in keys)
        pipeline = self.client.pipeline(transaction=False)
        for name in names:
            self._get(keys=[self.prefix + name], client=pipeline)
        replies = pipeline.execute()
        return [
            self._record(name, reply)
            for name, reply in zip(names, replies, strict=True)
            if reply[0]
        ]


@dataclass(frozen=True)
class ElectionConfig:
    """Timings in seconds, validated as client-go does (without its ``sys.exit``)."""

    lease_name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_name or not self.identity:
            raise ValueError("lease_name and identity are required")
        if self.retry_period <= 0:
            raise ValueError("retry_period must be positive")
        if not self.lease_duration > self.renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if not self.renew_deadline > 1.2 * self.retry_period:
            raise ValueError("renew_deadline must be greater than 1.2 x retry_period")


def default_identity(role: str = "portal") -> str:
    """Unique per process and readable by an operator: ``role@host:pid:random``."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderElector:
    """Runs the election loop in a daemon thread and tells the application when it leads.

    ``is_leader`` is safe to read from any thread and turns false by itself once ``renew_deadline``
    has passed since the start of the last successful renewal, even while the loop is stuck in a
    hung backend call. Callbacks run in the election thread and must return quickly;
    ``on_started_leading`` receives the fencing token. A callback comes after ``is_leader`` turned
    true, so work that another thread does once per term keys on ``fencing_token`` (as the beat
    scheduler does), not on a flag a callback sets.
    """

    def __init__(
        self,
        config: ElectionConfig,
        backend: LeaseBackend,
        on_started_leading: Callable[[int], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.backend = backend
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._leading = False
        self._deadline = 0.0
        self._token: int | None = None

    # --- status, readable from any thread ---------------------------------------------------
    @property
    def is_leader(self) -> bool:
        with self._lock:
            return self._leading and self._clock() < self._deadline

    @property
    def fencing_token(self) -> int | None:
        with self._lock:
            return self._token if self._leading and self._clock() < self._deadline else None

    # --- the loop ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, name=f"leader-{self.config.lease_name}", daemon=True
        )
        self._thread.start()

    def run(self) -> None:
        while not self._stop.is_set():
            delay = self.step()
            self._stop.wait(delay)

    def step(self) -> float:
        """One attempt to acquire or renew; returns how long to wait before the next one."""
        config = self.config
        attempt_started = self._clock()
        try:
            result: AcquireResult | None = self.backend.try_acquire_or_renew(
                config.lease_name, config.identity, config.lease_duration
            )
        except Exception:
            logger.warning("lease %s: backend unreachable", config.lease_name, exc_info=True)
            result = None

        started: int | None = None
        stopped = False
        with self._lock:
            if result is not None and result.acquired:
                token = result.record.lease_transitions
                # A term that lapsed (renewal hung past the deadline) ended, even if this renewal
                # succeeded: report its end before the new term's start, so callbacks pair up.
                if self._leading and (self._clock() >= self._deadline or token != self._token):
                    stopped = True
                if stopped or not self._leading:
                    started = token
                self._leading = True
                self._token = token
                self._deadline = attempt_started + config.renew_deadline
            elif self._leading and (
                self._clock() >= self._deadline
                or (result is not None and result.record.holder_identity != config.identity)
            ):
                self._leading = False
                self._token = None
                stopped = True
            leading = self._leading
        if stopped:
            logger.warning("lease %s: lost leadership", config.lease_name)
            self._notify(self.on_stopped_leading)
        if started is not None:
            logger.info(
                "lease %s: %s is leading (fencing token %s)",
                config.lease_name,
                config.identity,
                started,
            )
            self._notify(self.on_started_leading, started)
        if leading or result is None:
            return config.retry_period
        return self._wait_for_expiry(result.record)

    def _wait_for_expiry(self, record: LeaseRecord) -> float:
        """A standby retries right after the lease expires, measured on the backend's clock."""
        expires_at = record.expires_at
        if expires_at is None or not record.is_held_by_other(self.config.identity):
            return min(0.05, self.config.retry_period)
        remaining = (expires_at - record.observed_at).total_seconds() + 0.02
        return max(0.02, min(self.config.retry_period, remaining))

    def _notify(self, callback: Callable | None, *args) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            logger.exception("lease %s: leadership callback failed", self.config.lease_name)

    def stop(self, release: bool = True) -> None:
        """Stop the loop; a graceful stop releases the lease so a standby takes over at once."""
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.config.retry_period + 5)
        with self._lock:
            was_leading = self._leading
            self._leading = False
            self._token = None
        if release and was_leading:
            try:
                self.backend.release(self.config.lease_name, self.config.identity)
            except Exception:
                logger.warning("lease %s: release failed", self.config.lease_name, exc_info=True)
        if was_leading:
            self._notify(self.on_stopped_leading)


_redis_backends: dict[tuple[str, float], RedisLeaseBackend] = {}


def backend_from_settings() -> LeaseBackend:
    """The configured backend: Redis when ``REDIS_URL`` is set (unless overridden), else database."""
    kind = settings.LEADER_ELECTION["BACKEND"]
    if kind == "redis":
        # One client (and connection pool) per URL and process, not one per page view.
        key = (settings.REDIS_URL, settings.LEADER_ELECTION["RETRY_PERIOD"])
        if key not in _redis_backends:
            _redis_backends[key] = RedisLeaseBackend(key[0], socket_timeout=key[1])
        return _redis_backends[key]
    if kind == "database":
        return DatabaseLeaseBackend()
    raise ValueError(f"unknown LEADER_BACKEND {kind!r}: use 'database' or 'redis'")


def elector_from_settings(lease_name: str, role: str) -> LeaderElector:
    options = settings.LEADER_ELECTION
    config = ElectionConfig(
        lease_name=lease_name,
        identity=default_identity(role),
        lease_duration=options["LEASE_DURATION"],
        renew_deadline=options["RENEW_DEADLINE"],
        retry_period=options["RETRY_PERIOD"],
    )
    return LeaderElector(config, backend_from_settings())
