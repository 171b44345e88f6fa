"""The one retry policy of every ITSM client (seed 003 US-1), on an in-process transport.

These are unit tests of ``HttpClient.call``/``send``: httpx's MockTransport stands in for the
network so that each attempt's answer is chosen exactly. Integration against the fake servers
lives in test_clients.py.
"""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client import REGISTRY

from itsm.clients.base import HttpClient
from itsm.clients.jira import JiraClient
from itsm.config import Endpoint, ItsmConfig, parse_config
from itsm.errors import RetryableError, UpstreamRejected
from itsm.types import CallLog


def make_config(**retry) -> ItsmConfig:
    return parse_config({"retry_policy": retry, "reconcile": {"window_seconds": 0}}, environ={})


class Script:
    """Answers requests from a list of responses (or exceptions), recording what was sent."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(script: Script, config: ItsmConfig | None = None, cls=HttpClient, sleeps=None):
    instance = cls(
        Endpoint("jira", "http://upstream.test", "bot@example.com", "secret-token"),
        config=config or make_config(),
        transport=httpx.MockTransport(script),
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
    )
    instance.platform = instance.platform or "jira"
    return instance


def retries_counted(platform: str = "jira") -> float:
    return (
        REGISTRY.get_sample_value("itsm_ticket_retry_attempts_total", {"platform": platform}) or 0
    )


def test_a_503_is_retried_with_exponential_backoff_until_it_succeeds():
    script = Script(httpx.Response(503), httpx.Response(503), httpx.Response(200, json={"ok": 1}))
    sleeps: list[float] = []
    log = CallLog()
    before = retries_counted()

    instance = client(script, sleeps=sleeps)
    response = instance.call(lambda: instance.send("GET", "/x"), log=log, count_retries=True)

    assert response.json() == {"ok": 1}
    assert sleeps == [5.0, 10.0]
    assert [a.outcome for a in log.attempts] == ["retryable", "retryable", "ok"]
    assert [a.delay_seconds for a in log.attempts] == [5.0, 10.0, 0.0]
    assert retries_counted() - before == 2


def test_retry_after_wins_over_the_computed_backoff():
    script = Script(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200))
    sleeps: list[float] = []
    client(script, sleeps=sleeps).request("GET", "/x")
    assert sleeps == [7.0]


def test_a_retry_after_beyond_the_cap_ends_the_call_and_is_handed_to_the_caller():
    """Retrying before the server's time fails again; the outbox waits that long instead."""
    script = Script(
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(429, headers={"Retry-After": "3600"}),
    )
    sleeps: list[float] = []
    with pytest.raises(RetryableError) as caught:
        client(script, sleeps=sleeps).request("GET", "/x")
    assert sleeps == [7.0]
    assert caught.value.retry_after == 3600


def test_only_ticket_creation_counts_in_the_retry_metric():
    before = retries_counted()
    script = Script(httpx.Response(503), httpx.Response(200))
    client(script).request("GET", "/x")
    assert retries_counted() == before


def test_the_rate_limit_reason_is_kept_in_the_error():
    headers = {"Retry-After": "1", "RateLimit-Reason": "jira-quota-tenant-based"}
    script = Script(*[httpx.Response(429, headers=headers) for _ in range(4)])
    with pytest.raises(RetryableError) as caught:
        client(script).request("GET", "/x")
    assert "jira-quota-tenant-based" in str(caught.value)


def test_jira_beta_retry_after_is_read_when_retry_after_is_absent():
    script = Script(httpx.Response(429, headers={"Beta-Retry-After": "3"}), httpx.Response(200))
    sleeps: list[float] = []
    client(script, sleeps=sleeps).request("GET", "/x")
    assert sleeps == [3.0]


def test_the_delay_is_capped_by_max_retry_delay_seconds():
    config = make_config(retry_delay_seconds=20, max_retry_delay_seconds=30, max_retries=3)
    script = Script(
        httpx.Response(500), httpx.Response(502), httpx.Response(504), httpx.Response(200)
    )
    sleeps: list[float] = []
    client(script, config, sleeps=sleeps).request("GET", "/x")
    assert sleeps == [20.0, 30.0, 30.0]


def test_without_exponential_backoff_every_delay_is_the_base_delay():
    config = make_config(exponential_backoff=False, retry_delay_seconds=2)
    script = Script(httpx.Response(503), httpx.Response(503), httpx.Response(200))
    sleeps: list[float] = []
    client(script, config, sleeps=sleeps).request("GET", "/x")
    assert sleeps == [2.0, 2.0]


def test_retries_stop_after_max_retries_with_a_retryable_error():
    script = Script(*[httpx.Response(503) for _ in range(4)])
    log = CallLog()
    with pytest.raises(RetryableError) as caught:
        client(script).request("GET", "/x", log=log)
    assert len(script.requests) == 4  # the first attempt and three retries
    assert caught.value.status_code == 503
    assert log.retries == 3


def test_a_400_fails_at_once_with_jiras_error_collection_parsed_into_fields():
    body = {"errorMessages": ["Field 'priority' is required"], "errors": {"summary": "too long"}}
    script = Script(httpx.Response(400, json=body))
    with pytest.raises(UpstreamRejected) as caught:
        client(script).request("POST", "/x", json={})
    assert len(script.requests) == 1
    assert caught.value.status_code == 400
    assert caught.value.error_messages == ["Field 'priority' is required"]
    assert caught.value.field_errors == {"summary": "too long"}


