"""One loopback HTTP server for all five fakes, plus the ``/_fake/`` control API.

Each platform lives under its prefix (``/jira``, ``/servicenow``, ``/slack``, ``/linear``,
``/github``). A request goes: read the whole body -> fault rules (before auth: a rate limit or an
outage answers whoever asks) -> latency -> auth -> handler, all state changes under one lock.
``mode="after"`` faults run the handler and then throw its answer away.

Use in-process::

    server = FakeServer("127.0.0.1", adf_schema_path=ensure_adf_schema()).start()
    ...  # server.url, server.state
    server.stop()

or as a process: ``python -m itsm.fakes --port 0`` (see ``__main__``). No Django here: the package
must run without the portal's settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .adf_schema import load_adf_validator
from .faults import PLATFORMS, FaultRule, FaultTable, InvalidFaultRule
from .github import GitHubFake
from .jira import JiraFake
from .linear import LinearFake
from .persistence import StateFile
from .protocol import HttpError, Platform, Request, Response, json_response
from .servicenow import ServiceNowFake
from .slack import SlackFake

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_REQUEST_BYTES = 256 * 1024 * 1024


class _Drop:
    """Sentinel: close the connection without writing a byte."""


DROP = _Drop()


@dataclass
class FakeConfig:
    """Settings the control API may change; ``reset`` restores the start-up values."""

    index_lag: float = 0.0
    jira_max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES

    def update(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise ValueError("config is a JSON object")
        unknown = set(data) - {"index_lag", "jira_max_attachment_bytes"}
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        if "index_lag" in data:
            lag = data["index_lag"]
            if isinstance(lag, bool) or not isinstance(lag, int | float) or lag < 0:
                raise ValueError("index_lag must be a non-negative number of seconds")
            self.index_lag = float(lag)
        if "jira_max_attachment_bytes" in data:
            size = data["jira_max_attachment_bytes"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError("jira_max_attachment_bytes must be a positive integer")
            self.jira_max_attachment_bytes = size


class FakeState:
    """Everything the fakes remember, behind one lock."""

    def __init__(self, adf_schema_path: Path | str | None, index_lag: float) -> None:
        self.lock = threading.RLock()
        self.adf = load_adf_validator(adf_schema_path)
        env_size = os.environ.get("FAKE_JIRA_MAX_ATTACHMENT_BYTES")
        self._initial_config = FakeConfig(
            index_lag=float(index_lag),
            jira_max_attachment_bytes=int(env_size) if env_size else DEFAULT_MAX_ATTACHMENT_BYTES,
        )
        self.config = FakeConfig(**vars(self._initial_config))
        env = os.environ.get
        self.jira = JiraFake(self.adf, self.config, env("FAKE_JIRA_EMAIL"), env("FAKE_JIRA_TOKEN"))
        self.servicenow = ServiceNowFake(
            env("FAKE_SERVICENOW_USER"), env("FAKE_SERVICENOW_PASSWORD")
        )
        self.slack = SlackFake()
        self.linear = LinearFake(env("FAKE_LINEAR_API_KEY"))
        self.github = GitHubFake(
            env("FAKE_GITHUB_TOKEN"), demo_logs=env("FAKE_GITHUB_DEMO_LOGS") == "1"
        )
        self.platforms: dict[str, Platform] = {
            "jira": self.jira,
            "servicenow": self.servicenow,
            "slack": self.slack,
            "linear": self.linear,
            "github": self.github,
        }
        self.faults = FaultTable()

    def reset(self) -> None:
        with self.lock:
            self.config.index_lag = self._initial_config.index_lag
            self.config.jira_max_attachment_bytes = self._initial_config.jira_max_attachment_bytes
            self.faults.clear()
            for platform in self.platforms.values():
                platform.reset()

    def export(self) -> dict[str, Any]:
        """What each platform keeps across a restart (see ``persistence``)."""
        with self.lock:
            return {name: platform.export_state() for name, platform in self.platforms.items()}

    def load(self, saved: dict[str, Any]) -> None:
        """Replace every platform's objects with what :meth:`export` saved."""
        with self.lock:
            for name, platform in self.platforms.items():
                platform.reset()
                platform.import_state(saved.get(name, {}))

    def snapshot(self, platform: str) -> dict[str, Any]:
        with self.lock:
            # Round-trip through JSON so the caller gets a detached copy.
            return json.loads(json.dumps(self.platforms[platform].snapshot(), default=str))


