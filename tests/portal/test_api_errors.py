"""Errors into the envelope: any app's PortalError by its own status, server errors never as a
debug page, messages that name the first invalid field, and no credential echoed back."""

from __future__ import annotations

import json

import pytest
from django.views.debug import technical_500_response
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIRequestFactory

from itsm import errors as itsm_errors
from portal.errors import PortalError
from tests.portal.edge_probe_urls import RaisingView

pytestmark = pytest.mark.django_db

GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5" * 3 + "F6g7H8"  # the shape of a classic GitHub token


def answer_to(error: Exception):
    """What the API answers when a view raises ``error`` (the real DRF pipeline and handler)."""
    request = APIRequestFactory().get("/api/v1/probe/")
    response = RaisingView.as_view(error=error)(request)
    response.render()
    response.json = lambda: json.loads(response.content)
    return response


class MaintenanceWindow(PortalError):
    """An error of an app the portal has never heard of."""

    http_status = 423
    code = "maintenance_window"

    def fields(self):
        return {"platform": "jira is in a maintenance window"}

    def headers(self):
        return {"Retry-After": "120"}


class JiraProjectArchived(itsm_errors.UpstreamRejected):
    """A subclass of an app's error, defined outside the app."""

    code = "project_archived"


class TicketSchemaTooOld(itsm_errors.ValidationFailed):
    pass


def test_an_unknown_apps_error_answers_with_its_own_status_fields_and_headers():
    response = answer_to(MaintenanceWindow("Jira is being upgraded"))

    assert response.status_code == 423
    assert response["Retry-After"] == "120"
    error = response.json()["error"]
    assert error["code"] == "maintenance_window"
    assert error["message"] == "Jira is being upgraded"
    assert error["fields"] == {"platform": "jira is in a maintenance window"}
    assert error["detail"] == {"code": "maintenance_window", "message": "Jira is being upgraded"}


def test_a_subclass_of_an_apps_error_keeps_its_parents_status_instead_of_502():
    rejected = answer_to(
        JiraProjectArchived("project OPS is archived", platform="jira", status_code=400)
    )
    invalid = answer_to(
        TicketSchemaTooOld([itsm_errors.FieldError("summary", "required", "is required")])
    )

    assert rejected.status_code == 502
    assert rejected.json()["error"]["code"] == "project_archived"
    assert rejected.json()["error"]["detail"]["status_code"] == 400  # Jira's answer, not ours
    assert invalid.status_code == 422
    assert invalid.json()["error"]["fields"] == {"summary": "is required"}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (itsm_errors.ItsmError("odd answer", platform="jira"), 502),
        (itsm_errors.NotConfigured("jira is not configured", platform="jira"), 503),
        (itsm_errors.TemplateError("unknown template", template_name="x", platform="jira"), 422),
        (itsm_errors.UpstreamRejected("no", platform="jira", status_code=404), 502),
        (itsm_errors.RetryableError("down", platform="jira", status_code=503), 503),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_the_itsm_hierarchy_answers_its_statuses(error, status):
    response = answer_to(error)

    assert response.status_code == status
    assert response.json()["error"]["code"] == error.code
    assert response.json()["error"]["detail"]["platform"] == "jira"


def test_a_retryable_error_carries_its_retry_after():
    response = answer_to(
        itsm_errors.RetryableError(
            "rate limited", platform="jira", status_code=429, retry_after=7.9
        )
    )

    assert response.status_code == 503
    assert response["Retry-After"] == "7"


# --- validation messages ------------------------------------------------------------------------


def test_a_validation_message_names_the_first_field_and_its_reason():
    response = answer_to(
        ValidationError(
            {
                "variables": ["details: at most 32,000 characters"],
                "job_id": ["This field is required."],
            }
        )
    )

    error = response.json()["error"]
    assert response.status_code == 400
    assert error["message"] == "variables: details: at most 32,000 characters"
    assert error["fields"] == {
        "variables": "details: at most 32,000 characters",
        "job_id": "This field is required.",
    }


def test_a_nested_validation_message_names_the_path():
    response = answer_to(ValidationError({"variables": {"job_name": ["Not a valid string."]}}))

    assert response.json()["error"]["message"] == "variables.job_name: Not a valid string."


def test_a_non_field_validation_message_is_shown_as_it_is():
    response = answer_to(ValidationError(["Expected an object."]))

    assert response.json()["error"]["message"] == "Expected an object."


