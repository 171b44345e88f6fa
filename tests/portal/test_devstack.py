"""``make run`` (``portal/devstack.py``) starts what the settings name and imports no app.

The dev services here are small test doubles built the way ``settings.PORTAL_DEV_SERVICES``
entries are; the ITSM fakes themselves are tested in ``tests/itsm/test_devstack.py``. The last test
runs ``make run``'s whole stack with debug off on PostgreSQL and Redis (CI's second pass).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import psycopg
import pytest
import redis
from django.conf import settings

from portal.devstack import BASE_DIR, dev_service_paths, start_dev_services

APPS = ("itsm", "escalation", "exports")


class RecordingService:
    """Answers a fixed set of variables and remembers what it saw."""

    answer: dict[str, str] = {"SERVICE_URL": "http://127.0.0.1:1", "SERVICE_TOKEN": "demo"}
    log: list[tuple[str, object]] = []

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir

    def start(self, env: Mapping[str, str]) -> dict[str, str]:
        self.log.append(("start", dict(env)))
        return dict(self.answer)

    def stop(self) -> None:
        self.log.append(("stop", type(self).__name__))


class SecondService(RecordingService):
    answer = {"SECOND_URL": "http://127.0.0.1:2"}


class BrokenService(RecordingService):
    def start(self, env: Mapping[str, str]) -> dict[str, str]:
        raise RuntimeError("could not start")


@pytest.fixture(autouse=True)
def empty_log():
    RecordingService.log.clear()


def test_the_dev_services_come_from_the_settings(settings):
    settings.PORTAL_DEV_SERVICES = [f"{__name__}.RecordingService"]

    assert dev_service_paths() == [f"{__name__}.RecordingService"]


def test_the_shipped_settings_name_the_itsm_fakes_and_the_demo_webhook_secrets():
    assert settings.PORTAL_DEV_SERVICES == [
        "itsm.devstack.FakeServers",
        "escalation.devstack.DemoWebhookSecrets",
        "escalation.devstack.DemoCatalog",  # after the fakes: it reads their address
    ]


def test_each_service_adds_its_variables_and_sees_those_of_the_ones_before(tmp_path):
    env = {"PATH": "/usr/bin"}
    started: list = []

    start_dev_services(
        [f"{__name__}.RecordingService", f"{__name__}.SecondService"], env, tmp_path, started
    )

    assert env == {
        "PATH": "/usr/bin",
        "SERVICE_URL": "http://127.0.0.1:1",
        "SERVICE_TOKEN": "demo",
        "SECOND_URL": "http://127.0.0.1:2",
    }
    assert [type(service) for service in started] == [RecordingService, SecondService]
    assert started[0].var_dir == tmp_path
    assert RecordingService.log[1] == ("start", {"PATH": "/usr/bin", **RecordingService.answer})


def test_a_variable_the_user_set_is_never_overwritten_by_a_service(tmp_path):
    env = {"SERVICE_TOKEN": "users-own", "SERVICE_URL": ""}

    start_dev_services([f"{__name__}.RecordingService"], env, tmp_path, [])

    assert env["SERVICE_TOKEN"] == "users-own"
    assert env["SERVICE_URL"] == "http://127.0.0.1:1"  # empty counts as unset, as in settings


def test_when_a_service_fails_the_ones_already_started_are_handed_back_to_be_stopped(tmp_path):
    started: list = []

    with pytest.raises(RuntimeError, match="could not start"):
        start_dev_services(
            [f"{__name__}.RecordingService", f"{__name__}.BrokenService"], {}, tmp_path, started
        )

    assert [type(service) for service in started] == [RecordingService]


def test_the_devstack_module_imports_no_app():
    code = (
        "import sys, portal.devstack; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {APPS!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


# ----- the whole stack, as `DJANGO_DEBUG=0 make run` on PostgreSQL and Redis ------------------
# A database and a Redis database of its own, so the suite's data and queues stay apart.
E2E_DATABASE = "portal_devstack_e2e"
E2E_REDIS_DB = 15
READY_TIMEOUT_SECONDS = 240  # migrations on an empty PostgreSQL database, on a busy CI machine
STOP_TIMEOUT_SECONDS = 60
HASHED_CSS = re.compile(r'href="(/static/portal/portal\.[0-9a-f]{12}\.css)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def e2e_database_url() -> Iterator[str]:
    database = settings.DATABASES["default"]
    server = {
        "host": database["HOST"] or "127.0.0.1",
        "port": database["PORT"] or 5432,
        "user": database["USER"],
        "password": database["PASSWORD"] or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{E2E_DATABASE}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{E2E_DATABASE}"')
    password = f":{quote(server['password'])}" if server["password"] else ""
    yield f"postgres://{quote(server['user'])}{password}@{server['host']}:{server['port']}/{E2E_DATABASE}"
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{E2E_DATABASE}" WITH (FORCE)')


@pytest.fixture
def e2e_redis_url() -> Iterator[str]:
    url = urlsplit(settings.REDIS_URL)._replace(path=f"/{E2E_REDIS_DB}").geturl()
    client = redis.Redis.from_url(url)
    client.flushdb()  # queues or leases an interrupted run left behind
    yield url
    client.flushdb()
    client.close()


def wait_until_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"make run stopped early:\n{log.read_text()[-4000:]}"
        try:
            if httpx.get(f"{url}/accounts/login/", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"not ready after {READY_TIMEOUT_SECONDS} s:\n{log.read_text()[-4000:]}")


@pytest.mark.postgres
@pytest.mark.redis
def test_make_run_with_debug_off_on_postgresql_and_redis_serves_pages_and_static_files(
    tmp_path, e2e_database_url, e2e_redis_url
):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))},
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": e2e_database_url,
        "REDIS_URL": e2e_redis_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "PORTAL_STATIC_ROOT": str(tmp_path / "static"),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "make-run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "portal.devstack"],
            cwd=BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_ready(process, url, log)
        with httpx.Client(base_url=url, timeout=10) as browser:
            browser.get("/accounts/login/")
            logged_in = browser.post(
                "/accounts/login/",
                data={
                    "username": "operator",
                    "password": "portal-demo",
                    "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                },
                headers={"Referer": f"{url}/accounts/login/"},
                follow_redirects=True,
            )
            tickets = browser.get("/itsm/tickets/")
            stylesheet = HASHED_CSS.search(logged_in.text)
            css = browser.get(stylesheet.group(1)) if stylesheet else None
        fakes_port = urlsplit((tmp_path / "var/fakes/fakes.url").read_text().strip()).port

        # Ctrl-C in the terminal: SIGINT to make run's process group.
        os.killpg(process.pid, signal.SIGINT)
        returncode = process.wait(STOP_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.terminate()  # still stops the fakes on its way out
            process.wait(STOP_TIMEOUT_SECONDS)
    output_text = log.read_text()

    assert logged_in.status_code == 200, output_text[-4000:]
    assert str(logged_in.url) == f"{url}/"  # the dashboard, after the login redirect
    assert tickets.status_code == 200
    assert stylesheet, "the dashboard links the collected, hashed stylesheet"
    assert css is not None and css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "Collecting static files (debug is off)" in output_text
    assert not re.search(r"(GET|POST|HEAD) \S+ 5\d\d\b", output_text)  # no server error
    # Stopped cleanly: honcho's Ctrl-C code, every process gone, the fakes saved and stopped.
    assert returncode == 130
    assert "Fake ITSM servers stopped." in output_text
    assert not accepts_connections(port)
    assert not accepts_connections(fakes_port)
    assert (tmp_path / "var/fakes/state.json").exists()