# Requests that may change a platform's objects; reads never do (a GitHub log link is not kept).
CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class FakeApp:
    """Routes one parsed HTTP request to the control API or to a platform; no sockets here.

    ``on_change`` is called after every request that may have changed the objects (the state file
    uses it to know when to write).
    """

    def __init__(self, state: FakeState, on_change: Callable[[], None] | None = None) -> None:
        self.state = state
        self.on_change = on_change or (lambda: None)

    def dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        body: bytes,
        origin: str,
    ) -> Response | _Drop:
        if path == "/_fake" or path.startswith("/_fake/"):
            return self.control(method, path[len("/_fake") :], body)
        platform_name, _, rest = path.lstrip("/").partition("/")
        platform = self.state.platforms.get(platform_name)
        if platform is None:
            return json_response(
                404,
                {"error": f"unknown prefix; use one of /{', /'.join(PLATFORMS)} or /_fake"},
            )
        request = Request(method, "/" + rest, path, query, headers, body, origin)
        with self.state.lock:
            route, params, allowed = platform.router.match(method, request.path)
            template = route.template if route else "(no route)"
            name = f"{method} {template}"
            platform.requests[name] = platform.requests.get(name, 0) + 1
            decision = self.state.faults.decide(platform_name, method, path)
            if decision.fails:
                platform.faults_injected += 1
        if decision.latency_seconds:
            time.sleep(decision.latency_seconds)
        rule = decision.rule
        if rule is not None and rule.mode == "before":
            return self._fault(platform, rule)
        request.params = params
        with self.state.lock:
            response = self._handle(platform, request, route, allowed)
        if method in CHANGING_METHODS:
            self.on_change()
        if rule is not None:
            return self._fault(platform, rule)
        return response

    def _fault(self, platform: Platform, rule: FaultRule) -> Response | _Drop:
        if rule.drop:
            return DROP
        assert rule.status is not None
        return platform.fault(rule.status, rule.retry_after)

    def _handle(
        self, platform: Platform, request: Request, route: Any, allowed: list[str]
    ) -> Response:
        if route is None or route.auth:
            denied = platform.authenticate(request)
            if denied is not None:
                return denied
        if route is None:
            if allowed:
                response = platform.error(405, f"Method {request.method} is not allowed here")
                response.headers.append(("Allow", ", ".join(sorted(set(allowed)))))
                return response
            return platform.error(404, f"No {platform.name} endpoint at {request.path}")
        try:
            return route.handler(request)
        except HttpError as error:
            return error.response
        except Exception:  # a bug in a fake must not kill the server thread
            traceback.print_exc(file=sys.stderr)
            return platform.error(500, "The fake crashed; see its stderr")

    # ----- control API --------------------------------------------------------------------
    def control(self, method: str, path: str, body: bytes) -> Response:
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return json_response(400, {"error": "the body is not JSON"})
        state = self.state
        try:
            if (method, path) == ("POST", "/reset"):
                state.reset()
                self.on_change()
                return json_response(200, {"reset": True})
            if path == "/faults":
                with state.lock:
                    if method == "POST":
                        return json_response(201, state.faults.add(data).as_json())
                    if method == "DELETE":
                        state.faults.clear()
                        return json_response(200, {"cleared": True})
                    if method == "GET":
                        return json_response(200, {"faults": state.faults.as_json()})
            if method == "GET" and path.startswith("/state/"):
                platform = path[len("/state/") :]
                if platform not in state.platforms:
                    return json_response(404, {"error": f"unknown platform {platform!r}"})
                return json_response(200, state.snapshot(platform))
            if (method, path) == ("POST", "/github/jobs"):
                with state.lock:
                    job = state.github.register_job(data)
                self.on_change()
                return json_response(201, job)
            if (method, path) == ("POST", "/jira/index"):
                with state.lock:
                    return json_response(200, {"indexed": state.jira.catch_up_index()})
            if path == "/config":
                with state.lock:
                    if method == "POST":
                        state.config.update(data)
                    if method in ("GET", "POST"):
                        return json_response(200, vars(state.config))
            if (method, path) == ("GET", "/health"):
                return json_response(200, {"ok": True, "adf": state.adf.description})
        except (InvalidFaultRule, ValueError) as error:
            return json_response(400, {"error": str(error)})
        return json_response(404, {"error": f"no control endpoint {method} /_fake{path}"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "itsm-fakes/1.0"
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_REQUEST_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_REQUEST_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            body = None
        if body is None:
            self.close_connection = True
            self._write(json_response(413, {"error": "request body unreadable or too large"}))
            return
        url = urlsplit(self.path)
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        outcome = self.server.app.dispatch(
            self.command,
            url.path,
            parse_qs(url.query, keep_blank_values=True),
            self.headers,
            body,
            f"http://{host}",
        )
        if isinstance(outcome, _Drop):
            self._drop()
        else:
            self._write(outcome)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # Headers and body in one write: two small writes meet Nagle and delayed ACKs (~40 ms).
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(response.body)
        self.flush_headers()


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: FakeApp, log_requests: bool) -> None:
        self.app = app
        self.log_requests = log_requests
        super().__init__(address, _Handler)


class FakeServer:
    """The fakes on one port, served from a background thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        adf_schema_path: Path | str | None = None,
        index_lag: float = 0.0,
        log_requests: bool = False,
        state_file: Path | str | None = None,
    ) -> None:
        self.state = FakeState(adf_schema_path, index_lag)
        # With a state file the objects outlive the process: loaded now, saved on change and stop.
        self.state_file = StateFile(state_file, self.state) if state_file else None
        if self.state_file is not None:
            self.state_file.load()
        on_change = self.state_file.mark_changed if self.state_file else None
        self.app = FakeApp(self.state, on_change)
        self._httpd = _HttpServer((host, port), self.app, log_requests)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def base_url(self, platform: str) -> str:
        return f"{self.url}/{platform}"

    def start(self) -> FakeServer:
        if self.state_file is not None:
            self.state_file.start()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="itsm-fakes",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.state_file is not None:
            self.state_file.stop()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
