"""CI failure ingest on PostgreSQL: failures with 1 MB logs through ``POST /api/v1/ci/failures``,
next to a bare DRF endpoint that receives the same body and inserts one row, in the same run.

Both go through the same Django stack in this process (token authentication, the JSON parser and
the edge checks, the test client), so the ratio shows what classification, grouping, routing and
the outbox cost on top of receiving the request. Goal (issue 9): at least 0.5. Rounds alternate
between the two so that a noisy machine slows both alike.

    .venv/bin/python bench/ingest_bench.py [--count 200] [--log-bytes 1048576]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pgbench_db import drop_database, recreate_database, setup_django  # noqa: E402

BENCH_DB = "portal_ingest_bench"

NOISE = [
    "2026-11-30T10:{m:02d}:{s:02d}.1234567Z   Downloading wheel {n}/120: https://files/pkg-{n}.whl",
    "2026-11-30T10:{m:02d}:{s:02d}.1234567Z tests/test_module_{n}.py::test_case_{n} PASSED [ {p}%]",
    "2026-11-30T10:{m:02d}:{s:02d}.1234567Z ##[debug]Evaluating condition for step: 'Run tests {n}'",
    "2026-11-30T10:{m:02d}:{s:02d}.1234567Z   Compiling crate_{n} v0.{n}.0 (/home/runner/work/x/y)",
]
FAILURES = [
    "FAILED tests/test_export.py::test_export_retries - AssertionError: assert 3 == 2",
    "FAILED tests/test_import.py::test_import_csv - KeyError: 'column'",
    "--- FAIL: TestLeaseRenewal (0.42s)",
    "npm ERR! code ERESOLVE",
    "psycopg2.OperationalError: could not connect to server: Connection refused",
]


def make_log(size: int, rng: random.Random) -> str:
    lines: list[str] = []
    total = 0
    n = 0
    while total < size:
        n += 1
        line = rng.choice(NOISE).format(m=n // 60 % 60, s=n % 60, n=n % 997, p=n % 100)
        lines.append(line)
        total += len(line) + 1
    lines.insert(len(lines) * 9 // 10, "2026-11-30T10:59:59.1234567Z " + rng.choice(FAILURES))
    return "\n".join(lines)


def setup_portal() -> None:
    # Linear and Slack look configured; nothing is sent (no worker runs), the outbox only queues.
    setup_django(
        BENCH_DB,
        DJANGO_DEBUG="0",
        PORTAL_LOG_LEVEL="WARNING",
        LINEAR_API_URL=os.environ.get("LINEAR_API_URL", "http://127.0.0.1:9/graphql"),
        SLACK_WEBHOOK_URL=os.environ.get("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/slack"),
    )
    from django.conf import settings

    settings.ROOT_URLCONF = "bench.ingest_bench_urls"
    settings.ALLOWED_HOSTS = ["*"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}


def run(count: int, log_bytes: int, rounds: int) -> None:
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from escalation.models import FailureEvent
    from itsm import outbox

    outbox.set_dispatcher(lambda message_id, token: None)  # no broker: the sweep would deliver
    user = User.objects.create_user("bench-bot")
    user.groups.add(Group.objects.get(name="operators"))
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    rng = random.Random(7)
    logs = [make_log(log_bytes, rng) for _ in range(8)]

    def body(n: int) -> str:
        return json.dumps(
            {
                "repository": f"acme/repo-{n % 5}",
                "job": "unit-tests",
                "run_id": str(100_000 + n),
                "run_attempt": 1,
                "exit_code": 1,
                "commit": f"{n:040x}",
                "log": logs[n % len(logs)],
            }
        )

    bodies = [body(n) for n in range(count * rounds)]
    print(f"{count} failures a round, logs of {len(logs[0]):,} bytes, {rounds} rounds")

    def timed(path: str, start: int, expected: int) -> float:
        started = time.perf_counter()
        for n in range(start, start + count):
            response = client.generic("POST", path, bodies[n], content_type="application/json")
            assert response.status_code == expected, (response.status_code, response.content[:300])
        return count / (time.perf_counter() - started)

    api_rates, bare_rates = [], []
    for index in range(rounds):
        start = index * count
        bare_rates.append(timed("/bench/bare", start, 201))
        api_rates.append(timed("/api/v1/ci/failures", start, 201))
        print(
            f"round {index + 1}: API {api_rates[-1]:.1f} failures/s, "
            f"bare DRF insert {bare_rates[-1]:.1f}/s"
        )
    api, bare = statistics.median(api_rates), statistics.median(bare_rates)
    print(f"API ingest: {api:.1f} failures/s; bare DRF endpoint: {bare:.1f} requests/s")
    print(f"ratio: {api / bare:.2f} (goal >= 0.5)")
    assert FailureEvent.objects.count() == count * rounds
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--log-bytes", type=int, default=1 << 20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    recreate_database(BENCH_DB)
    try:
        setup_portal()
        run(args.count, args.log_bytes, args.rounds)
    finally:
        drop_database(BENCH_DB)


if __name__ == "__main__":
    main()
