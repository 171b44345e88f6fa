"""Session export benchmark (issue #11): the export engine against a bare httpx loop, in one run.

Starts the bundled fakes as a separate process (so the fake Jira does not share our GIL), points the
portal at them with ``EXPORT_TICKET_DELAY_SECONDS=0`` on a throwaway database, and in each round:

- **engine, sequential**: a session of N tickets (default 500) with HTML descriptions, labels, a
  priority and a chain of dependencies is exported by the real engine, in-process
  (``exports.services.lifecycle.start_export`` then ``exports.services.engine.run_export``, what
  the Celery task runs): validation, fresh HTML -> ADF per ticket, the audit events, the create
  with its idempotency marker, the key committed when Jira answers (with the heartbeat and the
  next ticket's marker), the ``Blocks`` links and the orphan sweep;
- **bare httpx loop**: the same N issues (the same ADF bodies, labels and priority, converted
  beforehand) posted one after another with ``httpx.Client`` to ``/rest/api/3/issue``;
- **engine, bulk**: the same session exported in bulk mode (50 issues a call).

The order of the three rotates from round to round, so machine noise hits them alike. Printed:
tickets per second of each, the ratio engine/bare (goal: at least 0.8; the engine also creates
the links, which the bare loop does not: they are counted in its time) and bulk's speed-up over
sequential (goal: at least 10x). After each round the fake's state is checked: every exported
ticket exists exactly once (by its idempotency label), none missing (exit status 1 otherwise).

    .venv/bin/python bench/export_bench.py [--tickets 500] [--rounds 3] [--profile FILE]
        [--profile-mode sequential|bulk] [--database-url postgres://...]
        [--redis-url redis://...] [--jira-latency-ms 0]

Without ``--database-url`` the portal's embedded profile is used (SQLite in WAL mode, in a
temporary directory); without ``--redis-url`` (or ``REDIS_URL``) the in-memory channel layer.
``--jira-latency-ms`` makes the fake Jira answer every request that much later (both sides
alike), as a real Jira over a network does: loopback answers in well under a millisecond, which
leaves only the portal's own work per ticket to compare. ``--profile FILE`` records one more
export with cProfile into FILE (sequential, or bulk with ``--profile-mode bulk``) and prints where
its time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EMAIL, TOKEN, PROJECT = "bench@example.com", "bench-token", "OPS"

DESCRIPTION = """
<h2>Ticket {i}: configure the product fields</h2>
<p>The <strong>checkout</strong> service must expose the new <em>product fields</em> to the
catalogue, as agreed in the planning session. See <a href="https://example.com/spec/{i}">the
spec</a> and the notes below.</p>
<ul>
  <li>Add the <code>weight</code> and <code>dimensions</code> fields</li>
  <li>Migrate existing products
    <ol><li>back-fill from the ERP export</li><li>verify a sample of 100</li></ol>
  </li>
  <li>Document the API change</li>
</ul>
<pre><code class="language-python">def weight(product):
    return product.fields.get("weight", 0)
