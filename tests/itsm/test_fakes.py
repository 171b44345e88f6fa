"""The strict fakes, over real HTTP against the subprocess the ``fakes`` fixture runs.

Each test states one behaviour the portal's clients rely on (INTEGRATIONS.md), so a change to a fake
that would let a wrong client pass shows up here first.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from itsm.fakes.adf_schema import ADF_SCHEMA_VERSION, AdfSchemaUnavailable, ensure_adf_schema
from tests.itsm.conftest import (
    FAKE_GITHUB_TOKEN,
    FAKE_JIRA_EMAIL,
    FAKE_JIRA_TOKEN,
    FAKE_LINEAR_API_KEY,
    FAKE_SERVICENOW_PASSWORD,
    FAKE_SERVICENOW_USER,
    REPO_ROOT,
)

ISSUE = "/rest/api/3/issue"
INCIDENT = "/api/now/table/incident"
PLT_TEAM = "3f2b8a1c-6d4e-4a5b-9c8d-7e6f5a4b3c21"
CI_FAILURE_LABEL = "c1f0e2d3-4b5a-4697-8a1b-2c3d4e5f6a70"
CREATE_LINEAR_ISSUE = """
mutation Create($input: IssueCreateInput!) {
  issueCreate(input: $input) {
    success
    lastSyncId
    issue { id identifier title url priority team { key } labels { nodes { name } } }
  }
}
"""


def adf(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(content)}


def paragraph(text: str) -> dict[str, Any]:
    return {"type": "paragraph", "content": [{"type": "text", "text": text}]}


def issue_fields(**overrides: Any) -> dict[str, Any]:
    fields = {
        "project": {"key": "OPS"},
        "issuetype": {"name": "Task"},
        "summary": "Nightly build failed",
        "description": adf(paragraph("The nightly build failed on main.")),
    }
    fields.update(overrides)
    return {"fields": fields}


@pytest.fixture
def jira(fakes) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fakes.base_url("jira"), auth=(FAKE_JIRA_EMAIL, FAKE_JIRA_TOKEN), timeout=10
    ) as client:
        yield client


@pytest.fixture
def servicenow(fakes) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fakes.base_url("servicenow"),
        auth=(FAKE_SERVICENOW_USER, FAKE_SERVICENOW_PASSWORD),
        timeout=10,
    ) as client:
        yield client


@pytest.fixture
def linear(fakes) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fakes.base_url("linear"),
        headers={"Authorization": FAKE_LINEAR_API_KEY},
        timeout=10,
    ) as client:
        yield client


@pytest.fixture
def github(fakes) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fakes.base_url("github"),
        headers={"Authorization": f"Bearer {FAKE_GITHUB_TOKEN}"},
        timeout=10,
    ) as client:
        yield client


def create_issue(jira: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = jira.post(ISSUE, json=issue_fields(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


# ----- auth -----------------------------------------------------------------------------------
def test_jira_refuses_requests_without_basic_auth(fakes):
    response = httpx.post(f"{fakes.base_url('jira')}{ISSUE}", json=issue_fields())
    assert response.status_code == 401
    assert response.json()["errorMessages"]


def test_jira_refuses_credentials_other_than_the_configured_ones(fakes):
    response = httpx.get(f"{fakes.base_url('jira')}{ISSUE}/OPS-1", auth=(FAKE_JIRA_EMAIL, "wrong"))
    assert response.status_code == 401


def test_servicenow_refuses_requests_without_basic_auth(fakes):
    response = httpx.post(
        f"{fakes.base_url('servicenow')}{INCIDENT}", json={"short_description": "x"}
    )
    assert response.status_code == 401
    assert response.json()["status"] == "failure"


def test_linear_without_authorization_is_an_authentication_error(fakes):
    response = httpx.post(fakes.linear_api_url, json={"query": "{ viewer { id } }"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["type"] == "authentication error"


def test_linear_refuses_a_personal_api_key_sent_as_bearer(fakes):
    response = httpx.post(
        fakes.linear_api_url,
        json={"query": "{ viewer { id } }"},
        headers={"Authorization": f"Bearer {FAKE_LINEAR_API_KEY}"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["type"] == "authentication error"


def test_github_refuses_requests_without_a_token(fakes):
    response = httpx.post(
        f"{fakes.base_url('github')}/repos/acme/app/actions/runs/1/rerun-failed-jobs"
    )
    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"


# ----- Jira: create ---------------------------------------------------------------------------
def test_jira_create_with_valid_adf_returns_the_first_ops_key(jira, fakes):
    created = create_issue(jira, labels=["ci-failure"], priority={"name": "High"})
    assert created["key"] == "OPS-1"
    assert created["self"].endswith(f"/jira{ISSUE}/{created['id']}")
    fields = jira.get(f"{ISSUE}/OPS-1").json()["fields"]
    assert fields["summary"] == "Nightly build failed"
    assert fields["labels"] == ["ci-failure"]
    assert fields["priority"]["name"] == "High"
    assert fields["status"]["name"] == "To Do"
    assert fakes.state("jira")["issues"][0]["key"] == "OPS-1"


def test_jira_accepts_headings_lists_code_blocks_and_links(jira):
    description = adf(
        {
            "type": "heading",
            "attrs": {"level": 2},
            "content": [{"type": "text", "text": "Failure"}],
        },
        {
            "type": "bulletList",
            "content": [{"type": "listItem", "content": [paragraph("step 3 failed")]}],
        },
        {
            "type": "codeBlock",
            "attrs": {"language": "text"},
            "content": [{"type": "text", "text": "exit 1"}],
        },
        {
            "type": "paragraph",
            "content": [
                {
                    "type": "text",
                    "text": "build log",
                    "marks": [{"type": "link", "attrs": {"href": "https://ci.example.com/1"}}],
                }
            ],
        },
    )
    assert create_issue(jira, description=description)["key"] == "OPS-1"


@pytest.mark.parametrize(
    "description",
    [
        pytest.param(
            adf({"type": "paragraph", "content": [{"type": "text", "text": ""}]}), id="empty-text"
        ),
        pytest.param(
            adf({"type": "paragraph", "content": ["plain string"]}), id="string-in-paragraph"
        ),
        pytest.param(adf({"type": "blink", "content": []}), id="unknown-node"),
        pytest.param("a plain string description", id="not-adf"),
        pytest.param({"type": "doc", "content": [paragraph("x")]}, id="no-version"),
    ],
)
def test_jira_rejects_descriptions_the_adf_schema_forbids(jira, description):
    response = jira.post(ISSUE, json=issue_fields(description=description))
    assert response.status_code == 400
    assert "Atlassian Document" in response.json()["errors"]["description"]


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        ("Build failed\nsee log", "newline"),
        ("", "summary"),
        ("x" * 256, "255"),
    ],
)
def test_jira_rejects_multi_line_empty_or_long_summaries(jira, summary, message):
    response = jira.post(ISSUE, json=issue_fields(summary=summary))
    assert response.status_code == 400
    assert message in response.json()["errors"]["summary"]


@pytest.mark.parametrize("sprint", ["25446", [25446], {"id": 25446}])
def test_jira_sprint_field_must_be_a_bare_number(jira, sprint):
    response = jira.post(ISSUE, json=issue_fields(customfield_10020=sprint))
    assert response.status_code == 400
    assert (
        response.json()["errors"]["customfield_10020"] == "Number value expected as the Sprint id."
    )


def test_jira_sprint_field_reads_back_as_a_list_of_sprints(jira):
    create_issue(jira, customfield_10020=25446)
    sprints = jira.get(f"{ISSUE}/OPS-1", params={"fields": "customfield_10020"}).json()
    assert sprints["fields"]["customfield_10020"][0]["id"] == 25446
    assert sprints["fields"]["customfield_10020"][0]["state"] == "active"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"project": {"key": "NOPE"}}, "project"),
        ({"issuetype": {"name": "Incident"}}, "issuetype"),
        ({"priority": {"name": "Urgent"}}, "priority"),
        ({"labels": ["has space"]}, "labels"),
        ({"labels": "ci-failure"}, "labels"),
        ({"labels": ["x" * 256]}, "labels"),
        ({"customfield_99999": "x"}, "customfield_99999"),
        ({"environment": "plain text"}, "environment"),
    ],
)
def test_jira_rejects_invalid_fields_with_an_error_collection(jira, overrides, field):
    response = jira.post(ISSUE, json=issue_fields(**overrides))
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"errorMessages", "errors"}
    assert field in body["errors"]


def test_jira_unknown_field_message_matches_jira(jira):
    response = jira.post(ISSUE, json=issue_fields(customfield_12345=1))
    assert response.json()["errors"]["customfield_12345"] == (
        "Field 'customfield_12345' cannot be set. It is not on the appropriate screen, or unknown."
    )


def test_jira_keys_are_numbered_per_project(jira):
    assert create_issue(jira)["key"] == "OPS-1"
    assert create_issue(jira, project={"key": "DEMO"})["key"] == "DEMO-1"
    assert create_issue(jira, project={"id": "10000"})["key"] == "OPS-2"


def test_jira_missing_issue_is_404(jira):
    response = jira.get(f"{ISSUE}/OPS-999")
    assert response.status_code == 404
    assert response.json()["errorMessages"]


# ----- Jira: bulk -----------------------------------------------------------------------------
def test_jira_bulk_create_reports_failures_by_element_number(jira):
    response = jira.post(
        f"{ISSUE}/bulk",
        json={
            "issueUpdates": [
                issue_fields(summary="first"),
                issue_fields(issuetype={"name": "Nope"}),
                issue_fields(summary="third"),
            ]
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert [issue["key"] for issue in body["issues"]] == ["OPS-1", "OPS-2"]
    assert body["errors"] == [
        {
            "status": 400,
            "failedElementNumber": 1,
            "elementErrors": {
                "errorMessages": [],
                "errors": {"issuetype": "The issue type selected is invalid."},
            },
        }
    ]


def test_jira_bulk_create_with_every_element_invalid_is_400(jira):
    response = jira.post(
        f"{ISSUE}/bulk",
        json={"issueUpdates": [issue_fields(summary="a\nb"), issue_fields(summary="")]},
    )
    assert response.status_code == 400
    assert [error["failedElementNumber"] for error in response.json()["errors"]] == [0, 1]


def test_jira_bulk_create_refuses_more_than_fifty_issues(jira, fakes):
    response = jira.post(f"{ISSUE}/bulk", json={"issueUpdates": [issue_fields()] * 51})
    assert response.status_code == 400
    assert fakes.state("jira")["issues"] == []


# ----- Jira: search ---------------------------------------------------------------------------
def test_jira_new_issue_shows_in_search_only_after_the_index_lag(jira, fakes):
    fakes.set_index_lag(0.3)
    created = time.monotonic()  # before the create: the lag is measured from a moment before it
    create_issue(jira, labels=["idem-1"])
    query = {"jql": 'project = OPS AND labels = "idem-1"'}
    assert jira.get("/rest/api/3/search/jql", params=query).json()["issues"] == []
    deadline = created + 5
    while not (found := jira.get("/rest/api/3/search/jql", params=query).json()["issues"]):
        assert time.monotonic() < deadline, "the issue never showed up in search"
    assert found == [{"id": "10001"}]
    assert time.monotonic() - created >= 0.3  # not before the lag


def test_jira_reconcile_issues_sees_a_fresh_issue_before_the_index(jira, fakes):
    fakes.set_index_lag(30)
    created = create_issue(jira, labels=["idem-2"])
    response = jira.post(
        "/rest/api/3/search/jql",
        json={
            "jql": "labels = idem-2",
            "fields": ["summary"],
            "reconcileIssues": [int(created["id"])],
        },
    )
    assert [issue["key"] for issue in response.json()["issues"]] == ["OPS-1"]


def test_jira_index_catch_up_makes_pending_issues_searchable(jira, fakes):
    fakes.set_index_lag(30)
    create_issue(jira)
    assert fakes.catch_up_index() == 1
    assert (
        len(jira.get("/rest/api/3/search/jql", params={"jql": "project = OPS"}).json()["issues"])
        == 1
    )


def test_jira_search_returns_only_ids_by_default_and_pages_with_a_token(jira):
    for number in range(3):
        create_issue(jira, summary=f"issue {number}")
    first = jira.get(
        "/rest/api/3/search/jql",
        params={"jql": "project = OPS ORDER BY created ASC", "maxResults": 2},
    ).json()
    assert first["issues"] == [{"id": "10001"}, {"id": "10002"}]
    assert first["isLast"] is False
    assert "total" not in first
    second = jira.get(
        "/rest/api/3/search/jql",
        params={
            "jql": "project = OPS ORDER BY created ASC",
            "maxResults": 2,
            "nextPageToken": first["nextPageToken"],
            "fields": "summary,labels",
        },
    ).json()
    assert [issue["fields"]["summary"] for issue in second["issues"]] == ["issue 2"]
    assert second["isLast"] is True


def test_jira_search_supports_key_in_and_status(jira):
    create_issue(jira)
    create_issue(jira)
    response = jira.get(
        "/rest/api/3/search/jql",
        params={
            "jql": 'key in (OPS-1, OPS-2) AND status = "To Do" ORDER BY key DESC',
            "fields": "key",
        },
    )
    assert [issue["key"] for issue in response.json()["issues"]] == ["OPS-2", "OPS-1"]


def test_jira_old_search_endpoint_is_gone(jira):
    response = jira.get("/rest/api/3/search", params={"jql": "project = OPS"})
    assert response.status_code == 410
    assert "/rest/api/3/search/jql" in response.json()["errorMessages"][0]


@pytest.mark.parametrize(
    "jql",
    [
        "",
        "   ",
        "ORDER BY created DESC",
        "project = OPS OR labels = x",
        "summary ~ build",
        "project = NOPE",
        "project = ",
    ],
)
def test_jira_search_rejects_empty_unbounded_or_unparseable_jql(jira, jql):
    response = jira.get("/rest/api/3/search/jql", params={"jql": jql})
    assert response.status_code == 400
    assert response.json()["errorMessages"]


# ----- Jira: transitions, links, comments, properties -----------------------------------------
def test_jira_transitions_follow_the_workflow(jira, fakes):
    create_issue(jira)
    available = jira.get(f"{ISSUE}/OPS-1/transitions").json()["transitions"]
    assert {(t["id"], t["to"]["name"]) for t in available} == {
        ("11", "In Progress"),
        ("21", "Blocked"),
        ("31", "Failed"),
        ("41", "Done"),
    }
    assert (
        jira.post(f"{ISSUE}/OPS-1/transitions", json={"transition": {"id": "41"}}).status_code
        == 204
    )
    from_done = jira.get(f"{ISSUE}/OPS-1/transitions").json()["transitions"]
    assert [t["to"]["name"] for t in from_done] == ["To Do"]
    assert fakes.state("jira")["issues"][0]["transitions"][0]["to"] == "Done"


def test_jira_transition_not_valid_from_the_current_status_is_400(jira):
    create_issue(jira)
    jira.post(f"{ISSUE}/OPS-1/transitions", json={"transition": {"id": "41"}})
    response = jira.post(f"{ISSUE}/OPS-1/transitions", json={"transition": {"id": "31"}})
    assert response.status_code == 400
    assert (
        jira.get(f"{ISSUE}/OPS-1", params={"fields": "status"}).json()["fields"]["status"]["name"]
        == "Done"
    )


def test_jira_issue_link_inward_issue_is_the_blocker(jira):
    create_issue(jira, summary="blocker")
    create_issue(jira, summary="blocked")
    response = jira.post(
        "/rest/api/3/issueLink",
        json={
            "type": {"name": "Blocks"},
            "inwardIssue": {"key": "OPS-1"},
            "outwardIssue": {"key": "OPS-2"},
        },
    )
    assert response.status_code == 201
    assert response.content == b""
    on_blocked = jira.get(f"{ISSUE}/OPS-2", params={"fields": "issuelinks"}).json()["fields"][
        "issuelinks"
    ]
    assert on_blocked[0]["type"]["inward"] == "is blocked by"
    assert on_blocked[0]["inwardIssue"]["key"] == "OPS-1"
    assert "outwardIssue" not in on_blocked[0]
    on_blocker = jira.get(f"{ISSUE}/OPS-1", params={"fields": "issuelinks"}).json()["fields"][
        "issuelinks"
    ]
    assert on_blocker[0]["outwardIssue"]["key"] == "OPS-2"


def test_jira_duplicate_issue_link_reports_created_but_links_once(jira, fakes):
    create_issue(jira)
    create_issue(jira)
    link = {
        "type": {"name": "Blocks"},
        "inwardIssue": {"key": "OPS-1"},
        "outwardIssue": {"key": "OPS-2"},
    }
    assert jira.post("/rest/api/3/issueLink", json=link).status_code == 201
    assert jira.post("/rest/api/3/issueLink", json=link).status_code == 201
    assert len(fakes.state("jira")["links"]) == 1


def test_jira_issue_link_to_an_unknown_issue_or_type_is_404(jira):
    create_issue(jira)
    unknown_issue = {
        "type": {"name": "Blocks"},
        "inwardIssue": {"key": "OPS-1"},
        "outwardIssue": {"key": "OPS-9"},
    }
    unknown_type = {
        "type": {"name": "Causes"},
        "inwardIssue": {"key": "OPS-1"},
        "outwardIssue": {"key": "OPS-1"},
    }
    assert jira.post("/rest/api/3/issueLink", json=unknown_issue).status_code == 404
    assert jira.post("/rest/api/3/issueLink", json=unknown_type).status_code == 404


def test_jira_comment_body_must_be_adf(jira):
    create_issue(jira)
    assert jira.post(f"{ISSUE}/OPS-1/comment", json={"body": "plain"}).status_code == 400
    response = jira.post(f"{ISSUE}/OPS-1/comment", json={"body": adf(paragraph("retried"))})
    assert response.status_code == 201
    assert set(response.json()) >= {"id", "body", "created"}


def test_jira_issue_property_is_created_then_updated(jira):
    create_issue(jira)
    url = f"{ISSUE}/OPS-1/properties/portal.idempotency"
    assert jira.put(url, json={"key": "abc"}).status_code == 201
    assert jira.put(url, json={"key": "def"}).status_code == 200
    assert jira.get(url).json() == {"key": "portal.idempotency", "value": {"key": "def"}}


# ----- Jira: attachments ----------------------------------------------------------------------
def test_jira_attachment_without_the_no_check_header_is_403(jira):
    create_issue(jira)
    response = jira.post(f"{ISSUE}/OPS-1/attachments", files={"file": ("log.txt", b"log")})
    assert response.status_code == 403


def test_jira_attachment_field_must_be_named_file(jira):
    create_issue(jira)
    response = jira.post(
        f"{ISSUE}/OPS-1/attachments",
        files={"upload": ("log.txt", b"log")},
        headers={"X-Atlassian-Token": "no-check"},
    )
    assert response.status_code == 400


def test_jira_attachment_upload_returns_its_metadata(jira, fakes):
    create_issue(jira)
    response = jira.post(
        f"{ISSUE}/OPS-1/attachments",
        files={"file": ("build.log", b"line 1\nline 2\n", "text/plain")},
        headers={"X-Atlassian-Token": "no-check"},
    )
    assert response.status_code == 200
    (attachment,) = response.json()
    assert attachment["filename"] == "build.log"
    assert attachment["size"] == 14
    assert attachment["mimeType"] == "text/plain"
    assert fakes.state("jira")["issues"][0]["attachments"][0]["id"] == attachment["id"]


def test_jira_attachment_over_the_size_limit_is_413(jira, fakes):
    fakes.set_config(jira_max_attachment_bytes=1024)
    create_issue(jira)
    response = jira.post(
        f"{ISSUE}/OPS-1/attachments",
        files={"file": ("big.bin", b"x" * 1025)},
        headers={"X-Atlassian-Token": "no-check"},
    )
    assert response.status_code == 413


def test_jira_more_than_sixty_attachments_in_one_request_is_413(jira):
    create_issue(jira)
    files = [("file", (f"f{number}.txt", b"x")) for number in range(61)]
    response = jira.post(
        f"{ISSUE}/OPS-1/attachments", files=files, headers={"X-Atlassian-Token": "no-check"}
    )
    assert response.status_code == 413


# ----- Jira: permissions, createmeta, sprints -------------------------------------------------
def test_jira_mypermissions_requires_known_permission_keys(jira):
    path = "/rest/api/3/mypermissions"
    assert jira.get(path, params={"projectKey": "OPS"}).status_code == 400
    assert jira.get(path, params={"projectKey": "OPS", "permissions": ""}).status_code == 400
    assert jira.get(path, params={"projectKey": "OPS", "permissions": "FLY"}).status_code == 400
    assert (
        jira.get(path, params={"projectKey": "NOPE", "permissions": "CREATE_ISSUES"}).status_code
        == 404
    )
    ok = jira.get(
        path, params={"projectKey": "OPS", "permissions": "CREATE_ISSUES,BROWSE_PROJECTS"}
    )
    assert ok.status_code == 200
    assert ok.json()["permissions"]["CREATE_ISSUES"]["havePermission"] is True
    assert ok.json()["permissions"]["BROWSE_PROJECTS"]["key"] == "BROWSE_PROJECTS"


def test_jira_createmeta_pages_the_fields_of_an_issue_type(jira):
    types = jira.get("/rest/api/3/issue/createmeta/OPS/issuetypes").json()
    assert {kind["name"] for kind in types["issueTypes"]} >= {"Task", "Bug", "Sub-task"}
    url = "/rest/api/3/issue/createmeta/OPS/issuetypes/10001"
    everything = jira.get(url, params={"maxResults": 500}).json()
    assert everything["maxResults"] == 200
    by_id = {field["fieldId"]: field for field in everything["fields"]}
    assert by_id["customfield_10020"]["name"] == "Sprint"
    assert by_id["summary"]["required"] is True
    assert {value["name"] for value in by_id["priority"]["allowedValues"]} >= {"High", "Low"}
    page = jira.get(url, params={"startAt": 2, "maxResults": 2}).json()
    assert [field["fieldId"] for field in page["fields"]] == [
        field["fieldId"] for field in everything["fields"][2:4]
    ]
    assert page["total"] == everything["total"]


def test_jira_board_lists_active_and_future_sprints(jira):
    response = jira.get("/rest/agile/1.0/board/1/sprint", params={"state": "active,future"})
    body = response.json()
    assert [(sprint["id"], sprint["state"]) for sprint in body["values"]] == [
        (25446, "active"),
        (25447, "future"),
    ]
    assert body["isLast"] is True
    assert jira.get("/rest/agile/1.0/board/99/sprint").status_code == 404


def test_jira_issues_move_only_to_open_sprints(jira):
    create_issue(jira)
    assert (
        jira.post("/rest/agile/1.0/sprint/25446/issue", json={"issues": ["OPS-1"]}).status_code
        == 204
    )
    assert (
        jira.post("/rest/agile/1.0/sprint/25445/issue", json={"issues": ["OPS-1"]}).status_code
        == 400
    )
    too_many = {"issues": ["OPS-1"] * 51}
    assert jira.post("/rest/agile/1.0/sprint/25446/issue", json=too_many).status_code == 400


def test_jira_assignable_users_and_priorities_are_listed(jira):
    users = jira.get("/rest/api/3/user/assignable/search", params={"project": "OPS"}).json()
    assert all(user["accountId"] and user["displayName"] for user in users)
    assert (
        next(priority["name"] for priority in jira.get("/rest/api/3/priority").json()) == "Highest"
    )


# ----- ServiceNow -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("impact", "urgency", "priority"),
    [
        ("1", "1", "1"),
        (1, 2, "2"),
        ("2", "2", "3"),
        ("3", "1", "3"),
        ("2", "3", "4"),
        ("3", "3", "5"),
    ],
)
def test_servicenow_priority_is_computed_from_impact_and_urgency(
    servicenow, impact, urgency, priority
):
    response = servicenow.post(
        INCIDENT, json={"short_description": "Disk full", "impact": impact, "urgency": urgency}
    )
    assert response.status_code == 201
    assert response.json()["result"]["priority"] == priority


def test_servicenow_create_returns_the_record_and_its_location(servicenow):
    response = servicenow.post(
        INCIDENT,
        json={
            "short_description": "Disk full",
            "correlation_id": "OPS-1",
            "correlation_display": "Jira",
        },
    )
    result = response.json()["result"]
    assert re.fullmatch(r"[0-9a-f]{32}", result["sys_id"])
    assert result["number"] == "INC0010001"
    assert result["state"] == "1"
    assert result["comments"] == ""
    assert response.headers["Location"].endswith(f"{INCIDENT}/{result['sys_id']}")
    assert (
        servicenow.get(f"{INCIDENT}/{result['sys_id']}").json()["result"]["correlation_id"]
        == "OPS-1"
    )


def test_servicenow_rejects_priority_written_directly(servicenow):
    response = servicenow.post(INCIDENT, json={"short_description": "Disk full", "priority": "1"})
    assert response.status_code == 400
    assert response.json()["status"] == "failure"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"short_description": "x" * 160}, 201),
        ({"short_description": "x" * 161}, 400),
        ({"short_description": ""}, 400),
        ({"description": "no short description"}, 400),
        ({"short_description": "x", "urgency": "4"}, 400),
        ({"short_description": "x", "sys_id": "abc"}, 400),
        ({"short_description": "x", "u_custom": "abc"}, 400),
    ],
)
def test_servicenow_validates_incident_fields_strictly(servicenow, body, status):
    assert servicenow.post(INCIDENT, json=body).status_code == status


def test_servicenow_finds_an_incident_by_correlation_id(servicenow):
    servicenow.post(INCIDENT, json={"short_description": "first", "correlation_id": "OPS-1"})
    servicenow.post(INCIDENT, json={"short_description": "second", "correlation_id": "OPS-2"})
    response = servicenow.get(
        INCIDENT, params={"sysparm_query": "correlation_id=OPS-2", "sysparm_limit": 1}
    )
    assert [record["short_description"] for record in response.json()["result"]] == ["second"]
    none = servicenow.get(INCIDENT, params={"sysparm_query": "correlation_id=OPS-3^active=true"})
    assert none.json()["result"] == []


def test_servicenow_comments_append_to_the_journal(servicenow, fakes):
    sys_id = servicenow.post(INCIDENT, json={"short_description": "x"}).json()["result"]["sys_id"]
    servicenow.patch(f"{INCIDENT}/{sys_id}", json={"comments": "first update"})
    response = servicenow.patch(
        f"{INCIDENT}/{sys_id}", json={"comments": "second update", "urgency": "1"}
    )
    assert response.json()["result"]["comments"] == "second update"
    assert response.json()["result"]["priority"] == "3"
    journal = fakes.state("servicenow")["incidents"][0]["journal"]
    assert [entry["value"] for entry in journal] == ["first update", "second update"]


def test_servicenow_honours_x_no_response_body(servicenow):
    response = servicenow.post(
        INCIDENT, json={"short_description": "x"}, headers={"X-no-response-body": "true"}
    )
    assert response.status_code == 201
    assert response.content == b""
    assert "Location" in response.headers


# ----- Slack ----------------------------------------------------------------------------------
def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_slack_accepts_a_valid_message_and_records_it(fakes):
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "CI failure"}},
        section("*main* failed"),
        {"type": "divider"},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open"},
                    "url": "https://ci.example.com",
                }
            ],
        },
    ]
    response = httpx.post(fakes.slack_webhook_url, json={"text": "CI failure", "blocks": blocks})
    assert (response.status_code, response.text) == (200, "ok")
    assert fakes.state("slack")["messages"][0]["text"] == "CI failure"


@pytest.mark.parametrize(
    "blocks",
    [
        pytest.param([section("x")] * 51, id="51-blocks"),
        pytest.param([section("x" * 3001)], id="3001-char-section"),
        pytest.param(
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], id="11-fields"
        ),
        pytest.param(
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}
                    ],
                }
            ],
            id="76-char-button",
        ),
        pytest.param(
            [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], id="mrkdwn-header"
        ),
        pytest.param([{"type": "marquee"}], id="unknown-block"),
        pytest.param([{"type": "divider", "colour": "red"}], id="unknown-field"),
    ],
)
def test_slack_rejects_blocks_over_the_block_kit_limits(fakes, blocks):
    response = httpx.post(fakes.slack_webhook_url, json={"text": "t", "blocks": blocks})
    assert (response.status_code, response.text) == (400, "invalid_blocks")


def test_slack_rejects_a_message_over_the_total_size_limit(fakes):
    blocks = [section("y" * 2900) for _ in range(5)]
    response = httpx.post(fakes.slack_webhook_url, json={"blocks": blocks})
    assert (response.status_code, response.text) == (400, "msg_blocks_too_long")


def test_slack_rejects_messages_without_text_or_valid_json(fakes):
    assert httpx.post(fakes.slack_webhook_url, json={"text": ""}).text == "no_text"
    bad = httpx.post(
        fakes.slack_webhook_url, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (bad.status_code, bad.text) == (400, "invalid_payload")


# ----- Linear ---------------------------------------------------------------------------------
def test_linear_refuses_a_query_outside_the_schema(linear):
    response = linear.post("/graphql", json={"query": "{ teams { nodes { id slackChannel } } }"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["type"] == "graphql error"


def test_linear_lists_teams_and_labels(linear):
    response = linear.post(
        "/graphql",
        json={
            "query": '{ teams { nodes { id key labels(filter: {name: {eq: "flaky"}}) { nodes { name } } } } }'
        },
    )
    teams = response.json()["data"]["teams"]["nodes"]
    assert [team["key"] for team in teams] == ["PLT", "QA"]
    assert teams[0]["labels"]["nodes"] == [{"name": "flaky"}]


def test_linear_create_with_a_client_id_keeps_that_id(linear, fakes):
    issue_id = str(uuid.uuid4())
    response = linear.post(
        "/graphql",
        json={
            "query": CREATE_LINEAR_ISSUE,
            "variables": {
                "input": {
                    "id": issue_id,
                    "teamId": PLT_TEAM,
                    "title": "Flaky test",
                    "description": "**markdown**",
                    "priority": 2,
                    "labelIds": [CI_FAILURE_LABEL],
                }
            },
        },
    )
    assert response.status_code == 200
    payload = response.json()["data"]["issueCreate"]
    assert payload["success"] is True
    assert payload["issue"]["id"] == issue_id
    assert payload["issue"]["identifier"] == "PLT-1"
    assert payload["issue"]["url"].startswith("https://linear.app/")
    assert payload["issue"]["labels"]["nodes"] == [{"name": "ci-failure"}]
    assert fakes.state("linear")["issues"][0]["id"] == issue_id


def test_linear_repeated_client_id_is_an_invalid_input_error_on_http_200(linear, fakes):
    variables = {"input": {"id": str(uuid.uuid4()), "teamId": PLT_TEAM, "title": "once"}}
    linear.post("/graphql", json={"query": CREATE_LINEAR_ISSUE, "variables": variables})
    response = linear.post("/graphql", json={"query": CREATE_LINEAR_ISSUE, "variables": variables})
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["extensions"]["type"] == "invalid input"
    assert "already exists" in error["extensions"]["userPresentableMessage"]
    assert len(fakes.state("linear")["issues"]) == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"teamId": str(uuid.uuid4())},
        {"priority": 5},
        {"labelIds": [str(uuid.uuid4())]},
        {"id": "not-a-uuid"},
    ],
)
def test_linear_invalid_create_input_comes_back_in_errors(linear, overrides):
    variables = {"input": {"teamId": PLT_TEAM, "title": "x", **overrides}}
    response = linear.post("/graphql", json={"query": CREATE_LINEAR_ISSUE, "variables": variables})
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["type"] == "invalid input"


def test_linear_missing_required_team_id_is_a_graphql_error(linear):
    response = linear.post(
        "/graphql", json={"query": CREATE_LINEAR_ISSUE, "variables": {"input": {"title": "x"}}}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["type"] == "graphql error"


# ----- GitHub ---------------------------------------------------------------------------------
def test_github_job_logs_redirect_to_a_plain_text_log(github, fakes):
    fakes.register_job_log("acme", "app", 42, "##[error]Process completed with exit code 1.\n")
    response = github.get("/repos/acme/app/actions/jobs/42/logs")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "/github/_logs/" in location
    log = httpx.get(location)
    assert log.status_code == 200
    assert log.headers["Content-Type"].startswith("text/plain")
    assert "exit code 1" in log.text


def test_github_logs_of_an_unknown_job_are_404(github):
    response = github.get("/repos/acme/app/actions/jobs/404/logs")
    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"


def test_github_rerun_failed_jobs_is_recorded(github, fakes):
    response = github.post("/repos/acme/app/actions/runs/7/rerun-failed-jobs")
    assert (response.status_code, response.json()) == (201, {})
    assert fakes.state("github")["reruns"][0]["run_id"] == 7


# ----- faults ---------------------------------------------------------------------------------
def test_count_fault_fails_exactly_the_next_requests_with_retry_after(jira, fakes):
    fakes.faults(platform="jira", status=503, count=2, retry_after=7, path_contains="/issue")
    for _ in range(2):
        response = jira.post(ISSUE, json=issue_fields())
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "7"
    assert create_issue(jira)["key"] == "OPS-1"
    state = fakes.state("jira")
    assert state["faults_injected"] == 2
    assert state["requests"]["POST /rest/api/3/issue"] == 3


def test_jira_rate_limit_fault_carries_the_rate_limit_headers(jira, fakes):
    fakes.faults(platform="jira", status=429, count=1, retry_after=3)
    response = jira.get(f"{ISSUE}/OPS-1")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.headers["RateLimit-Reason"] == "jira-burst-based"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z", response.headers["X-RateLimit-Reset"])


def test_faults_apply_before_authentication(fakes):
    fakes.faults(platform="jira", status=503, count=1)
    assert httpx.get(f"{fakes.base_url('jira')}{ISSUE}/OPS-1").status_code == 503


def test_after_mode_creates_the_issue_then_answers_503(jira, fakes):
    fakes.faults(
        platform="jira", status=503, count=1, mode="after", path_contains="/issue", method="POST"
    )
    assert jira.post(ISSUE, json=issue_fields()).status_code == 503
    assert [issue["key"] for issue in fakes.state("jira")["issues"]] == ["OPS-1"]


def test_drop_closes_the_connection_without_a_response(jira, fakes):
    fakes.faults(platform="jira", drop=True, count=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        jira.get(f"{ISSUE}/OPS-1")
    assert jira.get(f"{ISSUE}/OPS-1").status_code == 404


def test_drop_after_processing_leaves_the_issue_created(jira, fakes):
    fakes.faults(platform="jira", drop=True, count=1, mode="after", method="POST")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        jira.post(ISSUE, json=issue_fields())
    assert len(fakes.state("jira")["issues"]) == 1


def test_latency_delays_matching_requests(jira, fakes):
    fakes.faults(platform="jira", latency_ms=250, path_contains="/priority")
    started = time.monotonic()
    assert jira.get("/rest/api/3/priority").status_code == 200
    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    jira.get("/rest/api/3/myself")
    assert time.monotonic() - started < 0.2


def test_rate_fault_with_a_seed_is_reproducible(fakes):
    def statuses() -> list[int]:
        fakes.reset()
        fakes.faults(platform="slack", status=500, rate=0.5, seed=1234)
        with httpx.Client() as client:
            return [
                client.post(fakes.slack_webhook_url, json={"text": "x"}).status_code
                for _ in range(20)
            ]

    first, second = statuses(), statuses()
    assert first == second
    assert {200, 500} <= set(first)


def test_fault_filters_by_platform_path_and_method(jira, fakes):
    fakes.faults(platform="jira", status=503, path_contains="search/jql", method="GET")
    assert jira.get("/rest/api/3/search/jql", params={"jql": "project = OPS"}).status_code == 503
    assert jira.post("/rest/api/3/search/jql", json={"jql": "project = OPS"}).status_code == 200
    assert httpx.post(fakes.slack_webhook_url, json={"text": "x"}).status_code == 200


def test_linear_rate_limit_fault_is_a_ratelimited_graphql_error(linear, fakes):
    fakes.faults(platform="linear", status=429, count=1, retry_after=2)
    response = linear.post("/graphql", json={"query": "{ viewer { id } }"})
    assert response.status_code == 429
    assert response.headers["x-ratelimit-requests-remaining"] == "0"
    assert "x-ratelimit-requests-reset" in response.headers
    assert response.json()["errors"][0]["extensions"]["type"] == "ratelimited"


def test_servicenow_rate_limit_fault_has_servicenows_shape(servicenow, fakes):
    fakes.faults(platform="servicenow", status=429, count=1, retry_after=5)
    response = servicenow.get(INCIDENT)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {
        "error": {"message": "Rate limit exceeded", "detail": response.json()["error"]["detail"]},
        "status": "failure",
    }


def test_an_invalid_fault_rule_is_refused(fakes):
    response = fakes.control.post("/faults", json={"platform": "jira", "status": 503, "rate": 2})
    assert response.status_code == 400
    response = fakes.control.post("/faults", json={"platform": "jira"})
    assert response.status_code == 400


def test_reset_clears_objects_faults_counters_and_config(jira, fakes):
    create_issue(jira)
    fakes.faults(platform="jira", status=503)
    fakes.set_index_lag(5)
    fakes.reset()
    state = fakes.state("jira")
    assert (state["issues"], state["requests"], state["faults_injected"], state["index_lag"]) == (
        [],
        {},
        0,
        0.0,
    )
    assert create_issue(jira)["key"] == "OPS-1"


# ----- the command line -----------------------------------------------------------------------
def test_command_line_without_schema_says_so_writes_the_ready_file_and_stops_on_sigterm(
    tmp_path: Path,
):
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "itsm.fakes",
            "--port",
            "0",
            "--no-adf-schema",
            "--ready-file",
            str(ready),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("fakes listening on http://127.0.0.1:")
        assert "structural" in line
        url = ready.read_text().strip()
        assert line.split()[3] == url
        assert httpx.get(f"{url}/_fake/health").json()["ok"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0


def test_concurrent_creates_get_distinct_keys(fakes):
    from concurrent.futures import ThreadPoolExecutor

    def create_many(_: int) -> list[str]:
        with httpx.Client(
            base_url=fakes.base_url("jira"), auth=(FAKE_JIRA_EMAIL, FAKE_JIRA_TOKEN), timeout=10
        ) as client:
            return [create_issue(client)["key"] for _ in range(10)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = [key for batch in pool.map(create_many, range(8)) for key in batch]
    assert sorted(keys, key=lambda key: int(key.split("-")[1])) == [
        f"OPS-{n}" for n in range(1, 81)
    ]


# ----- the ADF schema download ----------------------------------------------------------------
def test_ensure_adf_schema_uses_the_cache_without_the_network(tmp_path, monkeypatch):
    cached = tmp_path / ADF_SCHEMA_VERSION / "full.json"
    cached.parent.mkdir()
    cached.write_text("{}")
    monkeypatch.setenv("ADF_SCHEMA_TARBALL_URL", "https://127.0.0.1:9/unreachable.tgz")
    assert ensure_adf_schema(tmp_path) == cached


def test_ensure_adf_schema_explains_when_it_cannot_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("ADF_SCHEMA_TARBALL_URL", "https://127.0.0.1:9/unreachable.tgz")
    with pytest.raises(AdfSchemaUnavailable, match="--no-adf-schema"):
        ensure_adf_schema(tmp_path)


def test_jira_issue_types_follow_the_projects_scheme(jira):
    """The ORCHESTRATION service project (seed 000) takes Incidents; software projects do not."""
    created = create_issue(jira, project={"key": "ORCHESTRATION"}, issuetype={"name": "Incident"})
    assert created["key"] == "ORCHESTRATION-1"
    refused = jira.post(ISSUE, json=issue_fields(issuetype={"name": "Incident"}))
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"issuetype": "The issue type selected is invalid."}
    types = jira.get("/rest/api/3/issue/createmeta/ORCHESTRATION/issuetypes").json()
    assert "Incident" in [kind["name"] for kind in types["issueTypes"]]
    types = jira.get("/rest/api/3/issue/createmeta/OPS/issuetypes").json()
    assert "Incident" not in [kind["name"] for kind in types["issueTypes"]]
