"""The variable system and the seed's escalation ticket, rendered with Jinja2."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from escalation.models import ComponentExecution, Request, RequestFulfillment
from escalation.services import catalog, catalog_templates, fulfillment
from escalation.services.catalog_templates import RenderFailed, config_problems, render_config
from portal.templating import RenderBudgetExceeded
from tests.factories import UserFactory

EXPECTED_DESCRIPTION = """\
**Bundle Information**
Bundle: demo-onboarding (1.2.0)
Request ID: 6f1c2d3e-0000-4000-8000-000000000001
User: ada@example.com
Failure Time: 2026-01-02T03:04:05Z

**Component Status**
- access_ticket: succeeded (Resources: Jira DEMO-1)
- welcome_message: succeeded (Resources: Slack message: Welcome Grace)
- hr_record: failed
- laptop_order: not_run

**Error Details**
UpstreamRejected: jira answered 400: valid project is required

**Cleanup Required**
- access_ticket: Close DEMO-1 as Won't Do
- welcome_message: Post a correction in the channel

**Original Request Data**
```json
{
  "full_name": "Grace Hopper",
  "team": "platform"
}
```
"""


@pytest.mark.django_db
def test_the_seeds_escalation_ticket_renders_as_the_seed_lays_it_out(settings):
    settings.CATALOG_ESCALATION_JIRA_PROJECT = ""
    settings.CATALOG_ESCALATION_JIRA_ISSUE_TYPE = ""
    UserFactory(username="ada", email="ada@example.com")
    request = Request.objects.create(
        id="6f1c2d3e-0000-4000-8000-000000000001",
        catalog_item_id="demo-onboarding",
        user_id="ada",
        status="escalated",
        request_data={"full_name": "Grace Hopper", "team": "platform"},
    )
    row = RequestFulfillment.objects.create(
        request=request,
        bundle_name="demo-onboarding",
        bundle_version="1.2.0",
        failed_component="hr_record",
        error="UpstreamRejected: jira answered 400: valid project is required",
        failed_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    for position, (cid, status, resources, cleanup) in enumerate(
        [
            ("access_ticket", "succeeded", ["Jira DEMO-1"], "Close DEMO-1 as Won't Do"),
            ("welcome_message", "succeeded", ["Slack message: Welcome Grace"],
             "Post a correction in the channel"),
            ("hr_record", "failed", [], "Delete the HR record"),
            ("laptop_order", "not_run", [], "Cancel the order"),
        ],
        start=1,
    ):  # fmt: skip
        ComponentExecution.objects.create(
            request=request, position=position, component_id=cid, action_type="jira-ticket",
            status=status, resources=resources, cleanup_instructions=cleanup,
        )  # fmt: skip

    summary, description, fields = fulfillment.escalation_ticket(request, row)

    assert summary == (
        "Bundle Orchestration Failure - demo-onboarding (6f1c2d3e-0000-4000-8000-000000000001)"
    )
    assert description == EXPECTED_DESCRIPTION
    # The seed's configuration, as the seed gives it, when no mapping is set.
    assert fields["project"] == "ORCHESTRATION"
    assert fields["issue_type"] == "Incident"
    assert fields["priority"] == "High"


def test_the_escalation_configuration_keeps_the_seeds_values():
    ticket = fulfillment.ESCALATION_TICKET
    assert ticket["type"] == "jira-ticket"
    assert ticket["config"]["ticket"]["project"] == "ORCHESTRATION"
    assert ticket["config"]["ticket"]["issueType"] == "Incident"
    assert ticket["config"]["ticket"]["priority"] == "High"


CONTEXT = {
    "request": {"id": "r1", "data": {"name": "Grace", "tags": ["a", "b"]},
                "user": {"email": "g@example.com", "username": "g", "name": ""}},
    "components": {"access": {"output": {"key": "OPS-9"}, "resources": ["Jira OPS-9"],
                              "status": "succeeded"}},
    "bundle": {"metadata": {"name": "b", "version": "1"}, "kind": "bundle"},
}  # fmt: skip


def test_components_read_the_request_and_earlier_outputs():
    config = {
        "ticket": {
            "summaryTemplate": "For {{ request.data.name }} after {{ components.access.output.key }}",
            "labels": ["{{ request.data.tags | join('-') }}", "fixed"],
            "count": 3,
        }
    }
    assert render_config(config, CONTEXT) == {
        "ticket": {
            "summaryTemplate": "For Grace after OPS-9",
            "labels": ["a-b", "fixed"],
            "count": 3,
        }
    }


def test_a_missing_variable_fails_the_render_with_its_path():
    with pytest.raises(RenderFailed) as caught:
        render_config({"message": {"text": "{{ request.data.missing }}"}}, CONTEXT)
    assert caught.value.path == "config.message.text"


def test_the_sandbox_refuses_python_internals():
    with pytest.raises(RenderFailed, match=r"unsafe|not safely|access"):
        render_config("{{ request.__class__.__mro__ }}", CONTEXT)


def test_the_render_budget_stops_a_runaway_template():
    source = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
    with pytest.raises(RenderFailed) as caught:
        render_config(source, CONTEXT)
    assert isinstance(caught.value.__cause__, RenderBudgetExceeded)


def test_the_save_time_check_finds_syntax_budget_and_reference_problems():
    problems = config_problems(
        {
            "a": "{{ request.data.name",
            "b": "{% for i in request.data.a %}{% for j in request.data.b %}{% endfor %}{% endfor %}",
            "c": "{{ components.later.output.key }}",
            "d": "{{ secret }}",
            "e": "{{ components.access.output.key }} {{ request.data.name | upper }}",
        },
        earlier=["access"],
        inputs=["name"],
    )
    by_path: dict[str, str] = {}
    for problem in problems:
        by_path[problem.path] = f"{by_path.get(problem.path, '')} {problem.message}"
    assert "syntax" in by_path["config.a"]
    assert "render budget" in by_path["config.b"]
    assert "components.later" in by_path["config.c"]
    assert "unknown variable 'secret'" in by_path["config.d"]
    assert "config.e" not in by_path


def test_the_bundle_check_names_the_component_and_its_missing_field():
    problems = catalog.component_problems(
        [
            {"component_id": "first", "action_type": "jira-ticket",
             "config": {"ticket": {"project": "OPS"}}},
            {"component_id": "second", "action_type": "slack-message",
             "config": {"message": {"text": "{{ components.first.output.key }}"}}},
            {"component_id": "third", "action_type": "http-request",
             "config": {"request": {"url": "https://x.example/", "method": "TRACE"}}},
        ],
        [],
        "bundle",
    )  # fmt: skip
    assert [(p.component_id, p.field) for p in problems] == [
        ("first", "config"),
        ("third", "config"),
    ]
    assert "summaryTemplate is required" in problems[0].message
    assert "method" in problems[1].message


def test_the_json_helper_is_the_seeds_json():
    assert catalog_templates.to_json({"a": [1, "é"]}) == '{\n  "a": [\n    1,\n    "é"\n  ]\n}'


def test_component_problems_hold_the_admins_rules_for_every_caller():
    """The admin's formset, the demo loader and the shell meet the same rules (one place)."""
    from escalation.services import catalog

    assert [p.field for p in catalog.component_problems([], [], "bundle")] == ["components"]
    slack = {"message": {"text": "hi"}}
    problems = catalog.component_problems(
        [
            {
                "component_id": "first",
                "action_type": "slack-message",
                "config": slack,
                "position": 1,
            },
            {
                "component_id": "bad-id",
                "action_type": "slack-message",
                "config": slack,
                "position": 1,
            },
        ],
        [],
        "bundle",
    )
    assert {(p.component_id, p.field) for p in problems} >= {
        ("bad-id", "component_id"),
        ("bad-id", "position"),
    }
