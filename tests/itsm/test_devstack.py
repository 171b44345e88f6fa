"""``make run`` points only the platforms the user did not configure at the bundled fakes.

``fake_environment`` is pure, so most tests start no process; the last ones start the fakes as
``make run`` does (``itsm.devstack.FakeServers``) and talk to them over HTTP.
"""

from __future__ import annotations

import httpx

from itsm.devstack import FAKE_PLATFORMS, FakeServers, fake_environment, platforms_needing_fakes

FAKES = "http://127.0.0.1:5555"
BASE_URL_VARIABLES = (
    "JIRA_BASE_URL",
    "SERVICENOW_BASE_URL",
    "SLACK_WEBHOOK_URL",
    "LINEAR_API_URL",
    "GITHUB_API_URL",
)


def test_with_nothing_set_every_platform_uses_the_fakes():
    added = fake_environment({}, FAKES)

    assert {name: added[name] for name in BASE_URL_VARIABLES} == {
        "JIRA_BASE_URL": f"{FAKES}/jira",
        "SERVICENOW_BASE_URL": f"{FAKES}/servicenow",
        "SLACK_WEBHOOK_URL": f"{FAKES}/slack/services/T000/B000/demo",
        "LINEAR_API_URL": f"{FAKES}/linear/graphql",
        "GITHUB_API_URL": f"{FAKES}/github",
    }
    assert added["JIRA_PROJECT_KEY"] == "OPS"
    assert all(added[name] for name in ("JIRA_API_TOKEN", "SERVICENOW_PASSWORD", "GITHUB_TOKEN"))
    assert platforms_needing_fakes({}) == ["Jira", "ServiceNow", "Slack", "Linear", "GitHub"]


def test_with_every_base_url_set_nothing_is_added():
    env = {name: f"https://{name.lower()}.example" for name in BASE_URL_VARIABLES}

    assert fake_environment(env, FAKES) == {}
    assert platforms_needing_fakes(env) == []


def test_a_configured_platform_keeps_its_settings_and_only_the_others_use_the_fakes():
    env = {
        "JIRA_BASE_URL": "https://acme.atlassian.net",
        "JIRA_EMAIL": "bot@acme.example",
        "JIRA_API_TOKEN": "real-token",
    }

    added = fake_environment(env, FAKES)

    assert not {"JIRA_BASE_URL", "JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_PROJECT_KEY"} & set(added)
    assert added["SERVICENOW_BASE_URL"] == f"{FAKES}/servicenow"
    assert added["SLACK_WEBHOOK_URL"].startswith(FAKES)
    assert platforms_needing_fakes(env) == ["ServiceNow", "Slack", "Linear", "GitHub"]


def test_a_variable_the_user_set_is_never_overwritten_on_a_faked_platform():
    env = {"JIRA_PROJECT_KEY": "SUPPORT", "SERVICENOW_USER": "alice"}

    added = fake_environment(env, FAKES)

    assert "JIRA_PROJECT_KEY" not in added
    assert "SERVICENOW_USER" not in added
    assert added["JIRA_BASE_URL"] == f"{FAKES}/jira"
    assert added["SERVICENOW_PASSWORD"]  # the rest of the platform still gets the fake's values


def test_the_project_key_defaults_to_ops_only_when_unset():
    assert fake_environment({}, FAKES)["JIRA_PROJECT_KEY"] == "OPS"
    assert "JIRA_PROJECT_KEY" not in fake_environment({"JIRA_PROJECT_KEY": "SUP"}, FAKES)


def test_an_empty_base_url_counts_as_unset_as_in_settings():
    env = dict.fromkeys(BASE_URL_VARIABLES, "https://configured.example")
    env["LINEAR_API_URL"] = ""

    added = fake_environment(env, FAKES)

    assert added == {"LINEAR_API_URL": f"{FAKES}/linear/graphql", "LINEAR_API_KEY": "lin_api_demo"}


def test_the_environment_passed_in_is_not_changed():
    env = {"JIRA_PROJECT_KEY": "SUP"}

    fake_environment(env, FAKES)

    assert env == {"JIRA_PROJECT_KEY": "SUP"}


def test_every_platform_is_keyed_by_its_base_url_variable():
    assert [next(iter(variables)) for variables in FAKE_PLATFORMS.values()] == list(
        BASE_URL_VARIABLES
    )


def test_with_every_platform_configured_no_fake_is_started(tmp_path):
    env = dict.fromkeys(BASE_URL_VARIABLES, "https://configured.example")
    service = FakeServers(tmp_path)

    assert service.start(env) == {}
    assert service.process is None
    service.stop()


def test_the_fakes_answer_on_what_they_hand_back_and_come_back_on_their_port_with_their_tickets(
    tmp_path, adf_schema_path
):
    first = FakeServers(tmp_path)
    added = first.start({"JIRA_PROJECT_KEY": "OPS"})
    jira = (added["JIRA_EMAIL"], added["JIRA_API_TOKEN"])
    try:
        health = httpx.get(f"{first.url}/_fake/health").json()
        created = httpx.post(
            f"{added['JIRA_BASE_URL']}/rest/api/3/issue",
            auth=jira,
            json={
                "fields": {
                    "project": {"key": "OPS"},
                    "issuetype": {"name": "Task"},
                    "summary": "Survives a restart",
                }
            },
        )
    finally:
        first.stop()

    second = FakeServers(tmp_path)
    try:
        again = second.start({})
        issue = httpx.get(f"{again['JIRA_BASE_URL']}/rest/api/3/issue/OPS-1", auth=jira)
    finally:
        second.stop()

    assert added["JIRA_BASE_URL"] == f"{first.url}/jira"
    assert "JIRA_PROJECT_KEY" not in added  # the user's value stays
    assert health["adf"].startswith("ADF JSON schema")
    assert created.status_code == 201, created.text
    assert first.process is not None and first.process.returncode == 0  # SIGTERM: a clean stop
    assert second.port == first.port  # links stored with the first run's tickets still work
    assert again["JIRA_BASE_URL"] == added["JIRA_BASE_URL"]
    assert issue.status_code == 200
    assert issue.json()["fields"]["summary"] == "Survives a restart"
