"""The service catalog's pages in a real browser (Debian chromium) on Django's live server,
against the bundled fakes and the demo catalog of ``make run``: an operator submits
``demo-onboarding`` from the navigation, the worker's run (called here, as the worker would,
once the page has queued it) fails at the third of four components, the request page shows
``escalated``, the component timeline and the cleanup guidance, and once the outbox is delivered
the escalation ticket's key links to the fake Jira; the list filters by status; a bad
submission comes back as the form with its error."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from escalation.catalog_demo import load_demo_catalog
from escalation.devstack import DemoCatalog
from escalation.models import CatalogBundle, Request
from escalation.services import fulfillment
from tests.browser import log_in
from tests.factories import UserFactory
from tests.itsm.deliveries import sweep_now

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # committed data, for the live server's thread
    pytest.mark.usefixtures("fast_itsm_config"),
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]

ONBOARDING = {"Full name": "Grace Hopper", "E-mail": "grace@example.com"}
START_DATE = "2027-01-04"
REFUSED = "Failed to load resource: the server responded with a status of 400 (Bad Request)"
# Set to a folder to keep screenshots of the pages (for looking at their layout).
SCREENSHOTS = os.environ.get("CATALOG_SCREENSHOTS", "")


def screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


@pytest.fixture
def demo(settings, itsm_endpoints, fakes, tmp_path):
    """The settings ``make run`` gives (the fakes everywhere, and what DemoCatalog adds) and the
    demo catalog."""
    added = DemoCatalog(tmp_path).start({"JIRA_BASE_URL": itsm_endpoints["JIRA_BASE_URL"]})
    settings.CATALOG_HTTP_ALLOWED_HOSTS = added["CATALOG_HTTP_ALLOWED_HOSTS"].split(",")
    settings.CATALOG_HTTP_ALLOWED_NETWORKS = []
    settings.CATALOG_ESCALATION_JIRA_PROJECT = ""  # the seed's ORCHESTRATION / Incident
    settings.CATALOG_ESCALATION_JIRA_ISSUE_TYPE = ""
    load_demo_catalog()
    return added


@pytest.fixture
def worker_queue():
    """What the pages hand to the worker: the test runs each request as the worker would."""
    queued: list[str] = []
    fulfillment.set_dispatcher(queued.append)
    yield queued
    from escalation import tasks

    fulfillment.set_dispatcher(tasks.queue_catalog_request)


@pytest.fixture
def catalog_page(page, live_server, demo, worker_queue):
    UserFactory(username="catalog-operator", email="ops@example.com", roles=["operators"])
    errors: list[str] = []
    # The live server is WSGI: the base page's status socket fails there, and only that may.
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and "WebSocket" not in message.text
            and errors.append(message.text)
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, "catalog-operator")
    page.errors = errors
    return page


def assert_fits_the_window(page) -> None:
    """Nothing on the page is wider than the window (no sideways scrolling)."""
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), (
        "the page is wider than the window"
    )


def submit_onboarding(page) -> None:
    """From the navigation to a submitted ``demo-onboarding`` request."""
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Requests").click()
    expect(page.get_by_role("heading", name="Requests", level=1)).to_be_visible()
    page.get_by_role("link", name="New request").click()
    expect(page.get_by_role("heading", name="New request", level=1)).to_be_visible()
    page.get_by_label("Catalog item", exact=True).select_option("demo-onboarding")
    page.get_by_role("button", name="Choose").click()
    expect(page.get_by_label("Full name")).to_be_visible()
    assert_fits_the_window(page)
    screenshot(page, "new")
    form = page.get_by_role("form", name="Submit a catalog request")
    for label, value in ONBOARDING.items():
        form.get_by_label(label).fill(value)
    form.get_by_label("Start date").fill(START_DATE)
    form.get_by_role("button", name="Submit request").click()


def test_an_escalated_onboarding_shows_its_timeline_cleanup_and_jira_ticket(
    catalog_page, worker_queue, fakes
):
    page = catalog_page
    submit_onboarding(page)

    expect(page).to_have_url(re.compile(r"/ci/requests/[0-9a-f-]{36}/$"))
    request = Request.objects.get()
    expect(page.get_by_role("heading", level=1)).to_have_text("Request for demo-onboarding")
    expect(page.locator("#request-status")).to_have_text(re.compile("Pending", re.I))
    expect(page.locator(".messages")).to_contain_text("it runs in the background")
    assert request.request_data == {
        "full_name": "Grace Hopper",
        "email": "grace@example.com",
        "start_date": START_DATE,
    }
    assert worker_queue == [str(request.pk)]  # queued for the worker, not run yet

    assert fulfillment.fulfill(request.pk) == "escalated"  # the worker's run
    page.reload()

    expect(page.locator("#request-status")).to_have_text(re.compile("escalated", re.I))
    timeline = page.locator("#component-timeline tbody tr")
    expect(timeline).to_have_count(4)
    statuses = [row.locator("td").nth(3) for row in timeline.all()]
    for cell, status in zip(statuses, ("succeeded", "succeeded", "failed", "not_run"), strict=True):
        expect(cell).to_have_text(status)
    failed = page.locator('#component-timeline tr[data-component="hr_account"]')
    expect(failed.locator("td").last).to_contain_text("answered 404")
    expect(
        page.locator('#component-timeline tr[data-component="laptop_order"] td').last
    ).to_have_text("")
    access_key = request.executions.get(component_id="access_ticket").output["key"]
    expect(page.locator('#component-timeline tr[data-component="access_ticket"]')).to_contain_text(
        access_key
    )
    expect(page.locator("#escalation")).to_contain_text("hr_account")
    expect(page.locator("#escalation pre")).to_contain_text("answered 404")
    expect(page.locator("#escalation-ticket")).to_contain_text("queued")

    cleanup = page.locator("#partial-state li")
    expect(cleanup).to_have_count(2)
    expect(cleanup.nth(0)).to_contain_text("access_ticket")
    expect(cleanup.nth(0)).to_contain_text(access_key)
    expect(cleanup.nth(0)).to_contain_text("Close the access ticket as Won't Do")
    expect(cleanup.nth(1)).to_contain_text("welcome_message")
    expect(cleanup.nth(1)).to_contain_text("Post a follow-up in the channel")
    expect(page.locator("#partial-state")).not_to_contain_text("Delete the HR account")
    expect(page.locator("#partial-state")).not_to_contain_text("Cancel the laptop request")

    assert sweep_now() == {"delivered": 1}
    request.refresh_from_db()
    assert request.escalation_ticket_id.startswith("ORCHESTRATION-")
    page.reload()

    link = page.locator("#escalation-ticket a")
    expect(link).to_have_text(request.escalation_ticket_id)
    expect(link).to_have_attribute(
        "href", f"{fakes.base_url('jira')}/browse/{request.escalation_ticket_id}"
    )
    assert_fits_the_window(page)
    screenshot(page, "detail")
    assert page.errors == []


def test_the_list_filters_by_status_through_its_form(catalog_page):
    page = catalog_page
    submit_onboarding(page)
    escalated = Request.objects.get()
    fulfillment.fulfill(escalated.pk)
    page.goto("/ci/requests/new/?item=demo-hello")
    page.get_by_label("Message").fill("hi")
    page.get_by_role("button", name="Submit request").click()
    expect(page).to_have_url(re.compile(r"/ci/requests/[0-9a-f-]{36}/$"))
    completed = Request.objects.exclude(pk=escalated.pk).get()
    assert fulfillment.fulfill(completed.pk) == "completed"

    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Requests").click()
    rows = page.locator("#request-records tbody tr")
    expect(rows).to_have_count(2)
    filters = page.get_by_role("form", name="Filter requests")
    filters.get_by_label("Status").select_option("escalated")
    filters.get_by_role("button", name="Filter").click()

    expect(page).to_have_url(re.compile(r"status=escalated"))
    expect(rows).to_have_count(1)
    row = page.locator(f'#request-records tr[data-request="{escalated.pk}"]')
    expect(row).to_contain_text("demo-onboarding")
    expect(row).to_contain_text(re.compile("escalated", re.I))
    assert_fits_the_window(page)
    screenshot(page, "list")
    row.get_by_role("link").first.click()
    expect(page.locator("#request-status")).to_have_text(re.compile("escalated", re.I))
    assert page.errors == []


def test_a_bad_submission_shows_its_error_on_the_form(catalog_page):
    page = catalog_page
    page.goto("/ci/requests/new/?item=demo-onboarding")
    form = page.get_by_role("form", name="Submit a catalog request")
    form.get_by_label("E-mail").fill("grace@example.com")
    posts: list[str] = []
    page.on("request", lambda sent: sent.method == "POST" and posts.append(sent.url))
    form.get_by_role("button", name="Submit request").click()
    # The browser itself holds back a form whose required field is empty.
    assert form.get_by_label("Full name").evaluate("field => field.validity.valueMissing")
    expect(form.locator("input:invalid")).to_have_count(1)
    assert posts == []

    # Blanks pass the browser's check; the server's answer is the form with the field's error.
    form.get_by_label("Full name").fill("   ")
    with page.expect_response(lambda answer: answer.request.method == "POST") as answer:
        form.get_by_role("button", name="Submit request").click()
    assert answer.value.status == 400
    expect(page.get_by_role("heading", name="New request", level=1)).to_be_visible()
    invalid = form.locator(".field.invalid")
    expect(invalid).to_have_count(1)
    expect(invalid.locator("label")).to_have_text("Full name")
    expect(invalid.locator(".field-error")).to_have_text("This field is required.")
    expect(form.get_by_label("E-mail")).to_have_value("grace@example.com")
    assert_fits_the_window(page)
    screenshot(page, "new-error")

    # An item that declares no inputs takes its data as a JSON object.
    CatalogBundle.objects.filter(name="demo-hello").update(inputs=[])
    page.goto("/ci/requests/new/?item=demo-hello")
    data = form.get_by_label("Request data (a JSON object)")
    data.fill('{"text": "hi"')
    form.get_by_role("button", name="Submit request").click()
    expect(form.locator(".field.invalid .field-error")).to_contain_text("Not JSON")
    expect(data).to_have_value('{"text": "hi"')
    expect(page.get_by_label("Catalog item", exact=True)).to_have_value("demo-hello")
    data.fill('["hi"]')
    form.get_by_role("button", name="Submit request").click()
    expect(page.get_by_role("alert")).to_contain_text("JSON object")
    screenshot(page, "new-json")
    assert not Request.objects.exists()
    # Chromium logs each refused form's 400 answer (the view's status for a form with errors),
    # and nothing else.
    assert page.errors == [REFUSED] * 3
