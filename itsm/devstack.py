"""The ITSM side of ``make run``: the bundled fakes for every platform the user left unconfigured.

``portal.devstack`` starts the services that ``settings.PORTAL_DEV_SERVICES`` names and knows
nothing about ITSM; this module is the one that setting names for the fakes. It decides which
platforms need a fake (those whose base URL is unset), fetches Atlassian's ADF schema for the fake
Jira, starts ``python -m itsm.fakes`` with its state under ``var/fakes/`` and hands back the
variables that point the portal at it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from portal.devstack import BASE_DIR, ChildService, free_port

# Per platform: the variable that says where it lives, then what the fake needs, as templates
# of the fakes' URL. The fakes are started without FAKE_* credentials, so they accept any: a
# token the user set for a platform that still runs on the fake is kept, and works there too.
FAKE_PLATFORMS: dict[str, dict[str, str]] = {
    "Jira": {
        "JIRA_BASE_URL": "{url}/jira",
        "JIRA_EMAIL": "demo@example.com",
        "JIRA_API_TOKEN": "demo-token",
        "JIRA_PROJECT_KEY": "OPS",
    },
    "ServiceNow": {
        "SERVICENOW_BASE_URL": "{url}/servicenow",
        "SERVICENOW_USER": "demo",
        "SERVICENOW_PASSWORD": "demo-password",
    },
    "Slack": {"SLACK_WEBHOOK_URL": "{url}/slack/services/T000/B000/demo"},
    "Linear": {
        "LINEAR_API_URL": "{url}/linear/graphql",
        "LINEAR_API_KEY": "lin_api_demo",
    },
    "GitHub": {
        "GITHUB_API_URL": "{url}/github",
        "GITHUB_TOKEN": "demo-token",
    },
}


def _base_url_variable(platform: str) -> str:
    return next(iter(FAKE_PLATFORMS[platform]))


def platforms_needing_fakes(env: Mapping[str, str]) -> list[str]:
    """The platforms whose base URL is not set (an empty value counts as unset, as in settings)."""
    return [name for name in FAKE_PLATFORMS if not env.get(_base_url_variable(name))]


def fake_environment(env: Mapping[str, str], fakes_url: str) -> dict[str, str]:
    """The variables to add to ``env`` so that every platform without a base URL uses the fakes.

    Only those platforms, and for each only the variables that are unset (empty counts as unset):
    whatever the user set, a project key or a token, is never overwritten.
    """
    added: dict[str, str] = {}
    for name in platforms_needing_fakes(env):
        for variable, template in FAKE_PLATFORMS[name].items():
            if not env.get(variable):
                added[variable] = template.format(url=fakes_url)
    return added


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class FakeServers(ChildService):
    """``python -m itsm.fakes`` on loopback for every platform whose base URL is not set.

    A dev service of ``portal.devstack``. The fakes keep their objects in ``var/fakes/state.json``
    and come back on the port they had last time when it is free, so the tickets in the database,
    their keys and their links stay valid across restarts of ``make run``. Jira bodies are checked
    against Atlassian's ADF schema when it can be fetched from npm, else structurally.
    """

    def __init__(self, var_dir: Path):
        super().__init__(var_dir / "fakes")
        self.ready_file = self.directory / "fakes.url"
        self.state_file = self.directory / "state.json"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _previous_port(self) -> int | None:
        """The port of the last run, so that stored ticket links keep working."""
        try:
            port = urlsplit(self.ready_file.read_text(encoding="utf-8").strip()).port
        except (OSError, ValueError):
            return None
        return port if port and _port_is_free(port) else None

    def start(self, env: Mapping[str, str], timeout: float = 30.0) -> dict[str, str]:
        faked = platforms_needing_fakes(env)
        real = [name for name in FAKE_PLATFORMS if name not in faked]
        if real:
            print(f"Real {', '.join(real)} as configured", flush=True)
        if not faked:
            return {}
        from itsm.fakes.adf_schema import AdfSchemaUnavailable, ensure_adf_schema

        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self._previous_port() or free_port()
        try:
            schema = ["--adf-schema", str(ensure_adf_schema())]
        except AdfSchemaUnavailable as exc:  # offline: the demo still runs, with a structural check
            print(f"ADF schema not fetched ({exc}); fake Jira checks ADF structurally", flush=True)
            schema = ["--no-adf-schema"]
        self.ready_file.unlink(missing_ok=True)
        command = [
            sys.executable, "-m", "itsm.fakes", "--host", "127.0.0.1", "--port", str(self.port),
            *schema, "--state-file", str(self.state_file), "--ready-file", str(self.ready_file),
        ]  # fmt: skip
        with (self.directory / "fakes.log").open("ab") as log:
            # Its own session, so the terminal's Ctrl-C reaches honcho first and the fakes after,
            # when ``stop`` asks them to save their state.
            # Demo job logs: a CI webhook example posted to the portal finds a log to classify.
            self.process = subprocess.Popen(  # noqa: S603
                command, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env={**os.environ, "FAKE_GITHUB_DEMO_LOGS": "1"},
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_file.exists() or self.process.poll() is not None:
                break
            time.sleep(0.05)
        if not self.ready_file.exists():
            self.stop()
            raise RuntimeError(f"fake ITSM servers did not start; see {self.directory}/fakes.log")
        print(f"Fake {', '.join(faked)} on {self.url} (state in {self.state_file})", flush=True)
        return fake_environment(env, self.url)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            super().stop()
            print("Fake ITSM servers stopped.", flush=True)
