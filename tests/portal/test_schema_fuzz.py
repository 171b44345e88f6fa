"""The OpenAPI schema and the server agree: schemathesis runs every operation of ``/api/schema/``.

The schema is loaded from the Django app itself (schemathesis's WSGI loader, so requests run in
this process against the test database) and every operation is called as an operator with
generated data: a bounded, derandomized run (the same examples every time) whose answers must
never be a server error and must match the documented status codes, content types and
response schemas. A failure prints the request that reproduces it.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import HeartbeatFactory
from tests.fakes import FAKE_JIRA_EMAIL, FAKE_JIRA_TOKEN

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Platforms look configured, so from-template records tickets (201) instead of answering 503;
# nothing is sent: delivery happens in a worker after commit, and the test never commits.
UNREACHABLE = "http://127.0.0.1:9"
FUZZ_ENDPOINTS = {
    "JIRA_BASE_URL": f"{UNREACHABLE}/jira",
    "JIRA_EMAIL": "fuzz@example.com",
    "JIRA_API_TOKEN": "fuzz-jira-token",
    "JIRA_PROJECT_KEY": "OPS",
    "SERVICENOW_BASE_URL": f"{UNREACHABLE}/servicenow",
    "SERVICENOW_USER": "fuzz.user",
    "SERVICENOW_PASSWORD": "fuzz-servicenow-password",
    "SLACK_WEBHOOK_URL": "",
    "LINEAR_API_URL": "",
    "LINEAR_API_KEY": "",
    "GITHUB_API_URL": "",
    "GITHUB_TOKEN": "",
}


@pytest.fixture
def operator_token(operator) -> str:
    return Token.objects.create(user=operator).key


@pytest.fixture
def test_database_kept_open():
    """The WSGI handler closes the database connection after each request, as a server must;
    here it is the test's connection, holding the test's transaction (Django's test client
    disconnects the same receivers)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, test_database_kept_open, operator_token, settings, fake_servers):
    # Jira on the fakes: POST /api/jira/validate-project asks Jira while the caller waits (an
    # unreachable Jira is its documented 503, which this run counts as a server error).
    jira = {
        "JIRA_BASE_URL": fake_servers.base_url("jira"),
        "JIRA_EMAIL": FAKE_JIRA_EMAIL,
        "JIRA_API_TOKEN": FAKE_JIRA_TOKEN,
    }
    settings.ITSM_ENDPOINTS = {**settings.ITSM_ENDPOINTS, **FUZZ_ENDPOINTS, **jira}
    # Webhooks configured too: unsigned calls are then refused (403), not "not configured" (503).
    settings.GITHUB_WEBHOOK_SECRET = "fuzz-github-webhook-secret"
    settings.GITLAB_WEBHOOK_TOKEN = "fuzz-gitlab-webhook-token"
    HeartbeatFactory.create_batch(3)
    return schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json",
        get_wsgi_application(),
        headers={"Authorization": f"Token {operator_token}"},
    )


def run_operation(operation, token: str) -> None:
    """Up to MAX_EXAMPLES generated calls of one operation; raises the first failure."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,  # the same examples every run
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure shows its example
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def call(case) -> None:
        case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)

    call()


def test_every_operation_answers_as_its_schema_says(api_schema, operator_token):
    operations, failures = [], []
    for result in api_schema.get_all_operations():
        try:
            operations.append(result.ok())
        except Exception as exc:  # the schema itself is broken for this operation
            failures.append(f"schema error: {exc}")
    assert len(operations) >= 10, [operation.label for operation in operations]

    for operation in operations:
        try:
            run_operation(operation, operator_token)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis groups distinct failures
            failures.append(f"{operation.label}\n{exc}")

    assert not failures, "\n\n".join(failures)


def test_the_schema_generates_without_warnings_and_validates(tmp_path):
    from django.core.management import call_command

    call_command(
        "spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yml")
    )