def test_a_credential_echoed_in_an_error_message_is_redacted():
    response = answer_to(
        ValidationError({"platform": [f'"{GITHUB_TOKEN}" is not a valid choice.']})
    )

    assert GITHUB_TOKEN not in response.content.decode()
    assert "[REDACTED]" in response.json()["error"]["fields"]["platform"]


def test_a_credential_in_an_unknown_route_is_not_echoed(operator_client):
    response = operator_client.get(f"/api/v1/hooks/{GITHUB_TOKEN}/")

    assert response.status_code == 404
    assert GITHUB_TOKEN not in response.content.decode()
    assert "[REDACTED]" in response.json()["error"]["message"]


# --- server errors ------------------------------------------------------------------------------


@pytest.mark.urls("tests.portal.edge_probe_urls")
@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_a_server_error_on_an_api_path_answers_the_json_envelope_never_a_stack_page(
    client, settings, debug
):
    settings.DEBUG = debug

    response = client.get("/api/v1/broken/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "server_error"
    assert b"Traceback" not in response.content
    assert b"an unexpected failure" not in response.content


@pytest.mark.urls("tests.portal.edge_probe_urls")
def test_a_server_error_is_logged_with_its_stack(client, caplog):
    client.get("/api/v1/broken/")

    errors = [r for r in caplog.records if r.name == "django.request" and r.levelname == "ERROR"]
    assert len(errors) == 1  # once, with its stack (not again by Django without one)
    assert "RuntimeError: an unexpected failure with a stack" in caplog.text


# --- the debug page -----------------------------------------------------------------------------

SLACK_WEBHOOK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/cccccccccccccccccccccccc"


def debug_page(settings, rf) -> str:
    """Django's debug page for an error in a request, as a developer under ``make run`` sees it."""
    request = rf.get("/itsm/tickets/", HTTP_ACCEPT="text/html")
    request.META["SLACK_WEBHOOK_URL"] = SLACK_WEBHOOK  # runserver copies the environment here
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        return technical_500_response(request, type(exc), exc, exc.__traceback__).content.decode()


def test_the_debug_page_masks_the_itsm_endpoints(settings, rf):
    settings.DEBUG = True
    settings.ITSM_ENDPOINTS = {
        "JIRA_BASE_URL": "https://jira.internal.example",
        "JIRA_API_TOKEN": "jira-token-value-1234",
        "SERVICENOW_PASSWORD": "Winter2026!",
        "SLACK_WEBHOOK_URL": SLACK_WEBHOOK,
    }

    html = debug_page(settings, rf)

    for secret in ("jira.internal.example", "jira-token-value-1234", "Winter2026!", "cccccccc"):
        assert secret not in html
    assert "ITSM_ENDPOINTS" in html  # the setting is listed, its values masked


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SLACK_WEBHOOK_URL", SLACK_WEBHOOK),
        ("DATABASE_URL", "postgres://portal:db-password-42@db.internal/portal"),
        ("REDIS_URL", "redis://:redis-password-42@cache.internal:6379/0"),
        ("CELERY_BROKER_URL", "redis://:broker-password-42@cache.internal:6379/1"),
        ("GITHUB_TOKEN", GITHUB_TOKEN),
        ("LINEAR_API_KEY", "lin_api_" + "x" * 40),
    ],
)
def test_the_debug_page_masks_credential_settings(settings, rf, name, value):
    settings.DEBUG = True
    setattr(settings, name, value)

    html = debug_page(settings, rf)

    secret = value.rsplit("@", 1)[0].rsplit(":", 1)[-1] if "@" in value else value[-20:]
    assert secret not in html
    assert name in html


def test_a_password_inside_a_url_under_an_innocent_name_is_masked(settings, rf):
    settings.DEBUG = True
    settings.CHANNEL_LAYERS = {
        "default": {"CONFIG": {"hosts": ["redis://:hidden-in-a-list-42@cache.internal:6379/0"]}}
    }

    html = debug_page(settings, rf)

    assert "hidden-in-a-list-42" not in html


def test_the_debug_page_masks_the_environment_a_development_server_copies_into_meta(settings, rf):
    settings.DEBUG = True

    html = debug_page(settings, rf)

    assert "cccccccccccccccccccccccc" not in html
    assert "SLACK_WEBHOOK_URL" in html
