"""What operators and their tooling rely on: health and readiness, metrics, request ids, log lines."""

from __future__ import annotations

import copy
import io
import json
import logging
import logging.config
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from django.conf import settings

from portal.celery import app as celery_app

pytestmark = pytest.mark.django_db

GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
SLACK_TOKEN = "xoxb-2244668800-1357924680135-ZyXwVuTsRqPoNmLkJiHgFeDc"
BEARER_TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
PASSWORD = "Tr0ub4dor&3x"


# --- liveness and readiness -------------------------------------------------------------------


def test_healthz_answers_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_is_never_cached(client):
    response = client.get("/healthz")

    assert "no-cache" in response["Cache-Control"]


def test_readyz_answers_ok_when_database_and_broker_answer(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": {"ok": True}, "broker": {"ok": True}},
    }


@pytest.mark.redis
def test_readyz_checks_the_redis_broker_in_the_services_profile(client):
    assert celery_app.conf.broker_url.startswith("redis://")

    response = client.get("/readyz")

    assert response.json()["checks"]["broker"] == {"ok": True}


@pytest.fixture
def unreachable_broker():
    """Points the Celery app at a closed port, and back afterwards."""
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    yield
    celery_app.conf.broker_url = original


def test_readyz_answers_503_naming_the_broker_when_it_is_unreachable(client, unreachable_broker):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {
            "database": {"ok": True},
            "broker": {"ok": False, "error": "OperationalError"},
        },
    }


def test_readyz_gives_up_on_an_unreachable_broker_within_seconds(client, unreachable_broker):
    started = time.monotonic()

    client.get("/readyz")

    # one retry after kombu's 2 s interval; never the default retry-forever
    assert time.monotonic() - started < 5


# --- metrics ----------------------------------------------------------------------------------


def test_metrics_expose_django_request_counters_in_prometheus_text(client, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    client.get("/healthz")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "# TYPE django_http_requests_total_by_method_total counter" in text
    assert re.search(r'^django_http_requests_total_by_method_total\{method="GET"\} \d', text, re.M)
    assert "django_http_responses_total_by_status_total" in text


def write_counter_in_another_process(directory, amount: int) -> None:
    """A separate Python process (as a Celery worker is) increments a counter and exits."""
    code = textwrap.dedent(
        f"""
        from prometheus_client import Counter
        Counter("portal_test_cross_process", "Written by a worker process").inc({amount})
        """
    )
    subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        check=True,
        timeout=60,
    )


def test_metrics_include_counters_written_by_other_processes(client, monkeypatch, tmp_path):
    write_counter_in_another_process(tmp_path, 3)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    text = client.get("/metrics").content.decode()

    assert "portal_test_cross_process_total 3.0" in text


def test_metrics_sum_a_counter_across_processes(client, monkeypatch, tmp_path):
    write_counter_in_another_process(tmp_path, 3)
    write_counter_in_another_process(tmp_path, 4)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    text = client.get("/metrics").content.decode()

    assert "portal_test_cross_process_total 7.0" in text


# --- request ids ------------------------------------------------------------------------------


def test_every_response_carries_a_generated_request_id(client):
    response = client.get("/healthz")

    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_each_request_gets_its_own_request_id(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]

    assert first != second


def test_a_valid_incoming_request_id_is_echoed(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.2026:trace_01-a")

    assert response["X-Request-ID"] == "lb-7f3a.2026:trace_01-a"


@pytest.mark.parametrize(
    "incoming",
    ["x" * 129, "two words", "<script>alert(1)</script>", "id;rm -rf", "ünïcode", ""],
    ids=["too-long", "space", "markup", "semicolon", "non-ascii", "empty"],
)
def test_an_invalid_incoming_request_id_is_replaced(client, incoming):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)

    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_api_errors_carry_the_request_id_too(api_client):
    response = api_client.get("/api/v1/", HTTP_X_REQUEST_ID="req-401")

    assert response.status_code == 401
    assert response["X-Request-ID"] == "req-401"


# --- log lines --------------------------------------------------------------------------------


def handler_from_settings(formatter: str, stream: io.StringIO) -> logging.Handler:
    """A handler built as ``settings.LOGGING`` builds its console handler, writing to ``stream``.

    The standard library's own configurator builds the formatter and filters, so the test reads
    the portal's configuration exactly as ``dictConfig`` does, without replacing the process's
    logging setup.
    """
    configurator = logging.config.DictConfigurator(copy.deepcopy(settings.LOGGING))
    config = configurator.config
    handler = logging.StreamHandler(stream)
    handler.setFormatter(configurator.configure_formatter(config["formatters"][formatter]))
    for name in config["handlers"]["console"]["filters"]:
        handler.addFilter(configurator.configure_filter(config["filters"][name]))
    return handler


