"""ITSM client benchmark (issue #4): the Jira client against a bare httpx loop, in one run.

Creates N Jira issues (default 1,000) through ``JiraClient.create_ticket`` against the bundled
fake Jira over loopback (a separate process, so the fake does not share our GIL), and posts the
same REST payloads with a bare ``httpx.Client`` loop. The two are interleaved in rounds so that
machine noise hits both alike; the figure is the ratio of their throughputs (goal: at least 0.8).
The client's extra work per ticket is validation, redaction of the payload, the retry wrapper,
attempt logging and metrics.

Then the same client creates N more issues while the fake fails 10 % of the creates (5 % 503, of
which half after the issue was made — the ambiguous case — and 5 % 429 with ``Retry-After: 1``),
on several threads, and the script checks that every ticket exists exactly once.

    .venv/bin/python bench/itsm_bench.py [--tickets 1000] [--rounds 5] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import logging  # noqa: E402

import django  # noqa: E402

django.setup()
# Each injected fault logs a retry warning; the figures are what this script prints.
logging.getLogger("itsm").setLevel(logging.ERROR)

from itsm.clients.jira import JiraClient  # noqa: E402
from itsm.config import Endpoint, parse_config  # noqa: E402
from itsm.fakes.adf_schema import ensure_adf_schema  # noqa: E402

EMAIL, TOKEN = "bench@example.com", "bench-token"


def start_fakes() -> tuple[subprocess.Popen, str]:
    command = [
        sys.executable, "-m", "itsm.fakes", "--host", "127.0.0.1", "--port", "0",
        "--adf-schema", str(ensure_adf_schema()),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)  # noqa: S603
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise SystemExit(f"fakes did not start: {line!r}")
    return process, line.rsplit(" ", 1)[-1].strip()


def ticket(i: int, run: str) -> dict:
    return {
        "project": "OPS",
        "summary": f"RCA Required: nightly-build-{run}-{i}",
        "description": (
            f"Job ID: {run}-{i}\nSeverity: high\n\n"
            "The integration stage failed twice on the same runner.\n"
            "Log tail:\n  FAILED tests/test_api.py::test_export - AssertionError\n"
            "  password=hunter2 should never leave the portal"
        ),
        "issue_type": "Task",
        "fields": {"priority": "2", "labels": ["ci-failure"]},
        "key": f"bench-{run}-{i}",
    }


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[94] if len(samples) > 1 else samples[0]


def run_client(client: JiraClient, tickets: list[dict]) -> list[float]:
    latencies = []
    for t in tickets:
        started = time.perf_counter()
        client.create_ticket(
            t["project"], t["summary"], t["description"], t["issue_type"], t["fields"],
            idempotency_key=t["key"],
        )  # fmt: skip
        latencies.append(time.perf_counter() - started)
    return latencies


def run_bare(http: httpx.Client, bodies: list[dict]) -> list[float]:
    latencies = []
    for body in bodies:
        started = time.perf_counter()
        response = http.post("/rest/api/3/issue", json=body)
        if response.status_code != 201:
            raise SystemExit(f"bare loop: {response.status_code} {response.text[:200]}")
        latencies.append(time.perf_counter() - started)
    return latencies


def control(base: str, path: str, **body) -> dict:
    return httpx.post(f"{base}/_fake/{path}", json=body, timeout=10).json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    process, base = start_fakes()
    try:
        config = parse_config(
            {
                "retry_policy": {"retry_delay_seconds": 0.05, "max_retries": 5},
                "reconcile": {"window_seconds": 3, "poll_interval_seconds": 0.1},
            },
            environ={},
        )
        endpoint = Endpoint("jira", f"{base}/jira", EMAIL, TOKEN, "OPS")
        client = JiraClient(endpoint, config=config)
        bare = httpx.Client(base_url=f"{base}/jira", auth=(EMAIL, TOKEN), timeout=30)

        # Same payloads both ways: the bare loop posts what the client would build.
        client_tickets = [ticket(i, "c") for i in range(args.tickets)]
        bare_bodies = []
        for t in (ticket(i, "b") for i in range(args.tickets)):
            fields = client.issue_fields(
                t["project"], t["summary"], t["description"], t["issue_type"], t["fields"],
                t["key"],
            )  # fmt: skip
            bare_bodies.append({"fields": fields})

        # Warm up connections and code paths on both sides.
        run_client(client, [ticket(i, "warm") for i in range(20)])
        run_bare(bare, [{"fields": client.issue_fields("OPS", "warm", "w", "Task")}] * 20)

        size = max(args.tickets // args.rounds, 1)
        client_lat: list[float] = []
        bare_lat: list[float] = []
        client_time = bare_time = 0.0
        for start in range(0, args.tickets, size):
            for name in ("bare", "client") if (start // size) % 2 == 0 else ("client", "bare"):
                began = time.perf_counter()
                if name == "client":
                    client_lat += run_client(client, client_tickets[start : start + size])
                    client_time += time.perf_counter() - began
                else:
                    bare_lat += run_bare(bare, bare_bodies[start : start + size])
                    bare_time += time.perf_counter() - began
        client_tps = len(client_lat) / client_time
        bare_tps = len(bare_lat) / bare_time
        print(f"tickets per run:          {args.tickets}")
        print(
            f"bare httpx loop:          {bare_tps:8.1f} tickets/s   p95 {p95(bare_lat) * 1000:6.1f} ms"
        )
        print(
            f"JiraClient.create_ticket: {client_tps:8.1f} tickets/s   p95 {p95(client_lat) * 1000:6.1f} ms"
        )
        print(f"ratio client/bare:        {client_tps / bare_tps:8.3f}   (goal >= 0.8)")

        # --- with faults: 10 % of creates fail --------------------------------------------
        control(base, "reset")
        control(base, "config", index_lag=0.2)
        create_only = {"platform": "jira", "path_contains": "/rest/api/3/issue", "method": "POST"}
        control(base, "faults", status=503, rate=0.025, seed=1, **create_only)
        control(base, "faults", status=503, rate=0.025, seed=2, mode="after", **create_only)
        control(base, "faults", status=429, rate=0.05, seed=3, retry_after=1, **create_only)
        fault_tickets = [ticket(i, "f") for i in range(args.tickets)]
        logs: list = []

        def one(t: dict) -> float:
            started = time.perf_counter()
            created = client.create_ticket(
                t["project"], t["summary"], t["description"], t["issue_type"], t["fields"],
                idempotency_key=t["key"],
            )  # fmt: skip
            logs.append(created.log)
            return time.perf_counter() - started

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            fault_lat = list(pool.map(one, fault_tickets))
        elapsed = time.perf_counter() - began
        state = httpx.get(f"{base}/_fake/state/jira", timeout=30).json()
        labels: dict[str, int] = {}
        for issue in state["issues"]:
            for label in issue.get("labels") or issue.get("fields", {}).get("labels", []):
                if label.startswith("portal-idem-bench-f-"):
                    labels[label] = labels.get(label, 0) + 1
        duplicates = sum(1 for count in labels.values() if count > 1)
        missing = args.tickets - len(labels)
        retries = sum(log.retries for log in logs)
        reconciled = sum(1 for log in logs if log.reconciled)
        print(f"with 10 % faults ({args.threads} threads): {args.tickets / elapsed:8.1f} tickets/s"
              f"   p95 {p95(fault_lat) * 1000:6.1f} ms")  # fmt: skip
        print(f"  faults injected: {state.get('faults_injected')}, retries: {retries}, "
              f"found by reconciliation: {reconciled}")  # fmt: skip
        print(
            f"  issues in fake: {len(labels)} distinct, duplicates: {duplicates}, missing: {missing}"
        )
        ok = duplicates == 0 and missing == 0
        print("exactly once: " + ("yes" if ok else "NO"))
        return 0 if ok else 1
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
