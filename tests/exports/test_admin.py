"""The exports admin: a session added with the new-session form's rules, its read-only change page
with its tickets inline, the start and retry actions through the lifecycle service, ticket edits
through the sessions service, and the export's records read-only."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from exports.models import ExportEvent, ExportSession, ManualFix, OrphanedIssue
from tests.factories import ExportSessionFactory, ExportTicketFactory

pytestmark = pytest.mark.django_db

SESSIONS = "/admin/exports/exportsession/"
TICKETS = "/admin/exports/exportticket/"


def add(admin_client, tickets, **fields):
    data = {
        "jira_project_key": "OPS",
        "name": "",
        "export_mode": "sequential",
        "tickets": json.dumps(tickets),
        **fields,
    }
    return admin_client.post(f"{SESSIONS}add/", data)


def test_a_session_is_added_with_its_tickets_through_the_service(admin_client, admin_user):
    tickets = [
        {"order": 1, "title": "First", "description_html": "<p>a</p>"},
        {"order": 2, "title": "Second", "description_html": "", "depends_on": [1]},
    ]

    response = add(admin_client, tickets, name="From the admin")

    assert response.status_code == 302
    session = ExportSession.objects.get()
    assert session.name == "From the admin" and session.created_by == admin_user
    assert session.tickets.count() == 2
    assert ExportEvent.objects.filter(session=session, kind="session_created").exists()


def test_the_add_form_refuses_a_cycle_and_bad_labels(admin_client):
    cycle = [
        {"order": 1, "title": "A", "description_html": "", "depends_on": [2]},
        {"order": 2, "title": "B", "description_html": "", "depends_on": [1], "labels": ["x y"]},
    ]

    response = add(admin_client, cycle)

    assert response.status_code == 200  # the form again, with its errors
    html = response.content.decode()
    assert "spaces" in html
    assert not ExportSession.objects.exists()
    response = add(admin_client, [{**cycle[0]}, {**cycle[1], "labels": []}])
    assert "form a cycle" in response.content.decode()
    assert not ExportSession.objects.exists()


def test_the_change_page_is_read_only_with_the_tickets_inline(admin_client):
    session = ExportSessionFactory(name="Read me")
    ticket = ExportTicketFactory(
        session=session, title="Inline <b>ticket</b>", jira_export_status="exported",
        jira_ticket_key="OPS-5", jira_ticket_url="http://jira.example/browse/OPS-5",
    )  # fmt: skip

    response = admin_client.get(f"{SESSIONS}{session.pk}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Inline &lt;b&gt;ticket&lt;/b&gt;" in html
    assert reverse("admin:exports_exportticket_change", args=[ticket.pk]) in html
    assert 'href="http://jira.example/browse/OPS-5"' in html
    assert 'name="jira_project_key"' not in html  # no input: read-only
    assert admin_client.post(f"{SESSIONS}{session.pk}/change/", {}).status_code == 403


def test_start_export_action_starts_the_export_through_the_lifecycle(admin_client):
    session = ExportSessionFactory()
    ExportTicketFactory(session=session)

    response = admin_client.post(
        SESSIONS, {"action": "start_export", "_selected_action": [str(session.pk)]}, follow=True
    )

    session.refresh_from_db()
    assert session.status == ExportSession.Status.EXPORTING
    assert session.export_task_id is not None
    assert "Started" in response.content.decode()
    assert ExportEvent.objects.filter(session=session, kind="export_started").exists()


def test_retry_action_refuses_a_session_that_did_not_fail(admin_client):
    session = ExportSessionFactory()
    ExportTicketFactory(session=session)

    response = admin_client.post(
        SESSIONS, {"action": "retry_export", "_selected_action": [str(session.pk)]}, follow=True
    )

    session.refresh_from_db()
    assert session.status == ExportSession.Status.DRAFT
    assert "Refused" in response.content.decode()


def test_retry_action_resumes_a_failed_export(admin_client):
    session = ExportSessionFactory(
        status=ExportSession.Status.EXPORT_FAILED, failed_at_ticket_order=2
    )
    ExportTicketFactory(session=session, order=1, jira_ticket_key="OPS-1")
    ExportTicketFactory(session=session, order=2)

    response = admin_client.post(
        SESSIONS, {"action": "retry_export", "_selected_action": [str(session.pk)]}, follow=True
    )

    session.refresh_from_db()
    assert session.status == ExportSession.Status.EXPORTING
    assert "retry 1, from #2" in response.content.decode()


def test_a_ticket_edit_goes_through_the_service_with_its_audit(admin_client, admin_user):
    ticket = ExportTicketFactory(description_html="<p>old</p>", labels=["a"])
    data = {
        "title": ticket.title,
        "description_html": "<p>new</p>",
        "assignee": "",
        "sprint": "",
        "priority": "High",
        "labels": '["a", "b"]',
    }

    response = admin_client.post(f"{TICKETS}{ticket.pk}/change/", data)

    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.description_html == "<p>new</p>"
    assert ticket.priority == "High" and ticket.labels == ["a", "b"]
    event = ExportEvent.objects.get(ticket=ticket, kind="ticket_edited")
    assert event.actor == admin_user


def test_a_ticket_edit_breaking_a_rule_or_a_lock_is_shown_not_saved(admin_client):
    ticket = ExportTicketFactory(labels=[])
    exported = ExportTicketFactory(jira_export_status="exported", jira_ticket_key="OPS-9")
    base = {"description_html": "", "assignee": "", "sprint": "", "priority": "", "labels": "[]"}

    bad_label = admin_client.post(
        f"{TICKETS}{ticket.pk}/change/", {**base, "title": "T", "labels": '["two words"]'}
    )
    locked = admin_client.post(f"{TICKETS}{exported.pk}/change/", {**base, "title": "New"})

    assert bad_label.status_code == 200 and "spaces" in bad_label.content.decode()
    assert locked.status_code == 200 and "already in Jira as OPS-9" in locked.content.decode()
    exported.refresh_from_db()
    assert exported.title != "New"


def test_tickets_are_neither_added_nor_deleted_by_hand(admin_client):
    ticket = ExportTicketFactory()

    assert admin_client.get(f"{TICKETS}add/").status_code == 403
    assert admin_client.get(f"{TICKETS}{ticket.pk}/delete/").status_code == 403


def test_the_records_are_read_only(admin_client):
    ticket = ExportTicketFactory(jira_ticket_key="OPS-2")
    fix = ManualFix.objects.create(
        session=ticket.session, ticket=ticket, issue_type="assignee_invalid",
        recommended_action="Assign it in Jira.",
    )  # fmt: skip
    orphan = OrphanedIssue.objects.create(session=ticket.session, jira_key="OPS-77", reason="x")
    event = ExportEvent.objects.create(session=ticket.session, kind="session_created")

    for url, pk in (
        ("/admin/exports/manualfix/", fix.pk),
        ("/admin/exports/orphanedissue/", orphan.pk),
        ("/admin/exports/exportevent/", event.pk),
    ):
        assert admin_client.get(url).status_code == 200
        assert admin_client.get(f"{url}add/").status_code == 403
        assert admin_client.get(f"{url}{pk}/delete/").status_code == 403
        assert admin_client.get(f"{url}{pk}/change/").status_code == 200


def test_the_session_list_queries_a_bounded_number_of_times(
    admin_client, django_assert_max_num_queries
):
    for _ in range(20):
        ExportTicketFactory.create_batch(2, session=ExportSessionFactory())

    with django_assert_max_num_queries(12):
        response = admin_client.get(SESSIONS)

    assert response.status_code == 200


def test_an_exporting_session_cannot_be_deleted(admin_client):
    session = ExportSessionFactory(status=ExportSession.Status.EXPORTING)

    assert admin_client.get(f"{SESSIONS}{session.pk}/delete/").status_code == 403
    assert ExportSession.objects.filter(pk=session.pk).exists()


def role_admin(role: str):
    from django.test import Client

    from tests.factories import UserFactory

    browser = Client()
    browser.force_login(UserFactory(username=f"{role}-staff", roles=[role], is_staff=True))
    return browser


def test_operators_add_sessions_and_run_exports_in_the_admin_qa_only_reads():
    """Migration 0003: the admin answers each role as the pages and the API do."""
    session = ExportSessionFactory()
    ExportTicketFactory(session=session, order=1)
    operator, qa = role_admin("operators"), role_admin("qa")

    assert operator.get(f"{SESSIONS}add/").status_code == 200
    assert "start_export" in operator.get(SESSIONS).content.decode()
    assert operator.get(f"{SESSIONS}{session.pk}/delete/").status_code == 403

    assert qa.get(SESSIONS).status_code == 200
    assert qa.get(f"{SESSIONS}{session.pk}/change/").status_code == 200
    assert qa.get(f"{SESSIONS}add/").status_code == 403
    assert "start_export" not in qa.get(SESSIONS).content.decode()
    for table in ("manualfix", "orphanedissue", "exportevent", "exportticket"):
        assert qa.get(f"/admin/exports/{table}/").status_code == 200, table
