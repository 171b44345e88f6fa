"""The fakes keep their objects across restarts (``--state-file``), as ``make run`` uses them.

Without it a restarted fake Jira numbered from ``OPS-1`` again while the portal's database kept
the older ``OPS-1``. These tests stop and start real ``python -m itsm.fakes`` processes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from itsm.fakes.server import FakeServer
from tests.itsm.conftest import REPO_ROOT
from tests.itsm.test_fakes import CI_FAILURE_LABEL, CREATE_LINEAR_ISSUE, PLT_TEAM, issue_fields

START_TIMEOUT_SECONDS = 30
JIRA_AUTH = ("demo@example.com", "demo-token")
SERVICENOW_AUTH = ("demo", "demo-password")


@contextmanager
def fakes_process(state_file: Path, stop_with: signal.Signals = signal.SIGTERM) -> Iterator[str]:
    """A fakes process keeping its state in ``state_file``; yields its URL, then stops it."""
    ready = state_file.with_name("ready")
    ready.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "itsm.fakes", "--port", "0", "--no-adf-schema",
        "--state-file", str(state_file), "--ready-file", str(ready),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), f"the fakes did not start: {process.communicate()[1]}"
        yield ready.read_text().strip()
    finally:
        process.send_signal(stop_with)
        process.wait(10)
    if stop_with == signal.SIGTERM:
        assert process.returncode == 0, process.stderr.read() if process.stderr else ""


def create_jira_issue(url: str, summary: str) -> str:
    response = httpx.post(
        f"{url}/jira/rest/api/3/issue",
        auth=JIRA_AUTH,
        json={"fields": {**issue_fields()["fields"], "summary": summary}},
    )
    assert response.status_code == 201, response.text
    return response.json()["key"]


def create_incident(url: str, text: str) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/servicenow/api/now/table/incident",
        auth=SERVICENOW_AUTH,
        json={"short_description": text},
    )
    assert response.status_code == 201, response.text
    return response.json()["result"]


def wait_for_file_to_mention(path: Path, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(encoding="utf-8"):
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never mentioned {text!r}")


def test_after_a_restart_the_next_key_follows_the_last_and_the_first_is_still_readable(
    tmp_path,
):
    state_file = tmp_path / "state.json"
    with fakes_process(state_file) as url:
        first_key = create_jira_issue(url, "Before the restart")
        first_incident = create_incident(url, "Before the restart")

    with fakes_process(state_file) as url:
        second_key = create_jira_issue(url, "After the restart")
        second_incident = create_incident(url, "After the restart")
        first = httpx.get(f"{url}/jira/rest/api/3/issue/{first_key}", auth=JIRA_AUTH)
        incident = httpx.get(
            f"{url}/servicenow/api/now/table/incident/{first_incident['sys_id']}",
            auth=SERVICENOW_AUTH,
        )

    assert (first_key, second_key) == ("OPS-1", "OPS-2")
    assert first.status_code == 200
    assert first.json()["fields"]["summary"] == "Before the restart"
    assert (first_incident["number"], second_incident["number"]) == ("INC0010001", "INC0010002")
    assert incident.json()["result"]["short_description"] == "Before the restart"


def test_a_change_is_on_disk_while_the_fakes_run_so_a_killed_process_loses_nothing(tmp_path):
    state_file = tmp_path / "state.json"
    with fakes_process(state_file, stop_with=signal.SIGKILL) as url:
        create_jira_issue(url, "Written before the kill")
        wait_for_file_to_mention(state_file, "Written before the kill")

    with fakes_process(state_file) as url:
        first = httpx.get(f"{url}/jira/rest/api/3/issue/OPS-1", auth=JIRA_AUTH)
        next_key = create_jira_issue(url, "After the kill")

    assert first.json()["fields"]["summary"] == "Written before the kill"
    assert next_key == "OPS-2"


def test_an_unreadable_state_file_is_set_aside_and_the_fakes_start_empty(tmp_path):
    state_file = tmp_path / "state.json"
    state_file.write_text("{ half a file", encoding="utf-8")

    with FakeServer(state_file=state_file) as fakes:
        key = create_jira_issue(fakes.url, "Fresh start")

    assert key == "OPS-1"
    [aside] = tmp_path.glob("state.json.unreadable-*")
    assert aside.read_text(encoding="utf-8") == "{ half a file"
    saved = json.loads(state_file.read_text(encoding="utf-8"))
    assert [issue["key"] for issue in saved["platforms"]["jira"]["issues"]] == ["OPS-1"]


def comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A platform's snapshot without what belongs to one run (request counts, injected faults)."""
    return {k: v for k, v in snapshot.items() if k not in ("requests", "faults_injected")}


def test_every_platform_comes_back_as_it_was_saved(tmp_path):
    state_file = tmp_path / "state.json"
    with FakeServer(state_file=state_file) as fakes:
        url = fakes.url
        key = create_jira_issue(url, "Saved with a comment")
        comment = {"body": {"type": "doc", "version": 1, "content": []}}
        assert (
            httpx.post(
                f"{url}/jira/rest/api/3/issue/{key}/comment", auth=JIRA_AUTH, json=comment
            ).status_code
            == 201
        )
        create_incident(url, "Saved incident")
        assert httpx.post(f"{url}/slack/services/T/B/C", json={"text": "saved"}).text == "ok"
        linear = httpx.post(
            f"{url}/linear/graphql",
            headers={"Authorization": "lin_api_demo"},
            json={
                "query": CREATE_LINEAR_ISSUE,
                "variables": {
                    "input": {"teamId": PLT_TEAM, "title": "Saved", "labelIds": [CI_FAILURE_LABEL]}
                },
            },
        )
        assert linear.json()["data"]["issueCreate"]["success"] is True
        job = {"owner": "acme", "repo": "shop", "job_id": 7, "log": "saved log"}
        assert httpx.post(f"{url}/_fake/github/jobs", json=job).status_code == 201
        before = {name: comparable(fakes.state.snapshot(name)) for name in fakes.state.platforms}

    with FakeServer(state_file=state_file) as fakes:
        after = {name: comparable(fakes.state.snapshot(name)) for name in fakes.state.platforms}
        log = httpx.get(
            f"{fakes.url}/github/repos/acme/shop/actions/jobs/7/logs",
            headers={"Authorization": "Bearer demo"},
            follow_redirects=True,
        )

    assert after == before
    assert after["jira"]["issues"][0]["comments"]
    assert log.text == "saved log"
