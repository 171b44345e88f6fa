#!/usr/bin/env python3
"""Django's command-line utility for administrative tasks.

Works as written from a fresh clone with any Python: when Django is not importable here (the
system ``python3``, no virtualenv active) and ``make install`` has created ``.venv``, it runs again
with ``.venv/bin/python``; without ``.venv`` it says to run ``make install``.
"""

import importlib.util
import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
VENV_PYTHON = BASE_DIR / ".venv" / "bin" / "python"
# Set on the re-executed process, so that a broken .venv fails with a message instead of looping.
REEXEC_MARK = "PORTAL_MANAGE_REEXEC"


def run_in_project_venv() -> None:
    """Replace this process with ``.venv/bin/python manage.py ...`` when Django is missing here."""
    if importlib.util.find_spec("django") is not None:
        return
    if VENV_PYTHON.exists() and not os.environ.get(REEXEC_MARK):
        os.environ[REEXEC_MARK] = "1"
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])  # noqa: S606
    where = (
        f"{VENV_PYTHON} has no Django either"
        if VENV_PYTHON.exists()
        else "the project has no virtualenv yet"
    )
    sys.exit(
        f"manage.py: Django is not installed for {sys.executable}, and {where}.\n"
        f"Run `make install` in {BASE_DIR} first (it creates .venv with the pinned packages)."
    )


def main() -> None:
    run_in_project_venv()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
