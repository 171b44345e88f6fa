"""``manage.py`` works as the README writes it, from the system Python with no virtualenv active.

The system interpreter is the one this test run's virtualenv was made from; it has no Django, so
``manage.py`` must run itself again with ``.venv/bin/python`` (or say what to do when there is none).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = getattr(sys, "_base_executable", sys.executable)


@pytest.fixture
def plain_shell_env() -> dict[str, str]:
    """The environment of a new terminal: no virtualenv on PATH or in VIRTUAL_ENV."""
    venv_bin = str(Path(sys.prefix) / "bin")
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PORTAL_MANAGE_REEXEC")
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


def system_python_has_django(env: dict[str, str]) -> bool:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('django') is None)"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], env=env, check=False).returncode == 0


def test_the_system_python_runs_manage_py_in_the_project_virtualenv(plain_shell_env):
    assert not system_python_has_django(plain_shell_env), "precondition: a Python without Django"

    result = subprocess.run(
        [SYSTEM_PYTHON, "manage.py", "shell", "-v", "0", "-c", "import sys; print(sys.prefix)"],
        cwd=REPO_ROOT,
        env=plain_shell_env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(REPO_ROOT / ".venv")


def test_without_a_virtualenv_manage_py_says_to_run_make_install(tmp_path, plain_shell_env):
    shutil.copy(REPO_ROOT / "manage.py", tmp_path / "manage.py")

    result = subprocess.run(
        [SYSTEM_PYTHON, "manage.py", "check"],
        cwd=tmp_path,
        env=plain_shell_env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "Run `make install`" in result.stderr
    assert "the project has no virtualenv yet" in result.stderr


def test_a_virtualenv_without_django_is_reported_not_re_executed_forever(tmp_path, plain_shell_env):
    shutil.copy(REPO_ROOT / "manage.py", tmp_path / "manage.py")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(SYSTEM_PYTHON)

    result = subprocess.run(
        [SYSTEM_PYTHON, "manage.py", "check"],
        cwd=tmp_path,
        env=plain_shell_env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "has no Django either" in result.stderr
    assert "Run `make install`" in result.stderr
