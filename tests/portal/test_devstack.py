"""``make run`` (``portal/devstack.py``) starts what the settings name and imports no app.

The dev services here are small test doubles built the way ``settings.PORTAL_DEV_SERVICES``
entries are; the ITSM fakes themselves are tested in ``tests/itsm/test_devstack.py``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
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


def test_the_shipped_settings_name_the_itsm_fakes():
    assert settings.PORTAL_DEV_SERVICES == ["itsm.devstack.FakeServers"]


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
