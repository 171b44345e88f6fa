"""The SLA sweep at scale: 100,000 and 1,000,000 SLA records, 10,000 of them due, on PostgreSQL.

Prints the sweep's time (claiming every due record and handing them to the worker) at both sizes
and their ratio. Goals (issue 9): under 1 s at 1,000,000 records, and 10x the records costing at
most 1.5x the time. The rows are made with ``generate_series`` in a database of its own
(``portal_bench`` on the server of ``BENCH_DATABASE_URL``, default the local PostgreSQL), which
the script creates and drops.

    .venv/bin/python bench/sla_bench.py [--small 100000] [--large 1000000] [--due 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pgbench_db import drop_database, recreate_database, setup_django  # noqa: E402

BENCH_DB = "portal_bench"


def fill(total: int, due: int) -> None:
    """``total`` open escalations with active SLA records; ``due`` of them past the deadline."""
    from django.db import connection

    from escalation.models import Escalation, SlaRecord

    escalations = connection.ops.quote_name(Escalation._meta.db_table)
    records = connection.ops.quote_name(SlaRecord._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {records}, {escalations} RESTART IDENTITY CASCADE")
        cursor.execute(
            f"""INSERT INTO {escalations} (repository, fingerprint, signature, failure_type,
                status, priority, routing, occurrences, first_seen_at, last_seen_at, resolution,
                tracker, tracker_id, tracker_key, tracker_url)
            SELECT 'acme/repo-' || (n %% 500), md5(n::text), '', 'test_failure', 'open', 'MEDIUM',
                '{{}}'::jsonb, 1, now(), now(), '', 'none', '', '', ''
            FROM generate_series(1, %s) AS n""",
            [total],
        )
        # Deadlines: the first `due` an hour ago, the rest spread over the next 30 days.
        cursor.execute(
            f"""INSERT INTO {records} (escalation_id, failure_type, assigned_teams, started_at,
                deadline, status, created_at)
            SELECT id, 'test_failure', '[]'::jsonb, now(),
                CASE WHEN id <= %s THEN now() - interval '1 hour'
                     ELSE now() + (id %% 43200) * interval '1 minute' + interval '1 minute' END,
                'active', now()
            FROM {escalations}""",
            [due],
        )
        cursor.execute(f"ANALYZE {escalations}")
        cursor.execute(f"ANALYZE {records}")


def reset_due(due: int) -> None:
    from django.db import connection

    from escalation.models import SlaRecord

    records = connection.ops.quote_name(SlaRecord._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {records} SET status = 'active', exceeded_at = NULL WHERE id <= %s", [due]
        )


def time_sweep(due: int, rounds: int) -> list[float]:
    from escalation.services import sla

    times = []
    for _ in range(rounds):
        reset_due(due)
        handed: list[int] = []
        started = time.perf_counter()
        claimed = sla.sweep_due_slas(dispatch=handed.extend)
        times.append(time.perf_counter() - started)
        assert claimed == due == len(set(handed)), (claimed, due, len(handed))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    recreate_database(BENCH_DB)
    try:
        setup_django(BENCH_DB)
        results = {}
        for total in (args.small, args.large):
            started = time.perf_counter()
            fill(total, args.due)
            print(
                f"{total:>9,} records ({args.due:,} due) made in {time.perf_counter() - started:.1f} s"
            )
            times = time_sweep(args.due, args.rounds)
            results[total] = statistics.median(times)
            print(f"{total:>9,} records: sweep median {results[total] * 1000:.0f} ms "
                  f"(rounds: {', '.join(f'{t * 1000:.0f}' for t in times)} ms)")  # fmt: skip
        ratio = results[args.large] / results[args.small]
        print(f"sweep at {args.large:,} records: {results[args.large]:.3f} s (goal < 1 s)")
        print(f"time ratio {args.large:,} / {args.small:,} records: {ratio:.2f} (goal <= 1.5)")
    finally:
        drop_database(BENCH_DB)


if __name__ == "__main__":
    main()
