"""Fixtures that run the strict fakes (``itsm.fakes``) as a real process on loopback.

- ``adf_schema_path`` (session): Atlassian's ADF JSON schema, downloaded once and cached in
  ``var/cache/adf-schema``.
- ``fake_servers`` (session): ``python -m itsm.fakes --port 0 --adf-schema ...`` as a subprocess,
  with a thin client for the control API (``docs/fakes.md``).
- ``fakes`` (function): the same, reset before the test (objects, faults, request logs, config).
- ``itsm_endpoints`` (function): ``settings.ITSM_ENDPOINTS`` pointed at the fakes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from itsm.config import get_config
from itsm.fakes.adf_schema import ensure_adf_schema

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECONDS = 30
READY_LINE = re.compile(r"^fakes listening on (http://\S+)")

FAKE_JIRA_EMAIL = "portal-bot@example.com"
FAKE_JIRA_TOKEN = "fake-jira-api-token"
FAKE_SERVICENOW_USER = "portal.integration"
FAKE_SERVICENOW_PASSWORD = "fake-servicenow-password"
FAKE_LINEAR_API_KEY = "lin_api_fakeportalkey0000000000000000000000"
FAKE_GITHUB_TOKEN = "ghs_fakeportaltoken000000000000000000000"
SLACK_WEBHOOK_PATH = "/slack/services/T000/B000/XXXXXXXX"


class FakeServers:
    """A running fakes process and thin calls to its control API (``/_fake/...``)."""

    def __init__(self, url: str, process: subprocess.Popen[str], output: list[str]) -> None:
        self.url = url
        self.process = process
        self.output = output
        self.control = httpx.Client(base_url=f"{url}/_fake", timeout=10)

    def base_url(self, platform: str) -> str:
        """E.g. ``base_url("jira")`` -> ``http://127.0.0.1:PORT/jira``."""
        return f"{self.url}/{platform}"

    @property
    def slack_webhook_url(self) -> str:
        return f"{self.url}{SLACK_WEBHOOK_PATH}"

    @property
    def linear_api_url(self) -> str:
        return f"{self.url}/linear/graphql"

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = self.control.request(method, path, json=json)
        if response.status_code >= 400:
            raise AssertionError(
                f"fakes control {method} {path}: {response.status_code} {response.text}"
            )
        return response.json()

    def reset(self) -> None:
        self._call("POST", "/reset")

    def faults(self, **rule: Any) -> dict[str, Any]:
        """Add a fault rule (fields as in docs/fakes.md); returns the stored rule with its id."""
        return self._call("POST", "/faults", rule)

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def state(self, platform: str) -> dict[str, Any]:
        return self._call("GET", f"/state/{platform}")

    def set_index_lag(self, seconds: float) -> None:
        self._call("POST", "/config", {"index_lag": seconds})

    def set_config(self, **values: Any) -> dict[str, Any]:
        return self._call("POST", "/config", values)

    def catch_up_index(self) -> int:
        return self._call("POST", "/jira/index")["indexed"]

    def register_job_log(
        self, owner: str, repo: str, job_id: int, log: str, completed: bool = True
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "/github/jobs",
            {"owner": owner, "repo": repo, "job_id": job_id, "log": log, "completed": completed},
        )

    def close(self) -> None:
        self.control.close()


def _start_fakes(schema_path: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "FAKE_JIRA_EMAIL": FAKE_JIRA_EMAIL,
        "FAKE_JIRA_TOKEN": FAKE_JIRA_TOKEN,
        "FAKE_SERVICENOW_USER": FAKE_SERVICENOW_USER,
        "FAKE_SERVICENOW_PASSWORD": FAKE_SERVICENOW_PASSWORD,
        "FAKE_LINEAR_API_KEY": FAKE_LINEAR_API_KEY,
        "FAKE_GITHUB_TOKEN": FAKE_GITHUB_TOKEN,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "itsm.fakes",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--adf-schema",
            str(schema_path),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()
    found: list[str] = []

    def drain() -> None:
        # Keep reading for the whole session so that a chatty stderr can never fill the pipe.
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if not found and (match := READY_LINE.match(line)):
                found.append(match.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=drain, name="fakes-output", daemon=True).start()
    ready.wait(START_TIMEOUT_SECONDS)
    if not found:
        process.kill()
        process.wait(5)
        raise RuntimeError("the fakes did not start:\n" + "".join(output))
    return process, found[0], output


@pytest.fixture(scope="session")
def adf_schema_path() -> Path:
    return ensure_adf_schema()


@pytest.fixture(scope="session")
def fake_servers(adf_schema_path: Path) -> Iterator[FakeServers]:
    process, url, output = _start_fakes(adf_schema_path)
    servers = FakeServers(url, process, output)
    try:
        yield servers
    finally:
        servers.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def fakes(fake_servers: FakeServers) -> FakeServers:
    fake_servers.reset()
    return fake_servers


@pytest.fixture
def itsm_endpoints(fakes: FakeServers, settings: Any) -> dict[str, str]:
    endpoints = {
        "JIRA_BASE_URL": fakes.base_url("jira"),
        "JIRA_EMAIL": FAKE_JIRA_EMAIL,
        "JIRA_API_TOKEN": FAKE_JIRA_TOKEN,
        "JIRA_PROJECT_KEY": "OPS",
        "SERVICENOW_BASE_URL": fakes.base_url("servicenow"),
        "SERVICENOW_USER": FAKE_SERVICENOW_USER,
        "SERVICENOW_PASSWORD": FAKE_SERVICENOW_PASSWORD,
        "SLACK_WEBHOOK_URL": fakes.slack_webhook_url,
        "LINEAR_API_URL": fakes.linear_api_url,
        "LINEAR_API_KEY": FAKE_LINEAR_API_KEY,
        "GITHUB_API_URL": fakes.base_url("github"),
        "GITHUB_TOKEN": FAKE_GITHUB_TOKEN,
    }
    settings.ITSM_ENDPOINTS = endpoints
    return endpoints


@pytest.fixture
def fast_itsm_config(settings, tmp_path):
    """The file config with 10 ms retry delays and a 1 s reconciliation window."""
    raw = json.loads(Path(settings.ITSM_CONFIG_PATH).read_text(encoding="utf-8"))
    raw["retry_policy"].update(retry_delay_seconds=0.01, max_retry_delay_seconds=2)
    raw["reconcile"] = {"window_seconds": 1.0, "poll_interval_seconds": 0.05}
    path = tmp_path / "itsm_config.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    settings.ITSM_CONFIG_PATH = str(path)
    get_config.cache_clear()
    yield
    get_config.cache_clear()
