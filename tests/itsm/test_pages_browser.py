""" "New ticket from template" in a real browser: the live preview, inline errors, dry run, create.

Debian chromium driven by Playwright against Django's live server, as in
``tests/portal/test_browser.py`` (whose notes on Playwright's event loop apply here: Playwright and
the browser live for this module only). Nothing leaves the process: the outbox's delivery task is
replaced by a list, so "Create ticket" records the ticket and its message and stops there.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from itsm import tasks
from itsm.models import OutboxMessage, Ticket
from tests.browser import PASSWORD
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # committed data, for the live server's thread
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]

NEW_TICKET = "/itsm/tickets/new/"


@pytest.fixture(autouse=True)
def configured_platforms(settings):
    settings.ITSM_ENDPOINTS = {
        **settings.ITSM_ENDPOINTS,
        "SERVICENOW_BASE_URL": "https://servicenow.invalid",
        "JIRA_BASE_URL": "https://jira.invalid",
        "JIRA_PROJECT_KEY": "OPS",
    }


@pytest.fixture
def queued_deliveries(monkeypatch) -> list[int]:
    """The outbox messages whose delivery would have been queued for the worker."""
    queued: list[int] = []
    monkeypatch.setattr(
        tasks,
        "deliver_outbox_message",
        SimpleNamespace(delay=lambda message_id, token=None: queued.append(message_id)),
    )
    return queued


def is_expected(message) -> bool:
    """Console errors that are the site working as designed, not the page failing: Chromium
    reports a document answered with an error status (the form re-rendered with 422, on purpose),
    and the portal has no favicon yet (the login page asks for one)."""
    url = message.location.get("url", "")
    if url.endswith("/favicon.ico"):
        return True
    return url.endswith(NEW_TICKET) and message.text.startswith(
        "Failed to load resource: the server responded with a status of 422"
    )


@pytest.fixture
def console_errors(page) -> list[str]:
    errors: list[str] = []

    def collect(message) -> None:
        if message.type == "error" and not is_expected(message):
            errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", collect)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@pytest.fixture
def operator_page(page, live_server, console_errors):
    """Logged in and on the new-ticket page (straight there: the dashboard's WebSocket has no
    server under the live server, and its reconnect errors are not this page's)."""
    UserFactory(username="ticket-operator", roles=["operators"])
    page.goto(f"/accounts/login/?next={NEW_TICKET}")
    page.get_by_label("Username").fill("ticket-operator")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}{NEW_TICKET}")
    return page


def preview_value(page, field: str):
    return page.locator(f'#preview-fields [data-field="{field}"] .value')


def preview_error(page, field: str):
    return page.locator(f'#preview-fields [data-field="{field}"] .field-error')


def fill_rca_incident(page, job_name: str = "build-42") -> None:
    page.get_by_label("Job id", exact=True).fill("build-42")
    page.get_by_label("job_name", exact=True).fill(job_name)
    page.get_by_label("job_id", exact=True).fill("build-42")
    page.get_by_label("severity", exact=True).fill("high")
    page.get_by_label("details", exact=True).fill("Failed twice.\nSee the log.")
    page.get_by_label("priority", exact=True).fill("2")


def test_choosing_a_platform_filters_the_templates_and_rebuilds_the_variables(
    operator_page, console_errors
):
    page = operator_page
    template = page.get_by_label("Template", exact=True)

    page.get_by_label("Platform").select_option(label="Jira")

    expect(template.locator("option")).to_have_text(["rca_issue (file)"])
    expect(page.get_by_label("job_name", exact=True)).to_be_visible()
    expect(page.locator("#template-defaults")).to_have_text(
        "Filled in from the settings: project = OPS."
    )
    expect(preview_value(page, "project")).to_have_text("OPS")
    expect(page).to_have_url(re.compile(r"\?platform=jira&template=rca_issue$"))
    expect(page.get_by_role("button", name="Show variables")).to_be_hidden()

    page.get_by_label("Platform").select_option(label="ServiceNow")

    expect(template.locator("option")).to_have_text(["rca_incident (file)"])
    expect(preview_value(page, "short_description")).to_have_text("RCA Required: {job_name}")
    assert console_errors == []


