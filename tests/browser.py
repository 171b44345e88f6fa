"""Playwright fixtures for the browser tests (loaded by tests/conftest.py as a plugin).

Playwright's sync API marks an event loop as running in its thread for as long as it is started.
pytest-playwright starts it once per session, which would break every later test of the run that
uses ``async_to_sync`` (the channel layer, the consumers). These fixtures replace its
session-scoped ones with module-scoped ones, so Playwright and the browser live for one test
module; pytest-playwright's ``page`` and ``context`` fixtures are used unchanged. Pages open
relative URLs on Django's live server.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's password


@pytest.fixture(scope="module")
def allow_orm_beside_playwrights_event_loop():
    """While Playwright runs, Django refuses ORM calls in this thread (it sees a running event
    loop) unless told that the code here is synchronous."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def playwright(_pw_api_request_contexts, allow_orm_beside_playwrights_event_loop):
    """pytest-playwright's ``playwright`` fixture, stopped at the end of the module."""
    with sync_playwright() as started:
        if _pw_api_request_contexts:
            _pw_api_request_contexts.instrument(started)
        yield started


@pytest.fixture(scope="module")
def browser_type(playwright, browser_name):
    return getattr(playwright, browser_name)


@pytest.fixture(scope="module")
def browser(browser_type, browser_type_launch_args):
    launched = browser_type.launch(**browser_type_launch_args)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def browser_context_args(live_server):
    return {"base_url": live_server.url, "viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """Debian chromium, headless, without the background traffic this closed network refuses."""
    return {
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


def log_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