</code></pre>
<blockquote><p>Acceptance: the catalogue shows both fields for every product.</p></blockquote>
<table><tr><th>Field</th><th>Type</th></tr><tr><td>weight</td><td>grams</td></tr></table>
"""


def start_fakes() -> tuple[subprocess.Popen, str]:
    from itsm.fakes.adf_schema import ensure_adf_schema  # no Django: safe before setup

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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument(
        "--jira-latency-ms",
        type=float,
        default=0.0,
        help="latency the fake Jira adds to every request (a fault rule), as a real Jira has",
    )
    parser.add_argument("--profile", type=Path, help="cProfile one more export into FILE")
    parser.add_argument(
        "--profile-mode", choices=["sequential", "bulk"], default="sequential",
        help="the mode of the profiled export (default: sequential)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    return parser.parse_args()


def configure(args: argparse.Namespace, fakes_url: str, tmp: Path) -> None:
    """The portal's settings for this run, set before Django reads them."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "0",
            "DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}",
            "PORTAL_MEDIA_ROOT": str(tmp / "media"),
            "JIRA_BASE_URL": f"{fakes_url}/jira",
            "JIRA_EMAIL": EMAIL,
            "JIRA_API_TOKEN": TOKEN,
            "JIRA_PROJECT_KEY": PROJECT,
            "EXPORT_TICKET_DELAY_SECONDS": "0",
            "EXPORT_MAX_TICKETS": str(max(args.tickets, 500)),
        }
    )
    if args.redis_url:
        os.environ["REDIS_URL"] = args.redis_url
    else:
        os.environ.pop("REDIS_URL", None)

    import logging

    import django

    django.setup()
    logging.getLogger("itsm").setLevel(logging.ERROR)
    logging.getLogger("exports").setLevel(logging.ERROR)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def tickets_input(count: int, tag: str):
    from exports.services.sessions import TicketInput

    # A chain of dependencies every tenth ticket, the rest free: links the engine must create.
    return tuple(
        TicketInput(
            order=i,
            title=f"Configure product fields {tag}-{i}",
            description_html=DESCRIPTION.format(i=i),
            priority="High",
            labels=("planning", "bench"),
            depends_on=(i - 10,) if i > 10 and i % 10 == 1 else (),
        )
        for i in range(1, count + 1)
    )


def new_session(count: int, tag: str, mode: str):
    from exports.services.sessions import SessionInput, create_session

    return create_session(
        SessionInput(PROJECT, tickets_input(count, tag), name=f"bench {tag}", export_mode=mode)
    )


def export(session) -> float:
    """Starts and runs the session's export in-process, as the worker's task would; seconds."""
    from exports.services import engine, lifecycle

    began = time.perf_counter()
    result = lifecycle.start_export(session.pk)
    outcome = engine.run_export(session.pk, result.session.export_task_id)
    elapsed = time.perf_counter() - began
    if outcome != "completed":
        session.refresh_from_db()
        raise SystemExit(f"export {outcome}: {session.error_message}")
    return elapsed


def bare_bodies(count: int, tag: str) -> list[dict]:
    """What the engine sends for each ticket, built beforehand (ADF included)."""
    from exports.services.engine import convert_description, session_label
    from itsm.public import client_for

    client = client_for("jira")
    try:
        return [
            {
                "fields": client.issue_fields(
                    PROJECT, t.title, convert_description(t.description_html), "Task",
                    {"labels": [*t.labels, session_label(f"bare-{tag}")],
                     "priority": {"name": "High"}},
                    f"bare-{tag}-{t.order}",
                )
            }
            for t in tickets_input(count, tag)
        ]  # fmt: skip
    finally:
        client.close()


def run_bare(http: httpx.Client, bodies: list[dict]) -> float:
    began = time.perf_counter()
    for body in bodies:
        response = http.post("/rest/api/3/issue", json=body)
        if response.status_code != 201:
            raise SystemExit(f"bare loop: {response.status_code} {response.text[:200]}")
    return time.perf_counter() - began


def check_exactly_once(fakes_url: str, sessions: list) -> tuple[int, int, int]:
    """(distinct tickets found, duplicates, missing) for the sessions' tickets in the fake."""
    from exports.models import ExportTicket

    state = httpx.get(f"{fakes_url}/_fake/state/jira", timeout=60).json()
    counts: dict[str, int] = {}
    for issue in state["issues"]:
        for label in issue.get("labels") or issue.get("fields", {}).get("labels", []):
            if label.startswith("portal-idem-export-"):
                counts[label] = counts.get(label, 0) + 1
    wanted = {
        f"portal-idem-{ticket.idempotency_key}": ticket.jira_ticket_key
        for ticket in ExportTicket.objects.filter(session__in=sessions)
    }
    found = sum(1 for label in wanted if counts.get(label))
    duplicates = sum(1 for label in wanted if counts.get(label, 0) > 1)
    missing = sum(1 for label, key in wanted.items() if not counts.get(label) or not key)
    return found, duplicates, missing


