"""``python -m itsm.fakes``: run every fake on one port until SIGTERM or SIGINT.

Prints ``fakes listening on http://HOST:PORT`` (flushed) once the socket accepts connections, and
writes the URL to ``--ready-file`` if given, so that a supervisor can wait for either.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from .adf_schema import AdfSchemaUnavailable, ensure_adf_schema
from .server import FakeServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m itsm.fakes", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    schema = parser.add_mutually_exclusive_group()
    schema.add_argument(
        "--adf-schema",
        type=Path,
        help="path of the ADF full.json; default: download/cache it (itsm.fakes.adf_schema)",
    )
    schema.add_argument(
        "--no-adf-schema",
        action="store_true",
        help="offline demo only: check ADF structure (doc/version/content), not the schema",
    )
    parser.add_argument(
        "--index-lag",
        type=float,
        default=0.0,
        help="seconds before a new Jira issue shows up in search/jql",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        help="keep the objects in this JSON file: loaded at start, written on change and at stop",
    )
    parser.add_argument("--ready-file", type=Path, help="write the base URL here when ready")
    parser.add_argument("--log-requests", action="store_true", help="log each request to stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.index_lag < 0:
        print("error: --index-lag must not be negative", file=sys.stderr)
        return 2
    schema_path = None
    if not args.no_adf_schema:
        try:
            schema_path = args.adf_schema or ensure_adf_schema()
        except AdfSchemaUnavailable as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        if not schema_path.is_file():
            print(f"error: no ADF schema at {schema_path}", file=sys.stderr)
            return 1

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    server = FakeServer(
        args.host,
        args.port,
        adf_schema_path=schema_path,
        index_lag=args.index_lag,
        log_requests=args.log_requests,
        state_file=args.state_file,
    ).start()
    try:
        if args.ready_file:
            tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
            tmp.write_text(server.url + "\n", encoding="utf-8")
            os.replace(tmp, args.ready_file)
        note = "" if schema_path else " (no ADF schema: structural ADF check only)"
        print(f"fakes listening on {server.url}{note}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