def test_preview_follows_typing_and_errors_appear_beside_the_inputs(operator_page, console_errors):
    page = operator_page
    status = page.get_by_role("status")
    job_name_error = page.locator("#var-job_name-error")

    fill_rca_incident(page)

    expect(preview_value(page, "short_description")).to_have_text("RCA Required: build-42")
    expect(preview_value(page, "description")).to_have_text(
        "Job ID: build-42\nSeverity: high\n\nFailed twice.\nSee the log."
    )
    expect(status).to_have_text("Ready: these fields pass ServiceNow's checks.")

    page.get_by_label("job_name", exact=True).fill("")

    expect(job_name_error).to_have_text("job_name is required by this template")
    expect(page.get_by_label("job_name", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(status).to_have_text("1 problem to fix before creating.")

    page.get_by_label("job_name", exact=True).fill("x" * 150)

    # Shown once, under the field it is about; the input feeding it is marked and points there.
    message = "short_description is 164 characters; the limit is 160"
    expect(preview_error(page, "short_description")).to_have_text(message)
    expect(job_name_error).to_be_hidden()
    expect(page.locator("#var-job_name-affects")).to_have_text(
        "Feeds short_description: see the problem in the preview."
    )
    expect(page.get_by_label("job_name", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("job_name", exact=True)).to_have_accessible_description(
        re.compile(re.escape(message))
    )
    expect(page.get_by_text(message)).to_have_count(1)
    expect(status).to_have_text("1 problem to fix before creating.")

    page.get_by_label("job_name", exact=True).fill("build-42")

    expect(page.locator("#var-job_name-affects")).to_be_hidden()
    expect(page.get_by_label("job_name", exact=True)).not_to_have_attribute("aria-invalid", "true")
    expect(status).to_have_text("Ready: these fields pass ServiceNow's checks.")
    assert console_errors == []


def test_a_description_too_long_is_shown_once_and_marks_the_three_inputs_feeding_it(
    operator_page, console_errors
):
    page = operator_page
    fill_rca_incident(page)

    page.get_by_label("details", exact=True).fill("x" * 5_000)

    message = re.compile(r"^description is \d+ characters; the limit is 4000$")
    expect(preview_error(page, "description")).to_have_text(message)
    expect(page.get_by_text(message)).to_have_count(1)
    for name in ("job_id", "severity", "details"):
        expect(page.locator(f"#var-{name}-affects")).to_have_text(
            "Feeds description: see the problem in the preview."
        )
        expect(page.locator(f"#var-{name}-error")).to_be_hidden()
    expect(page.locator("#var-job_name-affects")).to_be_hidden()
    expect(page.get_by_role("status")).to_have_text("1 problem to fix before creating.")
    assert console_errors == []


def test_a_preview_the_api_refuses_shows_the_reason_beside_the_variable(
    operator_page, console_errors
):
    page = operator_page
    fill_rca_incident(page)
    expect(page.get_by_role("status")).to_have_text("Ready: these fields pass ServiceNow's checks.")

    # Over the API's 32,000 characters a variable: the preview answers 400 with the reason.
    page.get_by_label("details", exact=True).fill("x" * 32_001)

    expect(page.locator("#var-details-error")).to_contain_text("32,000 characters")
    expect(page.get_by_role("status")).to_have_text(
        "Preview refused: 1 problem to fix before creating."
    )
    expect(page.get_by_text("The request has invalid fields.")).to_have_count(0)

    page.get_by_label("details", exact=True).fill("Failed twice.")

    expect(page.locator("#var-details-error")).to_be_hidden()
    expect(page.get_by_role("status")).to_have_text("Ready: these fields pass ServiceNow's checks.")
    assert [error for error in console_errors if "status of 400" not in error] == []


def test_bidi_controls_typed_into_a_variable_show_as_code_points_in_the_live_preview(
    operator_page, console_errors
):
    page = operator_page
    fill_rca_incident(page, job_name="evil\u202eexe.txt")

    expect(preview_value(page, "short_description")).to_have_text(
        "RCA Required: evil<U+202E>exe.txt"
    )
    assert console_errors == []


def test_dry_run_shows_the_result_and_create_lands_on_the_pending_ticket(
    operator_page, console_errors, queued_deliveries, live_server, tmp_path
):
    page = operator_page
    fill_rca_incident(page, job_name="x" * 150)

    page.get_by_role("button", name="Dry run").click()

    # Refused by the server: the same errors, in the same places, as the live preview.
    expect(preview_error(page, "short_description")).to_have_text(
        "short_description is 164 characters; the limit is 160"
    )
    expect(page.locator("#var-job_name-affects")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("1 problem to fix before creating.")
    page.get_by_label("job_name", exact=True).fill("build-42")
    page.get_by_role("button", name="Dry run").click()

    expect(page.get_by_role("status")).to_contain_text("Dry run passed")
    expect(preview_value(page, "short_description")).to_have_text("RCA Required: build-42")
    assert not Ticket.objects.exists()
    page.screenshot(path=str(tmp_path / "new-ticket.png"), full_page=True)

    page.get_by_role("button", name="Create ticket").click()

    ticket = Ticket.objects.get()
    expect(page).to_have_url(f"{live_server.url}/itsm/tickets/{ticket.pk}/")
    expect(page.locator("#ticket-status")).to_have_text("Pending")
    expect(page.get_by_text(f"Ticket #{ticket.pk} recorded")).to_be_visible()
    assert ticket.fields["description"].endswith("Failed twice.\nSee the log.")
    assert queued_deliveries == [OutboxMessage.objects.get(ticket=ticket).pk]
    assert console_errors == []


# --- the ticket list: search, sorting, paging, timestamps ---------------------------------------

TICKET_LIST = "/itsm/tickets/"


@pytest.fixture
def list_page(page, live_server, console_errors):
    """Logged in as an operator, on the ticket list, with 55 tickets a minute apart."""
    from datetime import UTC, datetime, timedelta

    from tests.itsm.test_pages import make_ticket

    start = datetime(2025, 10, 12, 9, 0, tzinfo=UTC)
    for number in range(55):
        make_ticket(job_id=f"job-{number:02}", created_at=start + timedelta(minutes=number))
    make_ticket(job_id="nightly-build", created_at=start - timedelta(days=1))
    UserFactory(username="list-operator", roles=["operators"])
    page.goto(f"/accounts/login/?next={TICKET_LIST}")
    page.get_by_label("Username").fill("list-operator")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}{TICKET_LIST}")
    return page


def job_id_cells(page):
    return page.locator("#ticket-records tbody td.job-id")


def test_searching_the_ticket_list_keeps_the_term_and_finds_the_ticket(list_page, console_errors):
    page = list_page

    page.get_by_label("Search").fill("nightly")
    page.get_by_role("button", name="Filter").click()

    expect(job_id_cells(page)).to_have_text(["nightly-build"])
    expect(page.get_by_label("Search")).to_have_value("nightly")
    expect(page).to_have_url(re.compile(r"[?&]q=nightly"))
    page.get_by_role("link", name="Clear filters").click()
    expect(job_id_cells(page)).to_have_count(50)
    assert console_errors == []


def test_sorting_by_a_header_and_paging_keep_each_other(list_page, console_errors):
    page = list_page
    job_header = page.get_by_role("columnheader", name="Job id")

    page.get_by_role("link", name="Job id").click()

    expect(job_header).to_have_attribute("aria-sort", "ascending")
    expect(job_id_cells(page).first).to_have_text("job-00")

    page.get_by_role("link", name="Next").click()

    expect(page.locator(".page-position")).to_contain_text("Page 2 of 2")
    expect(job_id_cells(page)).to_have_text(
        ["job-50", "job-51", "job-52", "job-53", "job-54", "nightly-build"]
    )
    expect(job_header).to_have_attribute("aria-sort", "ascending")

    page.get_by_role("link", name="Job id").click()  # the other way round, from page 1

    expect(job_header).to_have_attribute("aria-sort", "descending")
    expect(job_id_cells(page).first).to_have_text("nightly-build")
    expect(page.locator(".page-position")).to_contain_text("Page 1 of 2")
    assert console_errors == []


def test_a_page_number_past_the_end_lands_on_the_last_page(list_page, live_server, console_errors):
    page = list_page

    response = page.goto(f"{TICKET_LIST}?page=999")

    assert response.status == 200
    expect(page.locator(".page-position")).to_contain_text("Page 2 of 2")
    expect(page.get_by_role("link", name="Previous")).to_be_visible()
    assert console_errors == []


def test_a_timestamp_shows_the_iso_value_on_hover_and_its_relative_part_keeps_up(
    page, live_server, console_errors
):
    from datetime import UTC, datetime, timedelta

    from tests.itsm.test_pages import make_ticket

    created = datetime(2025, 10, 12, 9, 57, tzinfo=UTC)
    make_ticket(job_id="hover-me", created_at=created)
    UserFactory(username="time-operator", roles=["operators"])
    # The browser's clock starts 3 minutes after the ticket; the server's "now" is the real one,
    # so the relative part is checked after the script has run.
    page.clock.install(time=created + timedelta(minutes=3))
    page.goto(f"/accounts/login/?next={TICKET_LIST}")
    page.get_by_label("Username").fill("time-operator")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}{TICKET_LIST}")
    stamp = page.locator("#ticket-records time.timestamp").last

    stamp.hover()

    expect(stamp).to_have_attribute("title", "2025-10-12T09:57:00+00:00")
    expect(stamp).to_have_attribute("datetime", "2025-10-12T09:57:00+00:00")
    expect(stamp).to_contain_text("2025-10-12 09:57:00 UTC")
    expect(stamp.locator(".relative")).to_have_text("(3 min ago)")

    page.clock.run_for(10 * 60 * 1000)  # ten minutes later, without reloading

    expect(stamp.locator(".relative")).to_have_text("(13 min ago)")
    assert console_errors == []
