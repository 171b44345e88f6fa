"""The role-aware navigation and the styled error pages in a real browser (Debian chromium through
Playwright, fixtures in tests/browser.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import log_in
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # committed data, for the live server's thread
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]


def test_qa_is_not_offered_the_itsm_pages_and_a_direct_link_shows_the_styled_403(page, live_server):
    UserFactory(username="browser-qa", roles=["qa"], is_staff=True)
    log_in(page, "browser-qa")
    navigation = page.get_by_role("navigation", name="Sections")
    expect(navigation.get_by_role("link", name="Overview")).to_be_visible()
    expect(navigation.get_by_text("ITSM templates", exact=True)).to_have_count(0)
    expect(navigation.get_by_role("link", name="Admin")).to_be_visible()

    response = page.goto("/itsm/tickets/")

    assert response.status == 403
    expect(page.get_by_role("heading", name="You cannot open this page")).to_be_visible()
    expect(page.get_by_text("This page needs the operators role.")).to_be_visible()
    card = page.locator(".error-page")
    expect(card).to_have_css("background-color", "rgb(255, 255, 255)")  # portal.css applies
    page.get_by_role("link", name="Back to the overview").click()
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()


def test_an_unknown_page_shows_the_styled_404_with_the_navigation(page, live_server):
    UserFactory(username="browser-operator", roles=["operators"])
    log_in(page, "browser-operator")

    response = page.goto("/no/such/page/")

    assert response.status == 404
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    expect(
        page.get_by_role("navigation", name="Sections").get_by_role("link", name="ITSM templates")
    ).to_be_visible()
