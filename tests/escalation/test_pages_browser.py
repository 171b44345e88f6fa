"""The CI pages in a real browser (Debian chromium) against uvicorn serving the portal's ASGI
application: a new failure appears without a reload (pushed over /ws/ci/) in the list and in the
dashboard's counts, the SLA countdown moves, and the dashboard's override button leads to the
request form."""

from __future__ import annotations

import re
import threading

import pytest
from playwright.sync_api import expect

from escalation.services.ingest import FailureReport, report_failure
from tests.browser import log_in
from tests.escalation.test_pipeline import PYTEST_LOG
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,  # the push crosses threads: the Redis channel layer carries it
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]


def reported(run_id: str):
    """A failure reported from another thread: Playwright's sync API keeps an event loop running
    in this one, where the audit's push (async_to_sync) cannot run, as it never does in a worker
    or a web request."""
    result = {}

    def report() -> None:
        from django.db import connection

        try:
            result["failure"], _ = report_failure(
                FailureReport(repository="acme/shop", job="unit-tests", run_id=run_id),
                [PYTEST_LOG.encode()],
            )
        finally:
            connection.close()

    thread = threading.Thread(target=report)
    thread.start()
    thread.join(30)
    return result["failure"]


@pytest.fixture
def ci_page(asgi_server, browser, fast_itsm_config, itsm_endpoints):
    UserFactory(username="oncall", roles=["operators"])
    context = browser.new_context(base_url=asgi_server.url)
    page = context.new_page()
    log_in(page, "oncall")
    yield page
    context.close()


def test_a_new_failure_appears_in_the_list_without_a_reload(ci_page):
    ci_page.goto("/ci/failures/")
    expect(ci_page.locator("[data-live-state]").first).to_have_text("connected", timeout=10_000)
    expect(ci_page.locator("tr[data-failure]")).to_have_count(0)

    created = reported("77")

    row = ci_page.locator(f'tr[data-failure="{created.pk}"]')
    expect(row).to_be_visible(timeout=10_000)
    expect(row).to_contain_text("Test failure")


def test_the_sla_countdown_moves_on_the_failure_page(ci_page):
    created = reported("78")
    ci_page.goto(f"/ci/failures/{created.pk}/")
    countdown = ci_page.locator("#sla-state .countdown")
    expect(countdown).to_have_text(re.compile(r"^3 h 59 min \d+ s left$"), timeout=5_000)
    first = countdown.inner_text()

    expect(countdown).not_to_have_text(first, timeout=5_000)


def test_the_dashboard_counts_a_new_failure_without_a_reload(ci_page):
    ci_page.goto("/ci/")
    expect(ci_page.locator("[data-live-state]").first).to_have_text("connected", timeout=10_000)
    expect(ci_page.locator("#test_failure-count")).to_have_text("0")
    ci_page.evaluate("window.sameDocument = true")  # gone if the page reloaded

    created = reported("79")

    expect(ci_page.locator("#test_failure-count")).to_have_text("1", timeout=10_000)
    row = ci_page.locator(f'tr[data-escalation="{created.escalation_id}"]')
    expect(row).to_contain_text("Test failure")
    expect(row.locator(".countdown")).to_have_text(re.compile(r"^3 h 59 min \d+ s left$"))
    assert ci_page.evaluate("window.sameDocument") is True


def test_the_dashboard_override_button_leads_to_the_request_form(ci_page):
    created = reported("80")
    ci_page.goto("/ci/")

    ci_page.get_by_role("link", name="Request override").click()

    expect(ci_page).to_have_url(re.compile(rf"/ci/failures/{created.pk}/#override$"))
    form = ci_page.locator("#override-request")
    expect(form).to_be_visible()
    form.get_by_label("Justification").fill("hotfix for the release, tests fixed upstream")
    form.get_by_role("button", name="Request override").click()
    expect(ci_page.locator("#override-requests")).to_contain_text("Pending")
