"""The export page in a real browser (Debian chromium) against uvicorn serving the portal's ASGI
application, the fake Jira, and exports run by a worker thread as a Celery worker would run them:
the demo session (12 tickets, dependencies, an attachment) exported live with the progress bar
moving, then the results with their Jira links; an export the fake Jira refuses mid-way, its
failure panel, and the retry that completes it with one issue per ticket; and the page following
an export by polling the status endpoint when the socket cannot connect."""

from __future__ import annotations

import itertools
import re
import threading

import pytest
from django.db import connection, connections
from playwright.sync_api import expect

from exports.models import ExportSession
from exports.services import engine, lifecycle
from exports.services.demo import TICKETS, create_demo_session
from tests.browser import log_in
from tests.escalation.conftest import AsgiServer
from tests.exports import export_support
from tests.exports.export_support import assert_exactly_once
from tests.factories import UserFactory

jira = export_support.jira

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,  # the worker thread's pushes reach the server's loop through Redis
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]

CREATE = {"platform": "jira", "path_contains": "/rest/api/3/issue", "method": "POST"}
RECORD_POLLS = """
window.sentPolls = [];
const originalFetch = window.fetch;
window.fetch = function (url, options) {
  if (String(url).includes("/api/jira/export-status/")) window.sentPolls.push(performance.now());
  return originalFetch.apply(this, arguments);
};
"""
MOVING = """() => {
  const bar = document.getElementById("export-progress");
  return bar.value > 0 && bar.value < 100;
}"""


