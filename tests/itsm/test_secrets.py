"""Configured credentials are masked literally, even where no pattern knows their shape.

A ServiceNow password such as ``Winter2026!`` looks like any other word; ``itsm.config.endpoints()``
registers it (and every other configured secret) with ``portal.redaction``, and ``redact_text`` masks
it wherever it appears: an upstream error body, an outbound payload, a log line.
"""

from __future__ import annotations

import base64
import logging
import threading
from urllib.parse import quote

import httpx
import pytest

from itsm.clients.base import upstream_error_fields
from itsm.clients.servicenow import ServiceNowClient
from itsm.config import Endpoint, endpoints, parse_config
from itsm.errors import UpstreamRejected
from portal import redaction
from portal.observability import RedactingFilter
from portal.redaction import MASK, redact, redact_text, register_secrets

PASSWORD = "Winter2026!"
SLACK_PATH = "T0AB12CD3/B0EF45GH6/s3cr3tW3bh00kP4th"
CONFIGURED = {
    "JIRA_BASE_URL": "https://acme.atlassian.net",
    "JIRA_EMAIL": "portal-bot@acme.example",
    "JIRA_API_TOKEN": "jira-plain-token-42",
    "JIRA_PROJECT_KEY": "OPS",
    "SERVICENOW_BASE_URL": "https://acme.service-now.com",
    "SERVICENOW_USER": "portal.integration",
    "SERVICENOW_PASSWORD": PASSWORD,
    "SLACK_WEBHOOK_URL": f"https://hooks.slack.com/services/{SLACK_PATH}",
    "LINEAR_API_URL": "https://api.linear.app/graphql",
    "LINEAR_API_KEY": "linear-key-without-prefix",
    "GITHUB_API_URL": "https://api.github.com",
    "GITHUB_TOKEN": "plain-github-token-77",
}


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch):
    """Each test starts with no registered secret and leaves the process's registry as it was."""
    monkeypatch.setattr(redaction, "_registry", redaction._EMPTY_REGISTRY)


@pytest.fixture
def configured(settings):
    settings.ITSM_ENDPOINTS = dict(CONFIGURED)
    return endpoints()


# --- the registry ------------------------------------------------------------------------------


def test_a_registered_password_is_masked_where_no_pattern_would_find_it():
    text = f"ServiceNow said: user portal.integration with {PASSWORD} is locked"
    assert redact_text(text) == text  # no pattern knows it

    register_secrets(PASSWORD)

    assert redact_text(text) == f"ServiceNow said: user portal.integration with {MASK} is locked"


def test_a_registered_password_is_masked_in_every_string_of_a_payload():
    register_secrets(PASSWORD)
    payload = {
        "short_description": f"login failed for {PASSWORD}",
        "comments": [{"body": f"tried {PASSWORD} twice"}],
        "count": 2,
    }

    assert redact(payload) == {
        "short_description": f"login failed for {MASK}",
        "comments": [{"body": f"tried {MASK} twice"}],
        "count": 2,
    }


def test_the_url_quoted_form_of_a_secret_is_masked():
    register_secrets(PASSWORD)
    url = f"https://acme.example/login?user=bot&pw={quote(PASSWORD, safe='')}"

    assert redact_text(url) == f"https://acme.example/login?user=bot&pw={MASK}"


def test_the_basic_auth_form_of_a_secret_is_masked_when_the_user_is_known():
    register_secrets(PASSWORD, username="portal.integration")
    header = base64.b64encode(f"portal.integration:{PASSWORD}".encode()).decode()

    assert redact_text(f"sent credentials {header} to the proxy") == (
        f"sent credentials {MASK} to the proxy"
    )


@pytest.mark.parametrize("value", ["", None, "abc", "12345"])
def test_empty_and_short_values_are_not_registered(value):
    register_secrets(value)

    assert redaction._registry is redaction._EMPTY_REGISTRY
    assert redact_text("abc 12345 stays") == "abc 12345 stays"


def test_a_longer_secret_wins_over_a_shorter_one_it_contains():
    register_secrets("hunter", "hunter2-and-more")

    assert redact_text("pw hunter2-and-more, or hunter") == f"pw {MASK}, or {MASK}"


def test_registering_known_values_again_does_not_rebuild_the_pattern():
    register_secrets(PASSWORD, "another-secret")
    before = redaction._registry

    register_secrets(PASSWORD)
    register_secrets("another-secret", PASSWORD)

    assert redaction._registry is before


