"""Attachments and edits of a session's tickets: the size limit (413), the locks while exporting and
once a ticket is in Jira (409), and the audit trail of every change."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from exports.errors import AttachmentTooLarge, InvalidTickets, SessionLocked
from exports.models import ExportEvent, ExportSession
from exports.services import sessions
from tests.factories import ExportTicketFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def url(ticket):
    return f"/api/v1/sessions/{ticket.session_id}/tickets/{ticket.pk}/attachment"


def upload(client, ticket, content=b"the plan", name="plan.txt", **extra):
    return client.post(
        url(ticket), {"file": SimpleUploadedFile(name, content)}, format="multipart", **extra
    )


def test_an_operator_attaches_a_file_to_a_ticket(operator_client, operator):
    ticket = ExportTicketFactory()

    response = upload(operator_client, ticket)

    assert response.status_code == 200
    assert response.json()["attachment"] == {
        "name": "plan.txt", "size": 8, "uploaded_to_jira": False,
    }  # fmt: skip
    ticket.refresh_from_db()
    assert ticket.attachment.read() == b"the plan"
    event = ExportEvent.objects.get(ticket=ticket, kind="attachment_added")
    assert event.actor == operator and event.data == {"filename": "plan.txt", "size": 8}


def test_a_file_over_the_limit_answers_413(operator_client, settings):
    settings.EXPORT_ATTACHMENT_MAX_BYTES = 10
    ticket = ExportTicketFactory()

    response = upload(operator_client, ticket, content=b"x" * 11)

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "attachment_too_large"
    assert error["message"] == "The attachment is 11 bytes, over the limit of 10 bytes."
    ticket.refresh_from_db()
    assert not ticket.attachment


def test_a_file_at_the_limit_is_accepted(operator_client, settings):
    settings.EXPORT_ATTACHMENT_MAX_BYTES = 10

    assert upload(operator_client, ExportTicketFactory(), content=b"x" * 10).status_code == 200


def test_a_body_declaring_far_more_than_the_limit_is_refused_before_it_is_read(
    operator_client, settings
):
    settings.EXPORT_ATTACHMENT_MAX_BYTES = 10
    ticket = ExportTicketFactory()

    response = upload(operator_client, ticket, CONTENT_LENGTH=str(50 * 1024 * 1024))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "attachment_too_large"


@pytest.mark.parametrize(
    ("declared", "refused"),
    [
        (None, False), ("", False), ("abc", False), ("-5", False), ("10", False),
        (str(10 + sessions.MULTIPART_OVERHEAD_BYTES), False),
        (str(11 + sessions.MULTIPART_OVERHEAD_BYTES), True),
    ],
)  # fmt: skip
def test_the_declared_length_rule_is_the_services_and_ignores_a_malformed_header(
    settings, declared, refused
):
    """One rule for the API and the review page: far over the limit is refused unread; a missing
    or malformed Content-Length is left to the parser (never a ValueError, a 500)."""
    settings.EXPORT_ATTACHMENT_MAX_BYTES = 10

    if refused:
        with pytest.raises(AttachmentTooLarge):
            sessions.check_declared_upload(declared)
    else:
        sessions.check_declared_upload(declared)


def test_the_default_limit_is_ten_megabytes(settings):
    assert settings.EXPORT_ATTACHMENT_MAX_BYTES == 10 * 1024 * 1024


def test_a_second_upload_replaces_the_first_and_removes_its_file_after_commit(
    operator_client, django_capture_on_commit_callbacks
):
    ticket = ExportTicketFactory()
    upload(operator_client, ticket, name="v1.txt")
    ticket.refresh_from_db()
    first = ticket.attachment.name
    storage = ticket.attachment.storage

    with django_capture_on_commit_callbacks(execute=True):
        upload(operator_client, ticket, name="v2.txt")

    ticket.refresh_from_db()
    assert ticket.attachment.name.endswith("v2.txt")
    assert not storage.exists(first)


def test_a_path_sent_as_the_file_name_keeps_only_its_last_part(operator_client):
    ticket = ExportTicketFactory()

    response = upload(operator_client, ticket, name="C:\\Users\\me\\plan.txt")

    assert response.json()["attachment"]["name"] == "plan.txt"


def test_an_upload_without_a_file_or_with_other_fields_answers_400(operator_client):
    ticket = ExportTicketFactory()

    missing = operator_client.post(url(ticket), {"note": "x"}, format="multipart")

    assert missing.status_code == 400
    assert set(missing.json()["error"]["fields"]) == {"file", "note"}


def test_a_json_body_is_refused(operator_client):
    response = operator_client.post(url(ExportTicketFactory()), {"file": "x"}, format="json")

    assert response.status_code == 415


def test_a_ticket_of_another_session_answers_404(operator_client):
    ticket = ExportTicketFactory()
    other = ExportTicketFactory()

    response = operator_client.post(
        f"/api/v1/sessions/{other.session_id}/tickets/{ticket.pk}/attachment",
        {"file": SimpleUploadedFile("a.txt", b"a")},
        format="multipart",
    )

    assert response.status_code == 404


def test_no_upload_while_the_session_exports(operator_client):
    ticket = ExportTicketFactory(session__status=ExportSession.Status.EXPORTING)

    response = upload(operator_client, ticket)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "session_locked"


def test_no_upload_to_a_ticket_already_in_jira(operator_client):
    ticket = ExportTicketFactory(jira_export_status="exported", jira_ticket_key="OPS-3")

    response = upload(operator_client, ticket)

    assert response.status_code == 409
    assert "OPS-3" in response.json()["error"]["message"]


def test_qa_may_not_upload(api_client):
    api_client.force_authenticate(UserFactory(roles=["qa"]))

    assert upload(api_client, ExportTicketFactory()).status_code == 403


# --- edits through the service ------------------------------------------------------------------


def test_an_html_edit_is_saved_and_audited_once():
    ticket = ExportTicketFactory(description_html="<p>old</p>")
    actor = UserFactory(roles=["operators"])

    sessions.update_ticket_html(ticket, "<p>new</p>", actor)
    sessions.update_ticket_html(ticket, "<p>new</p>", actor)  # no change, no event

    ticket.refresh_from_db()
    assert ticket.description_html == "<p>new</p>"
    events = ExportEvent.objects.filter(ticket=ticket, kind="ticket_edited")
    assert [event.data for event in events] == [{"fields": ["description_html"]}]


def test_edits_are_refused_while_exporting_and_after_export():
    exporting = ExportTicketFactory(session__status=ExportSession.Status.EXPORTING)
    exported = ExportTicketFactory(jira_export_status="exported", jira_ticket_key="OPS-1")

    with pytest.raises(SessionLocked):
        sessions.update_ticket_html(exporting, "<p>x</p>")
    with pytest.raises(SessionLocked):
        sessions.update_ticket_html(exported, "<p>x</p>")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"description_html": "a\x00b"}, "description_html"),
        ({"labels": ["has space"]}, "labels"),
        ({"title": ""}, "title"),
        ({"jira_ticket_key": "OPS-9"}, "jira_ticket_key"),
    ],
)
def test_an_edit_breaking_a_field_rule_is_refused(changes, field):
    ticket = ExportTicketFactory()

    with pytest.raises(InvalidTickets) as refused:
        sessions.update_ticket(ticket, changes)

    assert field in refused.value.fields()
