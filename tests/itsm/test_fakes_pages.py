"""The pages a demo ticket's link opens on the fakes: Jira's ``/browse/KEY`` and ServiceNow's record.

They answer without credentials (the fakes' API still requires them), change nothing, and show
every value escaped under a policy that allows no script.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.itsm.conftest import (
    FAKE_JIRA_EMAIL,
    FAKE_JIRA_TOKEN,
    FAKE_SERVICENOW_PASSWORD,
    FAKE_SERVICENOW_USER,
)

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'&'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;&amp;"


def adf(text: str) -> dict[str, Any]:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


@pytest.fixture
def jira(fakes):
    with httpx.Client(
        base_url=fakes.base_url("jira"), auth=(FAKE_JIRA_EMAIL, FAKE_JIRA_TOKEN), timeout=10
    ) as client:
        yield client


@pytest.fixture
def servicenow(fakes):
    with httpx.Client(
        base_url=fakes.base_url("servicenow"),
        auth=(FAKE_SERVICENOW_USER, FAKE_SERVICENOW_PASSWORD),
        timeout=10,
    ) as client:
        yield client


def create_issue(jira: httpx.Client, summary: str, description: str) -> str:
    response = jira.post(
        "/rest/api/3/issue",
        json={
            "fields": {
                "project": {"key": "OPS"},
                "issuetype": {"name": "Task"},
                "summary": summary,
                "description": adf(description),
                "labels": ["ci-failure"],
            }
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["key"]


def create_incident(servicenow: httpx.Client, **fields: str) -> dict[str, Any]:
    response = servicenow.post("/api/now/table/incident", json=fields)
    assert response.status_code == 201, response.text
    return response.json()["result"]


def assert_is_a_safe_page(response: httpx.Response) -> None:
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # falls back to 'none'
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_jira_issue_link_opens_a_page_without_credentials(jira, fakes):
    key = create_issue(jira, "Nightly build failed", "The integration stage failed twice.")
    jira.post(f"/rest/api/3/issue/{key}/comment", json={"body": adf("Looking into it")})

    page = httpx.get(f"{fakes.base_url('jira')}/browse/{key}")

    assert page.status_code == 200
    assert_is_a_safe_page(page)
    assert f"<title>{key}: Nightly build failed</title>" in page.text
    for shown in ("The integration stage failed twice.", "To Do", "ci-failure", "Looking into it"):
        assert shown in page.text


def test_the_jira_page_escapes_every_value_it_shows(jira, fakes):
    key = create_issue(jira, XSS, XSS)
    jira.post(f"/rest/api/3/issue/{key}/comment", json={"body": adf(XSS)})

    page = httpx.get(f"{fakes.base_url('jira')}/browse/{key}").text

    assert "<script" not in page
    assert "<img" not in page
    assert page.count(ESCAPED) == 4  # the title, the heading, the description and the comment


def test_the_jira_page_changes_nothing_and_the_api_still_wants_credentials(jira, fakes):
    key = create_issue(jira, "Read only", "text")

    # Only GET is open: any other method meets the API's authentication, then 405.
    assert httpx.post(f"{fakes.base_url('jira')}/browse/{key}").status_code == 401
    assert jira.post(f"/browse/{key}").status_code == 405
    assert httpx.get(f"{fakes.base_url('jira')}/rest/api/3/issue/{key}").status_code == 401
    assert fakes.state("jira")["issues"][0]["comments"] == []


def test_an_unknown_jira_key_answers_a_404_page(fakes):
    page = httpx.get(f"{fakes.base_url('jira')}/browse/OPS-999")

    assert page.status_code == 404
    assert_is_a_safe_page(page)
    assert "No issue OPS-999 in this fake." in page.text


def test_the_servicenow_record_link_the_portal_stores_opens_a_page(servicenow, fakes):
    incident = create_incident(
        servicenow, short_description="Nightly build failed", impact="1", urgency="2"
    )
    link = f"{fakes.base_url('servicenow')}/nav_to.do?uri=incident.do?sys_id={incident['sys_id']}"

    page = httpx.get(link)

    assert page.status_code == 200
    assert_is_a_safe_page(page)
    assert f"<title>{incident['number']}: Nightly build failed</title>" in page.text
    assert "2 - High" in page.text  # priority computed from impact 1 and urgency 2


def test_the_servicenow_page_also_opens_with_an_encoded_uri_and_directly(servicenow, fakes):
    incident = create_incident(servicenow, short_description="Encoded")
    base = fakes.base_url("servicenow")

    encoded = httpx.get(
        f"{base}/nav_to.do", params={"uri": f"incident.do?sys_id={incident['sys_id']}"}
    )
    direct = httpx.get(f"{base}/incident.do", params={"sys_id": incident["sys_id"]})

    assert encoded.status_code == direct.status_code == 200
    assert encoded.text == direct.text


def test_the_servicenow_page_escapes_every_value_it_shows(servicenow, fakes):
    incident = create_incident(servicenow, short_description=XSS[:160], description=XSS)
    servicenow.patch(f"/api/now/table/incident/{incident['sys_id']}", json={"comments": XSS})

    page = httpx.get(
        f"{fakes.base_url('servicenow')}/incident.do", params={"sys_id": incident["sys_id"]}
    ).text

    assert "<script" not in page
    assert "<img" not in page
    assert page.count(ESCAPED) == 4  # the title, the heading, the description and the comment


@pytest.mark.parametrize(
    "query",
    [
        {"uri": "incident.do?sys_id=0123456789abcdef0123456789abcdef"},
        {"uri": "sys_user.do?sys_id=anything"},
        {},
    ],
)
def test_an_unknown_servicenow_record_answers_a_404_page(fakes, query):
    page = httpx.get(f"{fakes.base_url('servicenow')}/nav_to.do", params=query)

    assert page.status_code == 404
    assert_is_a_safe_page(page)
