"""A leader-election contender in an OS process of its own, for the multi-process tests.

Run as::

    python tests/portal/leader_contender.py --backend redis|database --identity X --out FILE

It runs a real :class:`portal.leader.LeaderElector` and, while ``is_leader`` is true, appends
``{"t": time.monotonic(), "identity": X, "leading": true, "token": N}`` to FILE every 20 ms, N being
its fencing token. One line with
``"leading": false`` is written when the elector has started, so a test knows the process is up.
``time.monotonic`` is CLOCK_MONOTONIC, one clock for every process on a Linux machine, so the files
of several contenders can be laid on one timeline. SIGTERM stops the elector and releases the lease;
SIGKILL is how a test makes it crash.

The tests read the files back with :func:`read_ticks` and :func:`acting_intervals`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TICK = 0.02
# Ticks further apart than this belong to two separate periods of acting.
MAX_GAP = 0.1


@dataclass(frozen=True)
class Interval:
    identity: str
    start: float
    end: float

    def overlaps(self, other: Interval) -> bool:
        return self.start <= other.end and other.start <= self.end


def read_ticks(path: Path) -> list[dict]:
    if not path.exists():
        return []
    ticks = []
    for line in path.read_text().splitlines():
        try:
            ticks.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written as we read
    return ticks


def acting_intervals(ticks: list[dict], max_gap: float = MAX_GAP) -> list[Interval]:
    """Runs of consecutive leading ticks of one identity, split where ticks are ``max_gap`` apart."""
    intervals: list[Interval] = []
    for tick in sorted(ticks, key=lambda tick: tick["t"]):
        last = intervals[-1] if intervals else None
        if last and last.identity == tick["identity"] and tick["t"] - last.end < max_gap:
            intervals[-1] = Interval(last.identity, last.start, tick["t"])
        else:
            intervals.append(Interval(tick["identity"], tick["t"], tick["t"]))
    return intervals


def overlapping_intervals(intervals: list[Interval]) -> list[tuple[Interval, Interval]]:
    """Pairs of intervals of different identities that share a moment."""
    return [
        (first, second)
        for index, first in enumerate(intervals)
        for second in intervals[index + 1 :]
        if first.identity != second.identity and first.overlaps(second)
    ]


def _backend(args: argparse.Namespace):
    from portal.leader import DatabaseLeaseBackend, RedisLeaseBackend

    if args.backend == "redis":
        return RedisLeaseBackend(args.redis_url, prefix=args.redis_prefix, socket_timeout=1.0)
    return DatabaseLeaseBackend()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["redis", "database"], required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lease-name", default="contender-test")
    parser.add_argument("--lease-duration", type=float, default=1.0)
    parser.add_argument("--renew-deadline", type=float, default=0.6)
    parser.add_argument("--retry-period", type=float, default=0.1)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--redis-prefix", default="test:contender:")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from portal.leader import ElectionConfig, LeaderElector

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())

    elector = LeaderElector(
        ElectionConfig(
            lease_name=args.lease_name,
            identity=args.identity,
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
        ),
        _backend(args),
    )
    with args.out.open("a", buffering=1) as out:

        def write(token: int | None) -> None:
            line = {
                "t": time.monotonic(),
                "identity": args.identity,
                "leading": token is not None,
                "token": token,
            }
            out.write(json.dumps(line) + "\n")

        elector.start()
        write(None)
        while not stopping.is_set():
            # fencing_token is None exactly when is_leader is false, read under one lock.
            if (token := elector.fencing_token) is not None:
                write(token)
            stopping.wait(TICK)
        # Acting has stopped (no more ticks) before the lease is handed over.
        elector.stop(release=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
