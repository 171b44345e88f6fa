"""The CI report pages in a real browser (Debian chromium) on Django's live server: from the
navigation to yesterday's daily report, whose charts Chart.js (served from the portal's static
files) draws on their canvases, and the weekly analysis's charts."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from escalation.models import SlaRecord
from escalation.services import reports
from tests.browser import log_in
from tests.escalation.test_reports import escalation
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # committed data, for the live server's thread
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]

# The canvas's painted pixels (alpha not zero): a drawn chart has axes, labels and bars.
PAINTED_PIXELS = """(id) => {
  const canvas = document.getElementById(id);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i]) painted += 1; }
  return painted;
}"""
CHART_DATA = "(id) => Chart.getChart(document.getElementById(id)).data.datasets[0].data"


@pytest.fixture
def yesterday_with_failures():
    """Yesterday (portal time): a test failure resolved in time and a missed secret at 14:00."""
    yesterday = reports.local_today() - timedelta(days=1)
    zone = timezone.get_default_timezone()
    at = lambda hour: datetime.combine(yesterday, time(hour), tzinfo=zone)  # noqa: E731
    escalation(
        "test_failure", at(9), 240, SlaRecord.Status.RESOLVED_WITHIN_SLA, at(10), ("qa_analyst",)
    )
    escalation("security_secrets", at(14), 60, SlaRecord.Status.SLA_EXCEEDED)
    return yesterday


@pytest.fixture
def reports_page(page, live_server):
    UserFactory(username="reports-operator", roles=["operators"])
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
    log_in(page, "reports-operator")
    page.errors = errors
    return page


def test_yesterdays_daily_report_draws_its_charts(reports_page, yesterday_with_failures):
    page = reports_page
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="CI reports").click()
    expect(page.get_by_role("heading", name="CI reports", level=1)).to_be_visible()
    page.locator("#daily-reports a").first.click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(
        yesterday_with_failures.strftime("%-d %B %Y")
    )
    expect(page.locator("#compliance-rate")).to_have_text("50.0%")
    for chart in ("chart-sla", "chart-distribution", "chart-teams"):
        expect(page.locator(f"#{chart}")).to_have_attribute("data-drawn", "true")
        assert page.evaluate(PAINTED_PIXELS, chart) > 500
    assert page.evaluate(CHART_DATA, "chart-sla") == [1, 1, 0]
    assert page.get_by_role("link", name="Download CSV").get_attribute("href") == (
        f"/api/v1/ci/reports/daily?date={yesterday_with_failures.isoformat()}&format=csv"
    )
    assert page.errors == []


def test_the_weekly_analysis_draws_its_charts(reports_page, yesterday_with_failures):
    page = reports_page
    page.goto(f"/ci/reports/weekly/{yesterday_with_failures.isoformat()}/")

    for chart in ("chart-misses-by-hour", "chart-types", "chart-daily"):
        expect(page.locator(f"#{chart}")).to_have_attribute("data-drawn", "true")
        assert page.evaluate(PAINTED_PIXELS, chart) > 500
    misses = page.evaluate(CHART_DATA, "chart-misses-by-hour")
    assert len(misses) == 24 and misses[14] == 1 and sum(misses) == 1
    expect(page.locator("#recommendations")).to_contain_text("SLA compliance was 50%")
    assert page.errors == []
