"""``/api/v1/sessions``: a session and its tickets created in one call, read back with their
export status, listed with the sessions page's filters; every bad input answers the error envelope
(400 for a bad field, 422 for tickets that break a rule of the session), never a 500."""

from __future__ import annotations

import itertools
import json

import pytest
from django.urls import reverse

from exports.models import ExportEvent, ExportSession, ExportTicket, TicketDependency
from tests.factories import ExportSessionFactory, ExportTicketFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/sessions"


def payload(**overrides):
    body = {
        "jira_project_key": "OPS",
        "name": "Sprint 42 planning",
        "tickets": [
            {
                "order": 1,
                "title": "Set up the catalog",
                "description_html": "<p>Create the <strong>catalog</strong>.</p>",
                "assignee": "5b10ac8d82e05b22cc7d4ef5",
                "sprint": "25446",
                "priority": "High",
                "labels": ["catalog", "mvp"],
            },
            {
                "order": 2,
                "title": "Configure product fields",
                "description_html": "<ul><li>size</li><li>colour</li></ul>",
                "depends_on": [1],
            },
            {"order": 3, "title": "Publish", "description_html": "", "depends_on": [1, 2]},
        ],
    }
    body.update(overrides)
    return body


def post(client, body):
    return client.post(URL, body, format="json")


def ticket(order, **fields):
    return {"order": order, "title": f"Ticket {order}", "description_html": "", **fields}


def test_an_operator_creates_a_session_with_its_tickets_and_dependencies(operator_client, operator):
    response = post(operator_client, payload())

    assert response.status_code == 201
    body = response.json()
    session = ExportSession.objects.get(pk=body["id"])
    assert session.jira_project_key == "OPS"
    assert session.name == "Sprint 42 planning"
    assert session.created_by == operator
    assert body["status"] == "draft"
    assert [t["order"] for t in body["tickets"]] == [1, 2, 3]
    first, second, third = body["tickets"]
    assert first["labels"] == ["catalog", "mvp"]
    assert first["assignee"] == "5b10ac8d82e05b22cc7d4ef5"
    assert first["jira_export_status"] == "pending" and first["jira_ticket_key"] == ""
    assert second["depends_on"] == [1]
    assert third["depends_on"] == [1, 2]
    assert TicketDependency.objects.filter(blocked__session=session).count() == 3
    assert ExportEvent.objects.filter(session=session, kind="session_created").count() == 1


def test_the_project_key_is_upper_cased_and_a_missing_name_gets_a_default(operator_client):
    body = payload(jira_project_key="ops")
    del body["name"]

    response = post(operator_client, body)

    assert response.status_code == 201
    session = ExportSession.objects.get(pk=response.json()["id"])
    assert session.jira_project_key == "OPS"
    assert session.name.startswith("OPS planning session ")


def test_reading_a_session_shows_its_tickets_export_status_and_jira_keys(operator_client):
    session = ExportSessionFactory()
    exported = ExportTicketFactory(
        session=session, order=1, jira_export_status="exported", jira_ticket_key="OPS-7",
        jira_ticket_url="http://jira.example/browse/OPS-7",
    )  # fmt: skip
    ExportTicketFactory(session=session, order=2, jira_export_status="failed")

    body = operator_client.get(f"{URL}/{session.pk}").json()

    assert body["id"] == str(session.pk)
    assert body["ticket_count"] == 2 and body["exported_count"] == 1
    assert body["tickets"][0]["id"] == str(exported.pk)
    assert body["tickets"][0]["jira_ticket_key"] == "OPS-7"
    assert body["tickets"][0]["jira_ticket_url"] == "http://jira.example/browse/OPS-7"
    assert body["tickets"][1]["jira_export_status"] == "failed"


def test_an_unknown_session_answers_404_in_the_envelope(operator_client):
    response = operator_client.get(f"{URL}/00000000-0000-0000-0000-000000000000")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- bad input ------------------------------------------------------------------------------------


def test_an_unknown_field_of_the_session_is_refused(operator_client):
    response = post(operator_client, payload(project="OPS"))

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"project": "Unknown field."}
    assert not ExportSession.objects.exists()


def test_an_unknown_field_of_a_ticket_is_refused_with_its_path(operator_client):
    body = payload(tickets=[ticket(1, story_points=3)])

    response = post(operator_client, body)

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "tickets": {"0": {"story_points": "Unknown field."}}
    }


