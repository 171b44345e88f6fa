"""The CI pages: lists on the page kit (same FilterSets as the API), the failure's page with its
evidence, group, routing, notifications, SLA and timeline, the forms, and the live socket."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse

from escalation.models import Escalation, FailureEvent
from escalation.services.ingest import FailureReport, report_failure
from tests.escalation.test_pipeline import GITLEAKS_LOG, PYTEST_LOG
from tests.factories import UserFactory
from tests.portal.test_live_status import WebsocketClient, session_cookie_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_itsm_config")]


def failure(run_id: str = "1", log: str = PYTEST_LOG, **overrides) -> FailureEvent:
    fields = {"repository": "acme/shop", "job": "unit-tests", "run_id": run_id, "pr_number": 7}
    fields.update(overrides)
    created, _ = report_failure(FailureReport(**fields), [log.encode()])
    return created


@pytest.fixture
def operator_browser(client):
    client.force_login(UserFactory(roles=["operators"]))
    return client


def test_the_failure_page_shows_evidence_group_routing_sla_and_timeline(
    operator_browser, itsm_endpoints
):
    first = failure()
    failure("2")

    page = operator_browser.get(reverse("escalation:failure-detail", args=[first.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "test_export_retries" in html  # the evidence line
    assert 'id="log-excerpt"' in html
    assert 'id="occurrences">2<' in html  # the fingerprint group
    assert "QA analysts" in html and "hotfix_approval" in html  # the routing decision
    assert 'data-deadline="' in html  # the SLA countdown
    assert "classified" in html and "opened" in html and "grouped" in html  # the timeline
    assert html.count("<tr><td>Slack</td>") == 1  # the team, notified once
    assert html.count("<tr><td>Linear</td>") == 2  # the ticket, and the repeat commented on it


def test_user_text_is_escaped_and_bidi_controls_are_neutralised(operator_browser, itsm_endpoints):
    hostile = failure(job="<script>alert(1)</script>\u202eexe.txt")

    html = operator_browser.get(
        reverse("escalation:failure-detail", args=[hostile.pk])
    ).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert "\u202e" not in html


def test_the_failure_list_filters_searches_sorts_and_clamps_pages(operator_browser, itsm_endpoints):
    failure()
    failure("9", log=GITLEAKS_LOG, repository="acme/api")
    url = reverse("escalation:failure-list")

    by_type = operator_browser.get(url, {"type": "security_secrets"}).content.decode()
    searched = operator_browser.get(url, {"q": "acme/api"}).content.decode()
    sorted_page = operator_browser.get(url, {"ordering": "repository", "page": "999"})

    assert "acme/api" in by_type and "acme/shop" not in by_type
    assert "acme/api" in searched and "acme/shop" not in searched
    assert sorted_page.status_code == 200
    body = sorted_page.content.decode()
    assert body.index("acme/api") < body.index("acme/shop")


def test_list_pages_query_a_bounded_number_of_times(
    operator_browser, itsm_endpoints, django_assert_max_num_queries
):
    for n in range(12):
        failure(str(n), log=PYTEST_LOG.replace("retries", "case_" + "abcdefghijkl"[n]))

    with django_assert_max_num_queries(15):
        assert operator_browser.get(reverse("escalation:failure-list")).status_code == 200
    with django_assert_max_num_queries(15):
        assert operator_browser.get(reverse("escalation:escalation-list")).status_code == 200
    with django_assert_max_num_queries(15):
        assert operator_browser.get(reverse("escalation:ci-health")).status_code == 200


def test_the_reclassify_form_reroutes_the_failure(operator_browser, itsm_endpoints):
    found = failure()

    response = operator_browser.post(
        reverse("escalation:failure-reclassify", args=[found.pk]),
        {"failure_type": "build_failure", "justification": "it never compiled"},
    )

    assert response.status_code == 302
    found.refresh_from_db()
    assert found.failure_type == "build_failure"
    assert found.escalation.failure_type == "build_failure"


def test_the_reclassify_form_without_a_justification_changes_nothing(
    operator_browser, itsm_endpoints
):
    found = failure()

    operator_browser.post(
        reverse("escalation:failure-reclassify", args=[found.pk]),
        {"failure_type": "build_failure", "justification": ""},
    )

    found.refresh_from_db()
    assert found.failure_type == "test_failure"


def test_the_resolve_form_resolves_the_escalation(operator_browser, itsm_endpoints):
    found = failure()

    operator_browser.post(
        reverse("escalation:escalation-resolve", args=[found.escalation_id]),
        {"reason": "fixed in #8"},
    )

    assert Escalation.objects.get(pk=found.escalation_id).status == Escalation.Status.RESOLVED


def test_the_forms_need_the_csrf_token(itsm_endpoints):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(UserFactory(roles=["operators"]))
    found = failure()

    response = strict.post(
        reverse("escalation:escalation-resolve", args=[found.escalation_id]), {"reason": "x y z"}
    )

    assert response.status_code == 403


def test_a_user_without_a_triage_role_gets_403(client, itsm_endpoints):
    client.force_login(UserFactory(roles=[]))

    assert client.get(reverse("escalation:failure-list")).status_code == 403


def test_qa_may_open_the_ci_pages(client, itsm_endpoints):
    client.force_login(UserFactory(roles=["qa"]))

    assert client.get(reverse("escalation:ci-health")).status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("seeded_matrix")
def test_a_new_failure_pushes_a_hint_to_open_ci_sockets(itsm_endpoints):
    cookie = session_cookie_for(UserFactory(roles=["operators"]))

    async def scenario():
        from asgiref.sync import sync_to_async

        client = WebsocketClient("/ws/ci/", [(b"origin", b"http://localhost"), (b"cookie", cookie)])
        connected, _ = await client.connect()
        hello = await client.receive_json_from()
        created = await sync_to_async(failure)()
        hints = [await client.receive_json_from()]  # one push for the whole report
        await client.disconnect()
        return connected, hello, created, hints

    connected, hello, created, hints = async_to_sync(scenario)()

    assert connected and hello == {"type": "hello"}
    assert [hint["kind"] for hint in hints] == ["opened"]
    assert all(hint["type"] == "changed" for hint in hints)
    assert created.pk in {hint["failure"] for hint in hints}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("seeded_matrix")
def test_the_ci_socket_refuses_anonymous_and_roleless_users():
    cookie = session_cookie_for(UserFactory(roles=[]))

    async def scenario():
        results = []
        for headers in ([], [(b"cookie", cookie)]):
            client = WebsocketClient("/ws/ci/", [(b"origin", b"http://localhost"), *headers])
            results.append(await client.connect())
        return results

    assert async_to_sync(scenario)() == [(False, 4401), (False, 4403)]