def test_servicenow_error_shape_is_parsed():
    body = {"error": {"message": "Invalid table", "detail": "x_table"}, "status": "failure"}
    script = Script(httpx.Response(404, json=body))
    with pytest.raises(UpstreamRejected) as caught:
        client(script).request("GET", "/x")
    assert caught.value.error_messages == ["Invalid table", "x_table"]


def test_a_connection_error_is_retried_and_is_not_ambiguous():
    script = Script(httpx.ConnectError("refused"), httpx.Response(201))
    instance = client(script)
    calls: list[float] = []
    instance.call(
        lambda: instance.send("POST", "/create"), reconcile=lambda d: calls.append(d) or None
    )
    assert calls == []  # the request never reached the server: nothing to look for
    assert len(script.requests) == 2


def test_after_an_ambiguous_failure_the_next_attempt_reconciles_instead_of_creating_again():
    script = Script(httpx.ReadTimeout("no answer"))
    instance = client(script)
    reconciled: list[float] = []

    def reconcile(deadline: float):
        reconciled.append(deadline)
        return "found-existing"

    log = CallLog()
    result = instance.call(lambda: instance.send("POST", "/create"), log=log, reconcile=reconcile)

    assert result == "found-existing"
    assert len(script.requests) == 1  # no second create
    assert len(reconciled) == 1
    assert log.reconciled is True
    assert [a.outcome for a in log.attempts] == ["retryable", "existing"]


def test_a_429_is_not_ambiguous_so_no_reconciliation_happens():
    script = Script(httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(201))
    instance = client(script)
    calls: list[float] = []
    instance.call(
        lambda: instance.send("POST", "/create"), reconcile=lambda d: calls.append(d) or None
    )
    assert calls == []
    assert len(script.requests) == 2


def test_an_ambiguous_failure_that_outlives_the_retries_says_the_request_may_have_been_sent():
    script = Script(*[httpx.Response(503) for _ in range(4)])
    instance = client(script)
    with pytest.raises(RetryableError) as caught:
        instance.call(lambda: instance.send("POST", "/create"), reconcile=lambda d: None)
    assert caught.value.sent is True


def test_outbound_json_passes_through_redaction():
    script = Script(httpx.Response(201, json={}))
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    client(script).request("POST", "/x", json={"description": f"log: GITHUB_TOKEN={token} done"})
    sent = json.loads(script.requests[0].content)
    assert token not in sent["description"]
    assert "[REDACTED]" in sent["description"]


def test_basic_auth_goes_in_the_header_and_never_into_the_attempt_log():
    script = Script(httpx.Response(401, json={"errorMessages": ["Unauthorized"]}))
    log = CallLog()
    with pytest.raises(UpstreamRejected) as caught:
        client(script, cls=JiraClient).request("GET", "/x", log=log)
    assert script.requests[0].headers["Authorization"].startswith("Basic ")
    assert "secret-token" not in str(caught.value)
    assert "secret-token" not in json.dumps(log.as_list())
    assert "secret-token" not in repr(client(Script(), cls=JiraClient).endpoint)


def test_environment_overrides_the_file_values():
    config = parse_config(
        {"retry_policy": {"max_retries": 3}, "timeout": {"read_timeout_seconds": 30}},
        environ={"ITSM_MAX_RETRIES": "5", "ITSM_READ_TIMEOUT_SECONDS": "2.5"},
    )
    assert config.retry_policy.max_retries == 5
    assert config.timeout.read_timeout_seconds == 2.5
    assert config.retry_policy.backoff_multiplier == 2  # the seed's default


@pytest.mark.parametrize(
    ("raw", "environ", "message"),
    [
        ({"retry_policy": {"max_retries": -1}}, {}, "max_retries"),
        ({"retry_policy": {"backoff_multiplier": 0.5}}, {}, "backoff_multiplier"),
        ({"retry_policy": {"retries": 3}}, {}, "itsm_config.json"),
        ({}, {"ITSM_MAX_RETRIES": "three"}, "ITSM_MAX_RETRIES"),
    ],
)
def test_invalid_configuration_is_refused_with_a_clear_message(raw, environ, message):
    with pytest.raises(ValueError, match=message):
        parse_config(raw, environ=environ)


def test_the_shipped_config_file_has_the_seed_policy_and_both_rca_templates():
    from itsm.config import get_config

    config = get_config()
    assert config.retry_policy.max_retries == 3
    assert config.retry_policy.retryable_status_codes == frozenset({429, 500, 502, 503, 504})
    assert config.timeout.connection_timeout_seconds == 10
    assert set(config.templates["servicenow"]) >= {"rca_incident"}
    assert set(config.templates["jira"]) >= {"rca_issue"}


def test_a_write_that_cannot_be_reconciled_is_not_repeated_after_an_ambiguous_failure():
    script = Script(httpx.Response(503))
    instance = client(script)
    with pytest.raises(RetryableError) as caught:
        instance.call(lambda: instance.send("POST", "/bulk"), retry_ambiguous=False)
    assert len(script.requests) == 1
    assert caught.value.sent is True


def test_a_write_that_cannot_be_reconciled_is_still_retried_after_a_429():
    script = Script(httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(201))
    instance = client(script)
    instance.call(lambda: instance.send("POST", "/bulk"), retry_ambiguous=False)
    assert len(script.requests) == 2
