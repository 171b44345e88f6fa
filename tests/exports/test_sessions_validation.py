"""The seed's validation endpoints: ``validate-project`` against the fake Jira (a real process on
loopback), and ``test-adf-conversion``, which converts afresh and checks attachments without
sending anything to Jira."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from tests.factories import ExportSessionFactory, ExportTicketFactory, UserFactory

pytestmark = pytest.mark.django_db

VALIDATE = "/api/jira/validate-project"
NOTHING_REQUIRED = {
    "requires_sprint_assignment": False,
    "requires_assignee": False,
    "requires_priority_levels": False,
}


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def validate(client, key="OPS", **requirements):
    return client.post(
        VALIDATE,
        {"project_key": key, "user_requirements": {**NOTHING_REQUIRED, **requirements}},
        format="json",
    )


# --- validate-project ---------------------------------------------------------------------------


def test_a_project_jira_knows_is_valid_with_its_sprints_people_and_priorities(
    operator_client, itsm_endpoints, settings
):
    settings.EXPORT_JIRA_BOARD_ID = "1"

    response = validate(operator_client, "ops")

    assert response.status_code == 200
    body = response.json()
    assert body["project_key"] == "OPS"
    assert body["project_name"] == "Operations"
    assert body["validation_status"] == "valid"
    assert body["can_create_tasks"] is True and body["can_view_project"] is True
    assert body["available_sprints"] == [
        {"id": "25446", "name": "OPS Sprint 42", "state": "active"},
        {"id": "25447", "name": "OPS Sprint 43", "state": "future"},
    ]
    assert {"account_id": "5b10ac8d82e05b22cc7d4ef5", "display_name": "Ada Operator"} in body[
        "team_members"
    ]
    assert [p["name"] for p in body["priority_levels"]] == [
        "Highest", "High", "Medium", "Low", "Lowest",
    ]  # fmt: skip
    assert body["validation_warnings"] == []
    assert body["blocking_issues"] == []


def test_a_nonexistent_project_is_invalid_with_a_blocking_issue(operator_client, itsm_endpoints):
    response = validate(operator_client, "NOPE")

    assert response.status_code == 200
    body = response.json()
    assert body["validation_status"] == "invalid"
    assert body["can_view_project"] is False and body["can_create_tasks"] is False
    assert body["blocking_issues"] == [
        "Project NOPE does not exist in Jira, or the portal's account cannot see it."
    ]
    assert body["available_sprints"] == [] and body["team_members"] == []


def test_sprints_that_cannot_be_found_warn_unless_the_deployment_requires_them(
    operator_client, itsm_endpoints
):
    # No EXPORT_JIRA_BOARD_ID, and DEMO has no Scrum board in the fake: no sprints to offer.
    relaxed = validate(operator_client, "DEMO").json()
    strict = validate(operator_client, "DEMO", requires_sprint_assignment=True).json()

    assert relaxed["validation_status"] == "valid"
    assert [w["field"] for w in relaxed["validation_warnings"]] == ["sprint"]
    assert strict["validation_status"] == "invalid"
    assert len(strict["blocking_issues"]) == 1
    assert "sprints cannot be assigned" in strict["blocking_issues"][0]


def test_without_a_board_setting_the_projects_scrum_board_offers_its_sprints(
    operator_client, itsm_endpoints
):
    body = validate(operator_client, requires_sprint_assignment=True).json()

    assert body["validation_status"] == "valid"
    assert {sprint["name"] for sprint in body["available_sprints"]} >= {"OPS Sprint 42"}


def test_refused_credentials_are_a_blocking_issue_for_an_administrator(
    operator_client, itsm_endpoints, settings
):
    settings.ITSM_ENDPOINTS = {**itsm_endpoints, "JIRA_API_TOKEN": "a-token-jira-never-issued"}

    body = validate(operator_client).json()

    assert body["validation_status"] == "invalid"
    assert "refused the portal's credentials (HTTP 401)" in body["blocking_issues"][0]


def test_jira_answering_503_makes_validation_answer_503_at_once(
    operator_client, itsm_endpoints, fakes
):
    fakes.faults(platform="jira", status=503)

    response = validate(operator_client)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "upstream_unavailable"
    # One attempt: the validation does not wait through the outbox's retry policy.
    assert fakes.state("jira")["faults_injected"] == 1


def test_an_unreachable_jira_answers_503(operator_client, settings):
    settings.ITSM_ENDPOINTS = {
        **settings.ITSM_ENDPOINTS,
        "JIRA_BASE_URL": "http://127.0.0.1:9/jira",
        "JIRA_EMAIL": "bot@example.com",
        "JIRA_API_TOKEN": "token",
    }

    response = validate(operator_client)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "upstream_unavailable"


def test_an_unconfigured_jira_answers_503_not_configured(operator_client, settings):
    settings.ITSM_ENDPOINTS = {**settings.ITSM_ENDPOINTS, "JIRA_BASE_URL": ""}

    response = validate(operator_client)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_configured"


@pytest.mark.parametrize(
    "body",
    [
        {"project_key": "OPS"},  # the seed's user_requirements is required
        {"project_key": "OPS", "user_requirements": NOTHING_REQUIRED, "extra": 1},
        {"project_key": "OPS", "user_requirements": {**NOTHING_REQUIRED, "requires_assignee": 1}},
        {"project_key": "OPS KEY", "user_requirements": NOTHING_REQUIRED},
        {"project_key": 7, "user_requirements": NOTHING_REQUIRED},
    ],
)
def test_a_malformed_validation_request_answers_400_without_asking_jira(operator_client, body):
    response = operator_client.post(VALIDATE, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_validation_needs_a_role(api_client):
    assert validate(api_client).status_code == 401
    api_client.force_authenticate(UserFactory())
    assert validate(api_client).status_code == 403


# --- test-adf-conversion ------------------------------------------------------------------------


def adf_test(client, session, **body):
    return client.post(
        f"/api/jira/test-adf-conversion/{session.pk}",
        {"ticket_ids": [], **body},
        format="json",
    )


def test_every_ticket_is_converted_afresh_and_reported_in_the_seed_shape(
    operator_client, itsm_endpoints, fakes
):
    session = ExportSessionFactory()
    first = ExportTicketFactory(session=session, order=1, description_html="<h2>Plan</h2><p>a</p>")
    second = ExportTicketFactory(session=session, order=2)
    second.attachment.save("plan.txt", ContentFile(b"the plan"))

    response = adf_test(operator_client, session)

    assert response.status_code == 200
    body = response.json()
    assert body["session_id"] == str(session.pk)
    assert body["tickets_tested"] == 2 and body["passed"] == 2 and body["failed"] == 0
    assert body["all_passed"] is True
    one, two = body["results"]
    assert one["ticket_id"] == str(first.pk) and one["ticket_title"] == first.title
    assert one["status"] == "passed"
    assert one["adf_size_bytes"] > 0 and isinstance(one["character_reduction"], float)
    assert one["error_message"] is None and one["suggested_fix"] is None
    assert one["attachment_upload_tested"] is False
    assert one["attachment_upload_status"] == "skipped"
    assert two["attachment_upload_tested"] is True
    assert two["attachment_upload_status"] == "passed"
    assert fakes.state("jira")["requests"] == {}  # nothing was sent to Jira


def test_an_edit_is_seen_by_the_next_test(operator_client):
    ticket = ExportTicketFactory(description_html="<p>short</p>")
    before = adf_test(operator_client, ticket.session).json()["results"][0]["adf_size_bytes"]
    ticket.description_html = "<p>" + "much longer text " * 20 + "</p>"
    ticket.save()

    after = adf_test(operator_client, ticket.session).json()["results"][0]["adf_size_bytes"]

    assert after > before


def test_an_attachment_over_jiras_limit_fails_with_a_suggested_fix(operator_client, settings):
    settings.EXPORT_JIRA_ATTACHMENT_MAX_BYTES = 4
    ticket = ExportTicketFactory()
    ticket.attachment.save("diagram.png", ContentFile(b"0123456789"))

    result = adf_test(operator_client, ticket.session).json()["results"][0]

    assert result["status"] == "failed"
    assert result["attachment_upload_tested"] is True
    assert result["attachment_upload_status"] == "failed"
    assert "10 bytes; Jira accepts 4" in result["error_message"]
    assert result["suggested_fix"]


def test_a_missing_attachment_file_fails_the_upload_check(operator_client):
    ticket = ExportTicketFactory()
    ticket.attachment.save("gone.pdf", ContentFile(b"%PDF"))
    ticket.attachment.storage.delete(ticket.attachment.name)

    result = adf_test(operator_client, ticket.session).json()["results"][0]

    assert result["attachment_upload_status"] == "failed"
    assert "cannot be read" in result["error_message"]


def test_attachments_are_skipped_when_not_asked_for(operator_client):
    ticket = ExportTicketFactory()
    ticket.attachment.save("plan.txt", ContentFile(b"x"))

    result = adf_test(operator_client, ticket.session, include_attachments=False).json()

    assert result["results"][0]["attachment_upload_tested"] is False
    assert result["results"][0]["attachment_upload_status"] == "skipped"


def test_a_description_over_jiras_limit_fails(operator_client):
    ticket = ExportTicketFactory(description_html="<p>" + "word " * 8000 + "</p>")

    body = adf_test(operator_client, ticket.session).json()

    assert body["all_passed"] is False and body["failed"] == 1
    result = body["results"][0]
    assert result["status"] == "failed"
    assert "Jira accepts 32,767" in result["error_message"]
    assert result["adf_size_bytes"] > 32_767


def test_only_the_tickets_asked_for_are_tested(operator_client):
    session = ExportSessionFactory()
    ExportTicketFactory(session=session, order=1)
    wanted = ExportTicketFactory(session=session, order=2)

    body = adf_test(operator_client, session, ticket_ids=[str(wanted.pk)]).json()

    assert [r["ticket_id"] for r in body["results"]] == [str(wanted.pk)]


def test_a_ticket_of_another_session_is_refused(operator_client):
    session = ExportSessionFactory()
    stranger = ExportTicketFactory()

    response = adf_test(operator_client, session, ticket_ids=[str(stranger.pk)])

    assert response.status_code == 400
    assert "ticket_ids" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "body", [{"ticket_ids": "all"}, {"ticket_ids": [], "include_attachments": "yes"}, {"x": 1}]
)
def test_a_malformed_adf_test_request_answers_400(operator_client, body):
    session = ExportSessionFactory()

    response = operator_client.post(
        f"/api/jira/test-adf-conversion/{session.pk}", body, format="json"
    )

    assert response.status_code == 400


def test_an_unknown_session_answers_404(operator_client):
    response = operator_client.post(
        "/api/jira/test-adf-conversion/00000000-0000-0000-0000-000000000000",
        {"ticket_ids": []},
        format="json",
    )

    assert response.status_code == 404


def test_qa_may_test_conversions(api_client):
    api_client.force_authenticate(UserFactory(roles=["qa"]))
    ticket = ExportTicketFactory()

    assert adf_test(api_client, ticket.session).status_code == 200
