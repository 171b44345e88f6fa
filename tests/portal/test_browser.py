"""The login round trip in a real browser: Debian chromium driven by Playwright against a live server.

The live server is Django's threaded WSGI server (no WebSocket), so the dashboard's live-status card
keeps trying to reconnect; the page itself is complete without it.

Playwright's sync API marks an event loop as running in this thread for as long as it is started.
pytest-playwright starts it once per session, which would break every later test of the run that
uses ``async_to_sync`` (the channel layer, the consumers). Here Playwright and the browser live for
this module only; pytest-playwright's ``page`` and ``context`` fixtures are used unchanged.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import PASSWORD, log_in
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # committed data, for the live server's thread
    # pytest-playwright's own base_url fixture, under pytest 9
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]


@pytest.fixture
def browser_user():
    return UserFactory(username="browser-operator", roles=["operators"])


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
