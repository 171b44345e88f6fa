"""The five ITSM clients against the strict fake servers, over real HTTP on loopback.

Retry delays are shortened by a config built with ``parse_config`` (10 ms backoff, a 1 s
reconciliation window polled every 50 ms); a ``sleep`` that records instead of sleeping stands in
where the test needs the exact delay the policy chose.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from prometheus_client import REGISTRY

from itsm.clients import client_for
from itsm.clients.jira import JiraClient, idempotency_label
from itsm.clients.slack import build_blocks
from itsm.config import Endpoint, ItsmConfig, parse_config
from itsm.errors import UpstreamRejected, ValidationFailed
from itsm.types import CallLog

RCA_DESCRIPTION = "Job ID: 7\nSeverity: high\n\nDetails"


def fast_config(window_seconds: float = 1.0) -> ItsmConfig:
    raw = json.loads(Path(settings.ITSM_CONFIG_PATH).read_text(encoding="utf-8"))
    raw["retry_policy"].update(retry_delay_seconds=0.01, max_retry_delay_seconds=2)
    raw["reconcile"] = {"window_seconds": window_seconds, "poll_interval_seconds": 0.05}
    raw["timeout"] = {
        "connection_timeout_seconds": 2,
        "read_timeout_seconds": 5,
        "total_timeout_seconds": 20,
    }
    return parse_config(raw, environ={})


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def request_count(state: dict, method: str | None = None, path: str | None = None) -> int:
    """Requests the fake served, optionally only ``method`` on a path ending with ``path``."""
    total = 0
    for key, count in state["requests"].items():
        verb, _, route = key.partition(" ")
        if method and verb != method:
            continue
        if path and not route.endswith(path):
            continue
        total += count
    return total


@pytest.fixture
def config():
    return fast_config()


@pytest.fixture
def jira(itsm_endpoints, config):
    with client_for("jira", config=config) as client:
        yield client


def issues_in(fakes) -> list[dict]:
    return fakes.state("jira")["issues"]


def create(jira, summary: str = "RCA Required: nightly", **kwargs):
    return jira.create_ticket("OPS", summary, RCA_DESCRIPTION, "Task", **kwargs)


# --- Jira: create ---------------------------------------------------------------------------


def test_jira_create_ticket_creates_one_issue_with_an_adf_description_and_the_idempotency_label(
    jira, fakes
):
    created = create(jira, idempotency_key="job-7")

    [issue] = issues_in(fakes)
    assert created.key == issue["key"] == "OPS-1"
    assert issue["fields"]["description"]["type"] == "doc"
    assert issue["fields"]["description"]["version"] == 1
    assert idempotency_label("job-7") in issue["labels"]
    assert created.url.endswith("/browse/OPS-1")
    assert not created.reconciled


def test_jira_multi_line_summary_is_refused_before_any_request(jira, fakes):
    before = sample("itsm_validation_errors_total", platform="jira", field="summary")

    with pytest.raises(ValidationFailed) as refused:
        create(jira, summary="first line\nsecond line")

    assert [error.code for error in refused.value.errors] == ["single_line"]
    assert request_count(fakes.state("jira")) == 0
    assert sample("itsm_validation_errors_total", platform="jira", field="summary") == before + 1


def test_jira_400_becomes_upstream_rejected_with_its_fields_after_exactly_one_request(jira, fakes):
    with pytest.raises(UpstreamRejected) as rejected:
        jira.create_ticket("NOPE", "RCA Required: nightly", RCA_DESCRIPTION)

    assert rejected.value.status_code == 400
    assert set(rejected.value.field_errors) == {"project"}
    assert request_count(fakes.state("jira")) == 1
    assert issues_in(fakes) == []


def test_jira_503_twice_is_retried_and_created_on_the_third_attempt(jira, fakes):
    fakes.faults(platform="jira", status=503, count=2, path_contains="/issue", method="POST")
    retries_before = sample("itsm_ticket_retry_attempts_total", platform="jira")
    log = CallLog()

    created = create(jira, log=log)

    assert [a.outcome for a in log.attempts] == ["retryable", "retryable", "ok"]
    assert [a.status_code for a in log.attempts[:2]] == [503, 503]
    assert log.retries == 2
    assert all(a.delay_seconds > 0 for a in log.attempts[:2])
    assert sample("itsm_ticket_retry_attempts_total", platform="jira") == retries_before + 2
    assert [issue["key"] for issue in issues_in(fakes)] == [created.key]


def test_jira_429_waits_the_retry_after_seconds_it_was_given(itsm_endpoints, config, fakes):
    fakes.faults(platform="jira", status=429, count=1, retry_after=1, path_contains="/issue")
    sleeps: list[float] = []
    log = CallLog()

    with client_for("jira", config=config, sleep=sleeps.append) as jira:
        create(jira, log=log)

    assert sleeps == [1.0]
    assert log.attempts[0].delay_seconds == 1.0
    assert len(issues_in(fakes)) == 1


@pytest.mark.parametrize(
    "failure", [{"status": 503}, {"drop": True}], ids=["503_after_create", "dropped_connection"]
)
def test_jira_create_whose_answer_is_lost_is_found_by_its_label_not_created_twice(
    jira, fakes, failure
):
    fakes.set_index_lag(0.3)
    fakes.faults(
        platform="jira", mode="after", count=1, method="POST", path_contains="/issue", **failure
    )
    existing_before = sample("itsm_ticket_creation_total", platform="jira", outcome="existing")

    created = create(jira, idempotency_key="lost-answer")

    [issue] = issues_in(fakes)
    assert created.key == issue["key"]
    assert created.reconciled
    assert [a.outcome for a in created.log.attempts] == ["retryable", "existing"]
    assert (
        sample("itsm_ticket_creation_total", platform="jira", outcome="existing")
        == existing_before + 1
    )


def test_jira_redelivery_with_reconcile_first_finds_the_issue_created_before(jira, fakes):
    first = create(jira, idempotency_key="redelivered")

    again = create(jira, idempotency_key="redelivered", reconcile_first=True)

    assert again.key == first.key
    assert again.reconciled
    assert len(issues_in(fakes)) == 1
    assert request_count(fakes.state("jira"), "POST", "/issue") == 1


def test_jira_bulk_create_maps_successes_and_failures_to_the_callers_indexes(jira, fakes):
    issues = [
        {"fields": jira.issue_fields("OPS", "first", None, "Task")},
        {"fields": jira.issue_fields("OPS", "second", None, "Nonsense")},
        {"fields": jira.issue_fields("OPS", "third", None, "Task")},
    ]

    result = jira.bulk_create(issues)

    assert sorted(result.created) == [0, 2]
    [failure] = result.failed
    assert failure.index == 1
    assert failure.status == 400
    assert "issuetype" in failure.field_errors
    summaries = {issue["key"]: issue["fields"]["summary"] for issue in issues_in(fakes)}
    assert summaries[result.created[0].key] == "first"
    assert summaries[result.created[2].key] == "third"


def test_jira_bulk_create_of_120_issues_takes_three_calls(jira, fakes):
    issues = [{"fields": jira.issue_fields("OPS", f"issue {n}", None, "Task")} for n in range(120)]

    result = jira.bulk_create(issues)

    assert len(result.created) == 120
    assert result.failed == []
    assert request_count(fakes.state("jira"), "POST", "/issue/bulk") == 3
    assert len(issues_in(fakes)) == 120


def test_jira_search_follows_next_page_token_over_every_page(jira, fakes):
    jira.bulk_create(
        [{"fields": jira.issue_fields("OPS", f"issue {n}", None, "Task")} for n in range(7)]
    )

    found = list(jira.search("project = OPS ORDER BY key", fields=["summary"], page_size=3))

    assert [issue["fields"]["summary"] for issue in found] == [f"issue {n}" for n in range(7)]
    assert request_count(fakes.state("jira"), "POST", "/search/jql") == 3


def test_jira_client_never_calls_the_removed_search_endpoint(jira, fakes):
    fakes.faults(platform="jira", mode="after", status=503, count=1, path_contains="/issue")
    create(jira, idempotency_key="search-check")
    list(jira.search("project = OPS"))

    paths = [key.partition(" ")[2] for key in fakes.state("jira")["requests"]]
    assert any(path.endswith("/search/jql") for path in paths)
    assert not any(path.endswith("/rest/api/3/search") for path in paths)


# --- Jira: workflow, links, comments, attachments --------------------------------------------


def status_of(fakes, key: str) -> str:
    return next(issue["status"] for issue in issues_in(fakes) if issue["key"] == key)


def test_jira_transition_takes_the_first_preferred_state_the_workflow_allows(jira, fakes):
    key = create(jira).key

    assert jira.transition(key, ["Failed", "Blocked"]) == "Failed"
    assert status_of(fakes, key) == "Failed"


def test_jira_transition_falls_back_to_a_later_preference(jira, fakes):
    key = create(jira).key
    jira.transition(key, ["Failed"])

    assert jira.transition(key, ["Blocked", "Done"]) == "Done"
    assert status_of(fakes, key) == "Done"


def test_jira_transition_returns_none_when_no_preferred_state_is_reachable(jira, fakes):
    key = create(jira).key
    jira.transition(key, ["Done"])

    assert jira.transition(key, ["Failed", "Blocked"]) is None
    assert status_of(fakes, key) == "Done"


def test_jira_link_issues_makes_the_first_issue_block_the_second(jira):
    blocker = create(jira, summary="blocker").key
    blocked = create(jira, summary="blocked").key

    jira.link_issues(blocker, blocked)

    assert jira.get_blockers_by_key(blocked) == [blocker]
    assert jira.get_blockers_by_key(blocker) == []
    assert jira.get_blockers(jira.get_issue(blocker, ["issuelinks"])) == []


def test_jira_add_comment_sends_text_as_adf_that_jira_accepts(jira, fakes):
    key = create(jira).key

    jira.add_comment(key, "Build failed again.\n\nSee the log.")

    [comment] = issues_in(fakes)[0]["comments"]
    assert comment["body"]["type"] == "doc"
    assert len(comment["body"]["content"]) == 2


def test_jira_add_attachment_uploads_the_file(jira, fakes):
    key = create(jira).key

    [attachment] = jira.add_attachment(key, "build.log", b"line one\nline two\n", "text/plain")

    assert attachment["filename"] == "build.log"
    assert attachment["size"] == len(b"line one\nline two\n")
    assert len(issues_in(fakes)[0]["attachments"]) == 1


def test_jira_parse_description_reads_key_values_of_an_issue_created_from_text(jira):
    key = create(jira).key

    assert jira.parse_description(key) == {"Job ID": "7", "Severity": "high"}


def test_jira_parse_description_reads_a_headed_section_of_an_adf_description(jira):
    def paragraph(text: str) -> dict:
        return {"type": "paragraph", "content": [{"type": "text", "text": text}]}

    document = {
        "type": "doc",
        "version": 1,
        "content": [
            paragraph("Job ID: 7"),
            {
                "type": "heading",
                "attrs": {"level": 2},
                "content": [{"type": "text", "text": "Logs"}],
            },
            paragraph("line one"),
            paragraph("line two"),
        ],
    }
    key = jira.create_ticket("OPS", "RCA Required: nightly", document).key

    parsed = jira.parse_description(key)

    assert parsed["Job ID"] == "7"
    assert parsed["Logs"] == "line one\nline two"


# --- Jira: metadata ---------------------------------------------------------------------------


def test_jira_my_permissions_reports_each_requested_permission(jira):
    assert jira.my_permissions("OPS", ["CREATE_ISSUES", "BROWSE_PROJECTS"]) == {
        "CREATE_ISSUES": True,
        "BROWSE_PROJECTS": True,
    }


def test_jira_create_meta_lists_the_create_screen_fields(jira):
    fields = {field["fieldId"]: field for field in jira.create_meta("OPS", "10001")}

    assert fields["summary"]["required"] is True
    assert {"description", "priority", "labels"} <= set(fields)


def test_jira_priorities_are_the_five_standard_ones(jira):
    names = [priority["name"] for priority in jira.priorities()]

    assert names == ["Highest", "High", "Medium", "Low", "Lowest"]


def test_jira_assignable_users_have_account_ids(jira):
    users = jira.assignable_users("OPS")

    assert users
    assert all(user["accountId"] for user in users)


def test_jira_sprints_of_board_one_are_the_active_and_future_ones(jira):
    states = [sprint["state"] for sprint in jira.sprints(1)]

    assert states == ["active", "future"]


# --- ServiceNow -------------------------------------------------------------------------------


@pytest.fixture
def servicenow(itsm_endpoints, config):
    with client_for("servicenow", config=config) as client:
        yield client


def incident_fields(**overrides) -> dict:
    return {
        "short_description": "RCA Required: nightly",
        "description": RCA_DESCRIPTION,
        "priority": "2",
        **overrides,
    }


def incidents_in(fakes) -> list[dict]:
    return fakes.state("servicenow")["incidents"]


def test_servicenow_priority_is_sent_as_impact_and_urgency_and_computed_by_the_instance(
    servicenow, fakes
):
    created = servicenow.create_incident(incident_fields(), idempotency_key="job-7")

    [incident] = incidents_in(fakes)
    assert (incident["impact"], incident["urgency"], incident["priority"]) == ("1", "2", "2")
    assert incident["correlation_id"] == "job-7"
    assert created.key == incident["number"]
    assert created.key.startswith("INC")


def test_servicenow_incident_body_never_carries_priority(servicenow):
    body = servicenow.incident_body(incident_fields(), "job-7")

    assert "priority" not in body
    assert body["correlation_id"] == "job-7"


def test_servicenow_create_whose_answer_is_lost_makes_one_incident(servicenow, fakes):
    fakes.faults(platform="servicenow", mode="after", status=503, count=1, method="POST")

    created = servicenow.create_incident(incident_fields(), idempotency_key="lost-answer")

    [incident] = incidents_in(fakes)
    assert created.id == incident["sys_id"]
    assert created.reconciled


def test_servicenow_short_description_over_160_characters_is_refused_locally(servicenow, fakes):
    with pytest.raises(ValidationFailed) as refused:
        servicenow.create_incident(incident_fields(short_description="x" * 161))

    assert [(e.field, e.code) for e in refused.value.errors] == [
        ("short_description", "max_length")
    ]
    assert request_count(fakes.state("servicenow")) == 0


def test_servicenow_add_comment_appends_a_journal_entry(servicenow, fakes):
    created = servicenow.create_incident(incident_fields())

    servicenow.add_comment(created.id, "Rerun scheduled.")

    [incident] = incidents_in(fakes)
    assert [(entry["element"], entry["value"]) for entry in incident["journal"]] == [
        ("comments", "Rerun scheduled.")
    ]


# --- Slack ------------------------------------------------------------------------------------


@pytest.fixture
def slack(itsm_endpoints, config):
    with client_for("slack", config=config) as client:
        yield client


def test_slack_post_message_with_built_blocks_is_accepted(slack, fakes):
    blocks = build_blocks("Build failed", "*nightly* failed twice", {"Job": "7", "Owner": "ops"})

    slack.post_message("Build failed", blocks)

    [message] = fakes.state("slack")["messages"]
    assert message["text"] == "Build failed"
    assert message["blocks"] == blocks


@pytest.mark.parametrize(
    "blocks",
    [
        [{"type": "divider"}] * 51,
        [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
    ],
    ids=["51_blocks", "section_of_3001_characters"],
)
def test_slack_blocks_beyond_block_kit_limits_are_refused_locally(slack, fakes, blocks):
    with pytest.raises(ValidationFailed):
        slack.post_message("Build failed", blocks)

    assert request_count(fakes.state("slack")) == 0


def test_slack_429_is_retried_after_the_retry_after_seconds(itsm_endpoints, config, fakes):
    fakes.faults(platform="slack", status=429, retry_after=1, count=1)
    sleeps: list[float] = []

    with client_for("slack", config=config, sleep=sleeps.append) as slack:
        slack.post_message("Build failed")

    assert sleeps == [1.0]
    assert len(fakes.state("slack")["messages"]) == 1


# --- Linear -----------------------------------------------------------------------------------


@pytest.fixture
def linear(itsm_endpoints, config):
    with client_for("linear", config=config) as client:
        yield client


def test_linear_create_issue_twice_with_one_key_makes_one_issue(linear, fakes):
    team = linear.teams()[0]["id"]

    first = linear.create_issue(team, "Flaky test", "It *fails*.", idempotency_key="job-7")
    second = linear.create_issue(team, "Flaky test", "It *fails*.", idempotency_key="job-7")

    assert (second.id, second.key) == (first.id, first.key)
    assert len(fakes.state("linear")["issues"]) == 1


def test_linear_team_id_is_looked_up_by_key_or_name(linear):
    platform = next(team for team in linear.teams() if team["key"] == "PLT")

    assert linear.team_id("plt") == platform["id"]
    assert linear.team_id("Platform") == platform["id"]
    assert linear.team_id("no such team") is None


def test_linear_label_ids_are_looked_up_by_name_ignoring_case(linear):
    assert len(linear.label_ids(["CI-Failure", "flaky", "no-such-label"])) == 2


def test_linear_sends_the_api_key_bare_as_the_fake_demands(linear, itsm_endpoints):
    key = itsm_endpoints["LINEAR_API_KEY"]

    assert linear.http.headers["Authorization"] == key
    assert linear.teams()
    bearer = httpx.post(
        itsm_endpoints["LINEAR_API_URL"],
        json={"query": "query { teams { nodes { id } } }"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert bearer.status_code in (400, 401)


# --- GitHub -----------------------------------------------------------------------------------


@pytest.fixture
def github(itsm_endpoints, config):
    with client_for("github", config=config) as client:
        yield client


def test_github_download_job_log_follows_the_redirect_to_the_log_text(github, fakes):
    fakes.register_job_log("acme", "shop", 4242, "step 1\nstep 2 failed\n")

    assert github.download_job_log("acme", "shop", 4242) == "step 1\nstep 2 failed\n"


def test_github_rerun_failed_jobs_is_recorded_by_the_fake(github, fakes):
    github.rerun_failed_jobs("acme", "shop", 99)

    [rerun] = fakes.state("github")["reruns"]
    assert (rerun["owner"], rerun["repo"], rerun["run_id"]) == ("acme", "shop", 99)


def test_github_log_of_a_missing_job_is_upstream_rejected_404(github):
    with pytest.raises(UpstreamRejected) as rejected:
        github.download_job_log("acme", "shop", 123456789)

    assert rejected.value.status_code == 404


def test_linear_create_retried_after_a_503_creates_the_issue(linear, fakes):
    team = linear.team_id("PLT")
    fakes.faults(platform="linear", status=503, count=1)

    created = linear.create_issue(team, "Flaky test", idempotency_key="after-503")

    [issue] = fakes.state("linear")["issues"]
    assert created.id == issue["id"]


def test_jira_create_meta_reads_every_page_of_fields(config):
    """Real createmeta pages carry ``startAt/maxResults/total`` and no ``isLast`` (§1k)."""
    fields = [{"fieldId": f"field{n}"} for n in range(3)]

    def createmeta(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["startAt"])
        page = fields[start : start + 2]
        return httpx.Response(
            200, json={"startAt": start, "maxResults": 2, "total": 3, "fields": page}
        )

    endpoint = Endpoint("jira", "http://jira.test", "bot@example.com", "token", "OPS")
    with JiraClient(endpoint, config=config, transport=httpx.MockTransport(createmeta)) as jira:
        assert [f["fieldId"] for f in jira.create_meta("OPS", "10001")] == [
            "field0",
            "field1",
            "field2",
        ]
