"""The login round trip in a real browser: Debian chromium driven by Playwright against a live server.

The live server is Django's threaded WSGI server (no WebSocket), so the dashboard's live-status card
keeps trying to reconnect; the page itself is complete without it.

Playwright's sync API marks an event loop as running in this thread for as long as it is started.
pytest-playwright starts it once per session, which would break every later test of the run that
uses ``async_to_sync`` (the channel layer, the consumers). Here Playwright and the browser live for
this module only; pytest-playwright's ``page`` and ``context`` fixtures are used unchanged.
"""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.conftest import CHROMIUM
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # committed data, for the live server's thread
    # pytest-playwright's own base_url fixture, under pytest 9
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]

PASSWORD = "correct horse battery staple"  # the factory's password


@pytest.fixture(scope="module", autouse=True)
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
def playwright(_pw_api_request_contexts):
    """pytest-playwright's ``playwright`` fixture, stopped at the end of this module."""
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
    """Replaces pytest-playwright's (which needs a session-long Playwright): pages open relative
    URLs on the live server."""
    return {"base_url": live_server.url}


@pytest.fixture(scope="session")
def browser_type_launch_args():
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


@pytest.fixture
def browser_user():
    return UserFactory(username="browser-operator", roles=["operators"])


def log_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_logging_in_lands_on_the_dashboard_with_its_navigation(
    page, live_server, browser_user, tmp_path
):
    log_in(page, "browser-operator", PASSWORD)

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.get_by_text("roles: operators")).to_be_visible()
    navigation = page.get_by_role("navigation", name="Sections")
    expect(navigation.get_by_role("link", name="Overview")).to_have_attribute(
        "aria-current", "page"
    )
    expect(navigation.get_by_role("link", name="API docs")).to_have_attribute("href", "/api/docs/")
    for section in ("CI health", "Exports", "Requests", "ITSM templates"):
        expect(navigation.get_by_text(section, exact=True)).to_be_visible()
    expect(navigation.get_by_text("Admin", exact=True)).to_have_count(0)

    screenshot = tmp_path / "dashboard.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert screenshot.stat().st_size > 1000


def test_dashboard_applies_the_portal_stylesheet(page, live_server, browser_user):
    log_in(page, "browser-operator", PASSWORD)
    page.wait_for_url(f"{live_server.url}/")

    rules = page.evaluate(
        """[...document.styleSheets]
             .filter((sheet) => (sheet.href || "").endsWith("/static/portal/portal.css"))
             .map((sheet) => sheet.cssRules.length)"""
    )

    assert len(rules) == 1
    assert rules[0] > 0


def test_logging_out_returns_to_the_login_page(page, live_server, browser_user):
    log_in(page, "browser-operator", PASSWORD)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    page.get_by_role("button", name="Log out").click()

    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))


def test_a_wrong_password_keeps_the_visitor_on_the_login_page(page, live_server, browser_user):
    log_in(page, "browser-operator", "not the password")

    expect(page.get_by_role("alert")).to_contain_text("did not match")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