@pytest.fixture
def log_stream():
    """``attach(logger_name, formatter)`` returns the stream a configured handler writes to."""
    attached: list[tuple[logging.Logger, logging.Handler]] = []

    def attach(logger_name: str, formatter: str = "json") -> io.StringIO:
        stream = io.StringIO()
        handler = handler_from_settings(formatter, stream)
        logger = logging.getLogger(logger_name)
        logger.addHandler(handler)
        attached.append((logger, handler))
        return stream

    yield attach
    for logger, handler in attached:
        logger.removeHandler(handler)


@pytest.fixture
def test_logger() -> logging.Logger:
    logger = logging.getLogger(f"portal.tests.{uuid.uuid4().hex[:8]}")
    logger.setLevel(logging.INFO)
    return logger


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_access_log_line_is_json_with_the_request_id(client, log_stream):
    stream = log_stream("portal.access", "json")

    client.get("/healthz", HTTP_X_REQUEST_ID="req-access-1")

    [line] = json_lines(stream)
    assert line["request_id"] == "req-access-1"
    assert line["level"] == "INFO"
    assert line["logger"] == "portal.access"
    assert line["message"] == "GET /healthz 200"
    assert line["method"] == "GET"
    assert line["path"] == "/healthz"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert {"time", "process"} <= set(line)


def test_log_lines_written_by_a_view_carry_the_request_id(client, log_stream, unreachable_broker):
    stream = log_stream("portal.views", "json")

    client.get("/readyz", HTTP_X_REQUEST_ID="req-ready-9")

    [line] = json_lines(stream)
    assert line["message"] == "readiness check broker failed: OperationalError"
    assert line["level"] == "WARNING"
    assert line["request_id"] == "req-ready-9"


def test_text_log_lines_show_the_request_id_in_brackets(client, log_stream):
    stream = log_stream("portal.access", "text")

    client.get("/healthz", HTTP_X_REQUEST_ID="req-text-2")

    assert "[req-text-2] GET /healthz 200" in stream.getvalue()


def test_log_lines_outside_a_request_show_a_dash_for_the_request_id(log_stream, test_logger):
    stream = log_stream(test_logger.name, "json")

    test_logger.info("beat tick")

    assert json_lines(stream)[0]["request_id"] == "-"


SECRETS_IN_MESSAGES = {
    "github-token": (f"cloning with {GITHUB_TOKEN}", GITHUB_TOKEN),
    "slack-token": (f"posting with {SLACK_TOKEN} to #ops", SLACK_TOKEN),
    "bearer-header": (f"sent Authorization: Bearer {BEARER_TOKEN}", BEARER_TOKEN),
    "password-pair": (f"login failed for password={PASSWORD} user=ci", PASSWORD),
    "url-credentials": (f"cannot reach https://deploy:{PASSWORD}@jira.example.com/rest", PASSWORD),
}


@pytest.mark.parametrize("formatter", ["json", "text"])
@pytest.mark.parametrize("case", SECRETS_IN_MESSAGES, ids=str)
def test_credentials_in_log_messages_are_masked(log_stream, test_logger, case, formatter):
    message, secret = SECRETS_IN_MESSAGES[case]
    stream = log_stream(test_logger.name, formatter)

    test_logger.warning(message)

    output = stream.getvalue()
    assert secret not in output
    assert "[REDACTED]" in output


def test_credentials_passed_as_log_arguments_are_masked(log_stream, test_logger):
    stream = log_stream(test_logger.name, "json")

    test_logger.info("calling %s with %s", "https://api.github.com", f"token {GITHUB_TOKEN}")

    [line] = json_lines(stream)
    assert line["message"] == "calling https://api.github.com with token [REDACTED]"


@pytest.mark.parametrize("formatter", ["json", "text"])
def test_credentials_inside_exception_tracebacks_are_masked(log_stream, test_logger, formatter):
    stream = log_stream(test_logger.name, formatter)

    try:
        raise ConnectionError(
            f"POST https://bot:{PASSWORD}@jira.example.com failed; "
            f"Authorization: Bearer {BEARER_TOKEN}; slack {SLACK_TOKEN}; github {GITHUB_TOKEN}"
        )
    except ConnectionError:
        test_logger.exception("upstream call failed")

    output = stream.getvalue()
    assert "Traceback (most recent call last)" in output
    assert "ConnectionError" in output
    for secret in (PASSWORD, BEARER_TOKEN, SLACK_TOKEN, GITHUB_TOKEN):
        assert secret not in output
    assert output.count("[REDACTED]") >= 4


def test_ordinary_log_messages_are_left_alone(log_stream, test_logger):
    stream = log_stream(test_logger.name, "json")

    test_logger.info("escalated PROJ-123 for commit 3f786850e387550fdab836ed7e6dc881de23001b")

    [line] = json_lines(stream)
    assert (
        line["message"] == "escalated PROJ-123 for commit 3f786850e387550fdab836ed7e6dc881de23001b"
    )