def reset_fake(fakes_url: str, latency_ms: float) -> None:
    """Empties the fake; with ``latency_ms`` every Jira request waits that long (both sides)."""
    httpx.post(f"{fakes_url}/_fake/reset", timeout=30).raise_for_status()
    if latency_ms:
        rule = {"platform": "jira", "latency_ms": latency_ms}
        httpx.post(f"{fakes_url}/_fake/faults", json=rule, timeout=10).raise_for_status()


def profile(args: argparse.Namespace, target: Path) -> None:
    from exports.models import ExportSession

    mode = ExportSession.Mode(args.profile_mode)
    session = new_session(args.tickets, "profile", mode)
    profiler = cProfile.Profile()
    profiler.enable()
    export(session)
    profiler.disable()
    profiler.dump_stats(target)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(35)
    print(f"\ncProfile of one {mode} export ({args.tickets} tickets), saved to {target}:")
    print(out.getvalue())


def main() -> int:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="export-bench-"))
    process, fakes_url = start_fakes()
    try:
        configure(args, fakes_url, tmp)
        from django.conf import settings

        from exports.models import ExportSession
        from exports.services import lifecycle

        lifecycle.set_dispatcher(lambda session_id, task_id: None)  # the bench runs it itself
        http = httpx.Client(base_url=f"{fakes_url}/jira", auth=(EMAIL, TOKEN), timeout=30)
        n = args.tickets

        # Warm up: connections and code paths on both sides. The fake checks every ADF document
        # with Atlassian's schema, a few hundred ms for a document it has not seen, then from
        # its memo: the N documents are posted once here, so neither side pays for that (it is
        # the fake's cost, and whichever side came first in a round would pay it alone).
        export(new_session(20, "warm", ExportSession.Mode.SEQUENTIAL))
        run_bare(http, bare_bodies(n, "warm"))
        reset_fake(fakes_url, args.jira_latency_ms)

        totals = {"sequential": 0.0, "bare": 0.0, "bulk": 0.0}
        ok = True
        kinds = ["sequential", "bare", "bulk"]
        for number in range(args.rounds):
            order = kinds[number % 3 :] + kinds[: number % 3]
            if number % 2:
                order.reverse()
            sessions = {
                "sequential": new_session(n, f"s{number}", ExportSession.Mode.SEQUENTIAL),
                "bulk": new_session(n, f"b{number}", ExportSession.Mode.BULK),
            }
            bodies = bare_bodies(n, f"r{number}")
            took = {}
            for kind in order:
                took[kind] = run_bare(http, bodies) if kind == "bare" else export(sessions[kind])
                totals[kind] += took[kind]
            found, duplicates, missing = check_exactly_once(fakes_url, list(sessions.values()))
            ok = ok and duplicates == 0 and missing == 0 and found == 2 * n
            print(
                f"round {number + 1} ({' -> '.join(order)}): "
                + ", ".join(f"{kind} {n / took[kind]:7.1f}/s" for kind in kinds)
                + f"; in the fake: {found} of {2 * n}, duplicates {duplicates}, missing {missing}"
            )
            reset_fake(fakes_url, args.jira_latency_ms)

        done = n * args.rounds
        rates = {kind: done / seconds for kind, seconds in totals.items()}
        database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
        print(f"\ntickets per export: {n} x {args.rounds} rounds; database {database}, "
              f"channel layer {layer}, delay {settings.EXPORT_TICKET_DELAY_SECONDS} s, "
              f"Jira latency {args.jira_latency_ms:g} ms")  # fmt: skip
        print(f"bare httpx loop:          {rates['bare']:8.1f} tickets/s")
        print(f"engine, sequential:       {rates['sequential']:8.1f} tickets/s")
        print(f"engine, bulk (50 a call): {rates['bulk']:8.1f} tickets/s")
        print(
            f"ratio sequential/bare:    {rates['sequential'] / rates['bare']:8.3f}   (goal >= 0.8)"
        )
        print(
            f"bulk speed-up:            {rates['bulk'] / rates['sequential']:8.1f}x  (goal >= 10x)"
        )
        print("exactly once: " + ("yes" if ok else "NO"))
        if args.profile:
            profile(args, args.profile)
        http.close()
        return 0 if ok else 1
    finally:
        process.terminate()
        process.wait(timeout=10)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