def test_malformed_json_answers_400_parse_error(operator_client):
    response = operator_client.post(URL, '{"tickets": [', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("order", "1"),  # a string, not a number
        ("order", 1.5),
        ("order", True),
        ("order", -1),
        ("title", 12),  # a number, not text
        ("title", ""),
        ("title", "two\nlines"),
        ("title", "x" * 256),
        ("labels", "catalog"),  # not a list
        ("depends_on", ["1"]),
    ],
)
def test_a_ticket_field_of_the_wrong_shape_is_refused(operator_client, field, value):
    response = post(operator_client, payload(tickets=[{**ticket(1), field: value}]))

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]["tickets"]["0"]


@pytest.mark.parametrize("label", ["needs review", "tab\tseparated", "", "portal-idem-abc"])
def test_labels_jira_would_refuse_or_the_export_reserves_are_refused(operator_client, label):
    response = post(operator_client, payload(tickets=[ticket(1, labels=["ok", label])]))

    assert response.status_code == 400
    assert "labels" in response.json()["error"]["fields"]["tickets"]["0"]
    assert not ExportSession.objects.exists()


@pytest.mark.parametrize(
    "text", ["\\ud800 lone surrogate", "NUL \\u0000 inside", "bell \\u0007"], ids=str
)
def test_invalid_text_anywhere_answers_400_naming_the_field(operator_client, text):
    raw = json.dumps(payload()).replace("Set up the catalog", text)

    response = operator_client.post(URL, raw, content_type="application/json")

    assert response.status_code == 400
    assert "tickets.0.title" in response.json()["error"]["fields"]
    assert not ExportSession.objects.exists()


@pytest.mark.parametrize("key", ["", "O", "1OPS", "OPS-1", "OPS KEY", "Ö" * 3])
def test_an_invalid_project_key_is_refused(operator_client, key):
    response = post(operator_client, payload(jira_project_key=key))

    assert response.status_code == 400
    assert "jira_project_key" in response.json()["error"]["fields"]


def test_a_session_without_tickets_is_refused(operator_client):
    response = post(operator_client, payload(tickets=[]))

    assert response.status_code == 400
    assert "tickets" in response.json()["error"]["fields"]


def test_two_tickets_with_one_order_are_refused_with_422(operator_client):
    response = post(operator_client, payload(tickets=[ticket(1), ticket(2), ticket(2)]))

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_tickets"
    assert error["fields"] == {"tickets.2.order": "Order 2 is already used by tickets.1."}
    assert not ExportSession.objects.exists()


def test_a_dependency_on_an_order_not_in_the_session_is_refused(operator_client):
    response = post(operator_client, payload(tickets=[ticket(1), ticket(2, depends_on=[7])]))

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_dependency"
    assert error["message"] == "Ticket #2 depends on #7, which is not in the session."
    assert not ExportSession.objects.exists()


def test_a_dependency_cycle_is_refused_naming_the_cycle(operator_client):
    tickets = [ticket(1, depends_on=[3]), ticket(2, depends_on=[1]), ticket(3, depends_on=[2])]

    response = post(operator_client, payload(tickets=tickets))

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "dependency_cycle"
    # #1 blocks #2 blocks #3 blocks #1, named from where the search met it.
    assert error["message"] == "The tickets' dependencies form a cycle: #2 -> #3 -> #1 -> #2."
    assert not ExportSession.objects.exists()
    assert not ExportTicket.objects.exists()


def test_a_ticket_depending_on_itself_is_refused(operator_client):
    response = post(operator_client, payload(tickets=[ticket(1, depends_on=[1])]))

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {
        "tickets.0.depends_on": "A ticket cannot depend on itself."
    }


def test_too_many_labels_are_refused(operator_client):
    labels = [f"label-{n}" for n in range(21)]

    response = post(operator_client, payload(tickets=[ticket(1, labels=labels)]))

    assert response.status_code == 400


# --- roles --------------------------------------------------------------------------------------


def test_anonymous_callers_are_refused_with_401(api_client):
    assert api_client.get(URL).status_code == 401
    assert post(api_client, payload()).status_code == 401


def test_qa_reads_sessions_but_may_not_create_one(api_client):
    api_client.force_authenticate(UserFactory(roles=["qa"]))
    session = ExportSessionFactory()

    assert api_client.get(URL).status_code == 200
    assert api_client.get(f"{URL}/{session.pk}").status_code == 200
    refused = post(api_client, payload())
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"


def test_a_user_without_a_role_can_neither_read_nor_create(api_client):
    api_client.force_authenticate(UserFactory())

    assert api_client.get(URL).status_code == 403
    assert post(api_client, payload()).status_code == 403