@pytest.fixture
def server(transactional_db, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    database = connections.settings["default"]
    previous = database.get("CONN_MAX_AGE", 0)
    database["CONN_MAX_AGE"] = 0
    running = AsgiServer()
    running.start()
    try:
        yield running
    finally:
        running.stop()
        database["CONN_MAX_AGE"] = previous


@pytest.fixture
def worker(jira, settings):
    """Each export the page starts runs in a thread of its own (a worker), paced so the page can
    be seen following it."""
    settings.EXPORT_TICKET_DELAY_SECONDS = 0.4
    threads: list[threading.Thread] = []

    def dispatch(session_id: str, task_id: str) -> None:
        def work() -> None:
            try:
                engine.run_export(session_id, task_id)
            finally:
                connection.close()

        thread = threading.Thread(target=work, daemon=True)
        threads.append(thread)
        thread.start()

    lifecycle.set_dispatcher(dispatch)
    yield threads
    lifecycle.set_dispatcher(None)
    for thread in threads:
        thread.join(60)


@pytest.fixture
def page(server, worker, browser):
    UserFactory(username="planner", roles=["operators"])
    context = browser.new_context(base_url=server.url)
    opened = context.new_page()
    log_in(opened, "planner")
    yield opened
    context.close()


def demo_session() -> ExportSession:
    return create_demo_session("OPS")


def expect_results(page, session: ExportSession, jira_url: str) -> None:
    rows = page.locator("#results-table tbody tr")
    expect(rows).to_have_count(len(TICKETS))
    session.refresh_from_db()
    first = session.tickets.get(order=1)
    link = page.locator(f'#results-table tr[data-ticket="{first.pk}"] a')
    expect(link).to_have_text(first.jira_ticket_key)
    expect(link).to_have_attribute("href", f"{jira_url}/browse/{first.jira_ticket_key}")
    expect(page.locator("#fixes-table tbody tr")).to_have_count(3)
    expect(page.locator("#fixes-table")).to_contain_text("Sprint not found")


def test_an_export_moves_live_and_ends_with_the_jira_links(page, jira):
    session = demo_session()
    page.goto(f"/exports/{session.pk}/export/")
    expect(page.locator("[data-live-state]")).to_have_text("connected", timeout=10_000)
    expect(page.locator("#progress-counts")).to_have_text("12 tickets to export")

    page.get_by_role("button", name="Start export").click()

    page.wait_for_function(MOVING, timeout=20_000)
    expect(page.locator("#progress-stage")).to_contain_text(
        re.compile(r"Creating ticket \d+ of 12")
    )
    expect(page.locator("#complete-panel")).to_be_visible(timeout=30_000)
    expect(page.locator("#export-progress")).to_have_attribute("value", "100")
    expect(page.locator("#complete-summary")).to_contain_text("12 tickets created in Jira")
    expect(page.locator("#export-status")).to_have_text("completed")
    expect(page.get_by_role("button", name="Start export")).to_be_hidden()
    expect_results(page, session, jira.base_url("jira"))
    assert_exactly_once(jira, session)


def test_a_refused_export_shows_what_to_do_and_its_retry_completes_it(page, jira):
    session = demo_session()
    page.goto(f"/exports/{session.pk}/export/")
    expect(page.locator("[data-live-state]")).to_have_text("connected", timeout=10_000)
    page.get_by_role("button", name="Start export").click()
    page.wait_for_function(
        "() => document.getElementById('export-progress').value >= 25", timeout=20_000
    )

    jira.faults(status=403, **CREATE)  # Jira refuses from now on: permissions revoked

    panel = page.locator("#failure-panel")
    expect(panel).to_be_visible(timeout=30_000)
    expect(panel.locator("#failure-category")).to_have_text("Admin required")
    expect(panel.locator("#failure-message")).to_contain_text("refused permission in project OPS")
    expect(panel.locator("#failure-actions li")).to_have_count(2)
    expect(panel.locator("#failure-actions")).to_contain_text("Retry the export once it is fixed")
    expect(panel.locator("#failure-ticket")).to_have_text(re.compile(r"^Stopped at ticket #\d+\.$"))
    expect(page.locator("#export-status")).to_have_text("failed")
    session.refresh_from_db()
    assert session.status == ExportSession.Status.EXPORT_FAILED
    created_before = session.tickets.exclude(jira_ticket_key="").count()
    assert 3 <= created_before < len(TICKETS)  # it failed mid-way
    expect(page.locator("#results-table tbody tr")).to_have_count(created_before)

    jira.clear_faults()
    page.get_by_role("button", name="Retry export").click()

    expect(page.locator("#complete-panel")).to_be_visible(timeout=30_000)
    expect(panel).to_be_hidden()
    expect_results(page, session, jira.base_url("jira"))
    assert_exactly_once(jira, session)
    session.refresh_from_db()
    assert lifecycle.retries_used(session) == 1


def test_without_the_socket_the_page_follows_the_export_by_polling(page, jira):
    session = demo_session()
    page.route_web_socket(re.compile(r".*/api/jira/export/progress/.*"), lambda ws: ws.close())
    answers: list[int] = []
    page.on(
        "response",
        lambda response: (
            "/api/jira/export-status/" in response.url and answers.append(response.status)
        ),
    )
    page.goto(f"/exports/{session.pk}/export/")
    expect(page.locator("[data-live-state]")).to_contain_text("polling")

    page.get_by_role("button", name="Start export").click()

    page.wait_for_function(MOVING, timeout=20_000)
    expect(page.locator("#complete-panel")).to_be_visible(timeout=30_000)
    expect_results(page, session, jira.base_url("jira"))
    expect(page.locator("[data-live-state]")).to_contain_text("polling")
    assert answers.count(200) >= 2  # progress and completion both came from polling
    assert 429 not in answers  # never faster than the endpoint's 1 request per 2 s


def test_polling_waits_out_a_429s_retry_after_and_never_polls_faster_than_every_2_s(page, jira):
    session = demo_session()
    page.route_web_socket(re.compile(r".*/api/jira/export/progress/.*"), lambda ws: ws.close())
    # When the page sent each poll, by the browser's clock.
    page.add_init_script(RECORD_POLLS)
    answers: list[int] = []

    def status(route) -> None:
        if len(answers) == 1:  # the first poll after the start: the endpoint says "not so fast"
            answers.append(429)
            route.fulfill(status=429, headers={"Retry-After": "3"}, json={"error": {}})
            return
        answers.append(200)
        route.continue_()

    page.route(re.compile(r".*/api/jira/export-status/.*"), status)
    with page.expect_request(re.compile(r".*/api/jira/export-status/.*")):
        page.goto(f"/exports/{session.pk}/export/")  # the socket closes: a poll at once
    expect(page.locator("[data-live-state]")).to_contain_text("polling")

    page.get_by_role("button", name="Start export").click()

    expect(page.locator("#complete-panel")).to_be_visible(timeout=30_000)
    sent = page.evaluate("window.sentPolls")
    assert len(sent) == len(answers) >= 3
    gaps = [(later - earlier) / 1000 for earlier, later in itertools.pairwise(sent)]
    assert gaps[answers.index(429)] >= 3.0  # Retry-After: 3
    assert min(gaps) >= 2.0  # the endpoint's 1 request per 2 s
