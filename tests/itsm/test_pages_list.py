"""The ticket list page on the portal's list kit: the API's FilterSet, search, sorting, paging that
never answers 404, links that keep the filters, timestamps and bidi-safe text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from itsm.models import Ticket
from tests.factories import UserFactory
from tests.itsm.test_pages import make_ticket

TICKET_LIST = reverse("itsm:ticket-list")
NOW = datetime(2025, 10, 12, 10, 0, tzinfo=UTC)


@pytest.fixture
def operator_page(client, db):
    client.force_login(UserFactory(username="list-operator", roles=["operators"]))
    return client


def job_ids(response) -> list[str]:
    """The job ids of the rows shown, top to bottom."""
    return re.findall(r'<td class="job-id">([^<]*)</td>', response.content.decode())


def header(response, label: str) -> str:
    """The ``<th>`` of the column labelled ``label``."""
    pattern = rf"<th [^>]*>(?:(?!</th>).)*?>{label}<(?:(?!</th>).)*</th>"
    return re.search(pattern, response.content.decode(), re.S).group(0)


def header_link(response, label: str) -> str:
    return re.search(r'href="([^"]+)"', header(response, label)).group(1).replace("&amp;", "&")


# --- one FilterSet for the page and the API ----------------------------------------------------


def test_search_finds_tickets_by_part_of_the_job_id_template_or_external_key(operator_page):
    make_ticket(job_id="nightly-build-7")
    make_ticket(job_id="deploy-3", external_key="INC0042")
    make_ticket(job_id="lint-1", platform="jira", template_name="rca_issue")
    make_ticket(job_id="unrelated")

    assert job_ids(operator_page.get(TICKET_LIST, {"q": "BUILD"})) == ["nightly-build-7"]
    assert job_ids(operator_page.get(TICKET_LIST, {"q": "inc00"})) == ["deploy-3"]
    assert job_ids(operator_page.get(TICKET_LIST, {"q": "rca_issue"})) == ["lint-1"]


@pytest.mark.parametrize(
    "query",
    [
        {"q": "build"},
        {"platform": "jira"},
        {"status": "failed"},
        {"sla_breached": "true"},
        {"sla_breached": "false", "platform": "servicenow"},
        {"created_after": "2025-10-12T09:00:00Z"},
        {"created_before": "2025-10-12T09:00:00Z", "q": "job"},
        {"job_id": "job-build-2"},
        {"template_name": "rca_issue"},
    ],
)
def test_the_page_and_the_api_list_the_same_tickets_for_the_same_query(
    operator_page, operator_client, query
):
    make_ticket(job_id="job-build-1", created_at=NOW - timedelta(hours=3))
    make_ticket(job_id="job-build-2", status=Ticket.Status.FAILED, created_at=NOW)
    make_ticket(
        job_id="job-jira",
        platform="jira",
        template_name="rca_issue",
        sla_breached=True,
        created_at=NOW - timedelta(minutes=30),
    )

    page = job_ids(operator_page.get(TICKET_LIST, query))
    api = [
        row["job_id"] for row in operator_client.get("/api/v1/tickets/", query).json()["results"]
    ]

    assert page == api
    assert 0 < len(page) < 3


def test_filter_bar_offers_search_platform_status_sla_and_dates(operator_page):
    response = operator_page.get(TICKET_LIST, {"q": "nightly", "status": "failed"})

    assertContains(response, 'type="search" name="q" value="nightly"')
    assertContains(response, '<option value="failed" selected>Failed</option>', html=True)
    assertContains(response, '<option value="true">Breached</option>', html=True)
    assertContains(response, 'type="datetime-local" name="created_after"')
    assertContains(response, f'<a href="{TICKET_LIST}">Clear filters</a>', html=True)


def test_a_filter_value_that_is_not_valid_is_shown_and_ignored(operator_page):
    make_ticket(job_id="job-1")

    response = operator_page.get(TICKET_LIST, {"created_after": "yesterday-ish"})

    assert response.status_code == 200
    assert job_ids(response) == ["job-1"]
    assertContains(response, "Enter a valid date/time.")


def test_a_filter_set_by_a_link_but_not_shown_in_the_bar_is_kept_when_filtering(operator_page):
    make_ticket(job_id="exact-job")

    response = operator_page.get(TICKET_LIST, {"job_id": "exact-job"})

    assertContains(response, '<input type="hidden" name="job_id" value="exact-job">', html=True)
    assert job_ids(response) == ["exact-job"]


# --- sorting ------------------------------------------------------------------------------------


def test_tickets_are_newest_first_and_the_created_header_says_so(operator_page):
    make_ticket(job_id="older", created_at=NOW - timedelta(hours=1))
    make_ticket(job_id="newer", created_at=NOW)

    response = operator_page.get(TICKET_LIST)

    assert job_ids(response) == ["newer", "older"]
    assert 'aria-sort="descending"' in header(response, "Created")
    assert "▼" in header(response, "Created")
    assert "aria-sort" not in header(response, "Job id")


def test_a_header_link_sorts_by_its_column_and_a_second_click_reverses(operator_page):
    for job_id in ("b-job", "c-job", "a-job"):
        make_ticket(job_id=job_id)

    ascending = operator_page.get(
        TICKET_LIST + header_link(operator_page.get(TICKET_LIST), "Job id")
    )

    assert job_ids(ascending) == ["a-job", "b-job", "c-job"]
    assert 'aria-sort="ascending"' in header(ascending, "Job id")
    assert "▲" in header(ascending, "Job id")

    descending = operator_page.get(TICKET_LIST + header_link(ascending, "Job id"))

    assert job_ids(descending) == ["c-job", "b-job", "a-job"]
    assert 'aria-sort="descending"' in header(descending, "Job id")


def test_sort_links_keep_the_filters_and_start_again_at_page_one(operator_page):
    make_ticket(platform="jira", template_name="rca_issue", job_id="x-1")

    response = operator_page.get(TICKET_LIST, {"platform": "jira", "q": "x", "page": "3"})

    assert header_link(response, "Attempts") == "?platform=jira&q=x&ordering=attempts"


def test_tickets_without_an_sla_deadline_sort_last_in_both_directions(operator_page):
    make_ticket(job_id="no-deadline")
    make_ticket(job_id="soon", sla_due_at=NOW + timedelta(hours=1))
    make_ticket(job_id="later", sla_due_at=NOW + timedelta(hours=5))

    ascending = operator_page.get(TICKET_LIST, {"ordering": "sla_due_at"})
    descending = operator_page.get(TICKET_LIST, {"ordering": "-sla_due_at"})

    assert job_ids(ascending) == ["soon", "later", "no-deadline"]
    assert job_ids(descending) == ["later", "soon", "no-deadline"]


@pytest.mark.parametrize("ordering", ["idempotency_key", "-variables", "created_by__password", "?"])
def test_ordering_by_a_column_not_on_the_allow_list_falls_back_to_newest_first(
    operator_page, ordering
):
    make_ticket(job_id="older", created_at=NOW - timedelta(hours=1))
    make_ticket(job_id="newer", created_at=NOW)

    response = operator_page.get(TICKET_LIST, {"ordering": ordering})

    assert response.status_code == 200
    assert job_ids(response) == ["newer", "older"]


# --- paging -------------------------------------------------------------------------------------


@pytest.fixture
def fifty_five_tickets(db) -> None:
    for number in range(55):
        make_ticket(job_id=f"job-{number:02}", created_at=NOW + timedelta(minutes=number))


@pytest.mark.parametrize(
    ("page_number", "shown", "first_job"),
    [("abc", 1, "job-54"), ("0", 1, "job-54"), ("-1", 1, "job-54"), ("999", 2, "job-04")],
)
def test_a_bad_or_past_the_end_page_shows_the_nearest_page_instead_of_404(
    operator_page, fifty_five_tickets, page_number, shown, first_job
):
    response = operator_page.get(TICKET_LIST, {"page": page_number})

    assert response.status_code == 200
    assertContains(response, f"Page {shown} of 2")
    assert job_ids(response)[0] == first_job


def test_pager_links_keep_the_filters_and_the_sort(operator_page, fifty_five_tickets):
    response = operator_page.get(TICKET_LIST, {"q": "job", "ordering": "job_id"})

    assertContains(response, 'href="?q=job&amp;ordering=job_id&amp;page=2" rel="next"')
    assertContains(response, "1\u201350 of 55 tickets")
    second = operator_page.get(TICKET_LIST, {"q": "job", "ordering": "job_id", "page": "2"})
    assert job_ids(second) == ["job-50", "job-51", "job-52", "job-53", "job-54"]
    assertContains(second, 'href="?q=job&amp;ordering=job_id&amp;page=1" rel="prev"')


def test_an_empty_result_says_nothing_matches_and_has_no_pager(operator_page):
    make_ticket(job_id="job-1")

    response = operator_page.get(TICKET_LIST, {"q": "nothing-like-this", "page": "5"})

    assert response.status_code == 200
    assertContains(response, "No tickets match these filters")
    assertNotContains(response, 'class="pagination"')


def test_list_queries_do_not_grow_with_rows_filters_or_sorting(
    operator_page, django_assert_max_num_queries
):
    for number in range(60):
        make_ticket(job_id=f"job-{number}", created_by=UserFactory(), sla_breached=number % 2 == 0)

    # session, user, the user's groups (the role, asked by the view and the navigation), the
    # count, one page of tickets with their creators
    with django_assert_max_num_queries(5):
        response = operator_page.get(
            TICKET_LIST,
            {"q": "job", "sla_breached": "true", "ordering": "-attempts", "page": "2"},
        )

    assert response.status_code == 200


# --- what a row shows ---------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_the_list_shows_created_and_sla_due_as_timestamps(operator_page):
    make_ticket(created_at=NOW - timedelta(minutes=3), sla_due_at=NOW + timedelta(hours=2))

    response = operator_page.get(TICKET_LIST)

    assertContains(
        response,
        '<time class="timestamp" datetime="2025-10-12T09:57:00+00:00" '
        'title="2025-10-12T09:57:00+00:00">2025-10-12 09:57:00 UTC '
        '<span class="relative" data-relative>(3 min ago)</span></time>',
        html=True,
    )
    assertContains(response, "(in 2 h)")


def test_bidi_controls_in_a_job_id_are_shown_not_obeyed(operator_page):
    make_ticket(job_id="evil\u202eexe.txt", external_key="OPS-\u2066-1")

    response = operator_page.get(TICKET_LIST)

    assertContains(response, '<td class="job-id">evil&lt;U+202E&gt;exe.txt</td>', html=True)
    assertContains(response, "OPS-&lt;U+2066&gt;-1")
    assert "\u202e" not in response.content.decode()
    assert "\u2066" not in response.content.decode()