def test_concurrent_registrations_are_all_kept():
    values = [f"secret-value-{i:03d}" for i in range(200)]
    barrier = threading.Barrier(8)

    def register(chunk: list[str]) -> None:
        barrier.wait()
        for value in chunk:
            register_secrets(value)

    threads = [threading.Thread(target=register, args=(values[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert redact_text(" ".join(values)) == " ".join([MASK] * len(values))


def test_masking_the_literal_first_leaves_no_part_of_it_to_the_patterns():
    secret = "token abc9 and-rest"  # a pattern alone would mask only "abc9"
    register_secrets(secret)

    assert redact_text(f"leaked: {secret}!") == f"leaked: {MASK}!"


# --- endpoints() registers what it reads ----------------------------------------------------------


@pytest.mark.parametrize(
    "variable",
    ["JIRA_API_TOKEN", "SERVICENOW_PASSWORD", "LINEAR_API_KEY", "GITHUB_TOKEN"],
)
def test_endpoints_registers_each_configured_secret(configured, variable):
    secret = CONFIGURED[variable]

    assert redact_text(f"upstream echoed {secret} back") == f"upstream echoed {MASK} back"


def test_endpoints_registers_the_slack_webhook_path(configured):
    text = f"POST /services/{SLACK_PATH} failed; path {SLACK_PATH}"

    assert SLACK_PATH not in redact_text(text)


def test_endpoints_registers_the_basic_auth_header_of_jira_and_servicenow(configured):
    for user, secret in [
        (CONFIGURED["JIRA_EMAIL"], CONFIGURED["JIRA_API_TOKEN"]),
        (CONFIGURED["SERVICENOW_USER"], PASSWORD),
    ]:
        encoded = base64.b64encode(f"{user}:{secret}".encode()).decode()
        assert redact_text(f"headers={{'auth': '{encoded}'}}") == f"headers={{'auth': '{MASK}'}}"


def test_endpoints_with_nothing_configured_registers_nothing(settings):
    settings.ITSM_ENDPOINTS = dict.fromkeys(CONFIGURED, "")

    endpoints()

    assert redaction._registry is redaction._EMPTY_REGISTRY


def test_an_upstream_error_body_echoing_the_password_is_masked(configured):
    response = httpx.Response(
        401,
        json={"error": {"message": "User Not Authenticated", "detail": f"bad password {PASSWORD}"}},
    )

    summary, messages, _ = upstream_error_fields(response)

    assert PASSWORD not in summary
    assert messages == ["User Not Authenticated", f"bad password {MASK}"]


def test_a_client_error_raised_from_an_echoing_upstream_does_not_carry_the_password(configured):
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"rejected credentials portal.integration/{PASSWORD}")

    client = ServiceNowClient(
        configured["servicenow"],
        config=parse_config({"retry_policy": {"max_retries": 0}}, environ={}),
        transport=httpx.MockTransport(echo),
        sleep=lambda _: None,
    )
    with pytest.raises(UpstreamRejected) as raised:
        client.request("GET", "/api/now/table/incident")

    assert PASSWORD not in str(raised.value)


# --- logs ----------------------------------------------------------------------------------------


def test_a_log_line_with_a_configured_password_is_masked(configured, caplog):
    caplog.handler.addFilter(RedactingFilter())
    logger = logging.getLogger("itsm.test_secrets")

    with caplog.at_level(logging.WARNING, logger="itsm.test_secrets"):
        logger.warning("ServiceNow login as %s with %s failed", "portal.integration", PASSWORD)
        try:
            raise RuntimeError(f"connect with {PASSWORD}")
        except RuntimeError:
            logger.exception("giving up")

    assert PASSWORD not in caplog.text
    assert f"portal.integration with {MASK} failed" in caplog.text
    assert f"RuntimeError: connect with {MASK}" in caplog.text


# --- Endpoint.__repr__ ---------------------------------------------------------------------------


def test_endpoint_repr_shows_platform_origin_and_username_only(configured):
    text = repr(configured["servicenow"])

    assert text == (
        "Endpoint(platform='servicenow', base_url='https://acme.service-now.com', "
        "username='portal.integration')"
    )


def test_endpoint_repr_hides_the_slack_webhook_url_which_is_the_credential(configured):
    text = repr(configured["slack"])

    assert SLACK_PATH not in text
    assert "/services/" not in text
    assert text == "Endpoint(platform='slack', base_url='https://hooks.slack.com', username='')"


def test_endpoint_repr_drops_userinfo_path_and_query_but_keeps_the_port():
    endpoint = Endpoint("jira", "http://bot:pa55word@127.0.0.1:8080/jira?x=1", "bot", "s3cret-x")

    assert repr(endpoint) == (
        "Endpoint(platform='jira', base_url='http://127.0.0.1:8080', username='bot')"
    )
    assert "pa55word" not in str(endpoint)
    assert "s3cret-x" not in f"{endpoint!r} {endpoint}"


def test_endpoint_repr_of_a_malformed_url_shows_no_part_of_it():
    endpoint = Endpoint("slack", "https://hooks.example:notaport/services/T/B/secret")

    assert repr(endpoint) == "Endpoint(platform='slack', base_url='', username='')"