def test_an_admin_holds_every_role(api_client):
    api_client.force_authenticate(UserFactory(roles=["admins"]))

    assert post(api_client, payload()).status_code == 201


# --- the list -----------------------------------------------------------------------------------


def test_the_list_filters_by_status_project_search_and_creator(operator_client, operator):
    mine = ExportSessionFactory(name="Checkout revamp", created_by=operator)
    failed = ExportSessionFactory(
        name="Billing", jira_project_key="DEMO", status=ExportSession.Status.EXPORT_FAILED
    )

    def ids(**params):
        return {row["id"] for row in operator_client.get(URL, params).json()["results"]}

    assert ids(status="failed") == {str(failed.pk)}
    assert ids(project="demo") == {str(failed.pk)}
    assert ids(q="checkout") == {str(mine.pk)}
    assert ids(mine="true") == {str(mine.pk)}
    assert ids() == {str(mine.pk), str(failed.pk)}


def test_the_list_reports_the_seed_status_and_counts(operator_client):
    session = ExportSessionFactory(status=ExportSession.Status.EXPORT_FAILED)
    ExportTicketFactory.create_batch(3, session=session)

    row = operator_client.get(URL).json()["results"][0]

    assert row["status"] == "failed"
    assert row["ticket_count"] == 3 and row["exported_count"] == 0
    assert row["page_url"] == reverse("exports:session-detail", args=[session.pk])


def test_an_unknown_status_filter_answers_400(operator_client):
    response = operator_client.get(URL, {"status": "export_failed"})

    assert response.status_code == 400
    assert "status" in response.json()["error"]["fields"]


def test_the_list_endpoint_queries_a_bounded_number_of_times(
    operator_client, django_assert_max_num_queries
):
    for _ in range(15):
        ExportTicketFactory.create_batch(2, session=ExportSessionFactory(created_by=UserFactory()))

    with django_assert_max_num_queries(3):
        response = operator_client.get(URL)

    assert response.status_code == 200
    assert response.json()["count"] == 15


def test_the_detail_endpoint_queries_do_not_grow_with_the_tickets(
    operator_client, django_assert_max_num_queries
):
    session = ExportSessionFactory()
    tickets = ExportTicketFactory.create_batch(30, session=session)
    for blocker, blocked in itertools.pairwise(tickets):
        TicketDependency.objects.create(blocker=blocker, blocked=blocked)

    with django_assert_max_num_queries(4):
        response = operator_client.get(f"{URL}/{session.pk}")

    assert len(response.json()["tickets"]) == 30
    assert response.json()["tickets"][5]["depends_on"] == [tickets[4].order]


def test_a_session_larger_than_one_export_takes_is_refused(operator_client, settings):
    settings.EXPORT_MAX_TICKETS = 2

    response = post(operator_client, payload(tickets=[ticket(1), ticket(2), ticket(3)]))

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"tickets": "At most 2 tickets in a session."}


# --- editing a ticket ---------------------------------------------------------------------------


def ticket_url(ticket):
    return f"{URL}/{ticket.session_id}/tickets/{ticket.pk}"


def test_an_operator_edits_a_tickets_html_and_labels(operator_client, operator):
    ticket = ExportTicketFactory(description_html="<p>old</p>")

    response = operator_client.patch(
        ticket_url(ticket),
        {"description_html": "<p>new</p>", "labels": ["ready"]},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["description_html"] == "<p>new</p>"
    assert response.json()["labels"] == ["ready"]
    event = ExportEvent.objects.get(ticket=ticket, kind="ticket_edited")
    assert event.actor == operator
    assert sorted(event.data["fields"]) == ["description_html", "labels"]


@pytest.mark.parametrize(
    "body",
    [{}, {"order": 4}, {"depends_on": [1]}, {"labels": ["a b"]}, {"title": ""}, {"x": 1}],
    ids=str,
)
def test_a_bad_ticket_edit_answers_400(operator_client, body):
    ticket = ExportTicketFactory()

    response = operator_client.patch(ticket_url(ticket), body, format="json")

    assert response.status_code == 400


def test_a_ticket_in_jira_cannot_be_edited(operator_client):
    ticket = ExportTicketFactory(jira_export_status="exported", jira_ticket_key="OPS-8")

    response = operator_client.patch(ticket_url(ticket), {"title": "New"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "session_locked"


def test_qa_may_not_edit_a_ticket(api_client):
    api_client.force_authenticate(UserFactory(roles=["qa"]))
    ticket = ExportTicketFactory()

    assert api_client.patch(ticket_url(ticket), {"title": "x"}, format="json").status_code == 403
