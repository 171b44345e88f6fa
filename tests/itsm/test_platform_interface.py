"""The one platform-client interface (``itsm.public``): every client answers the same calls, and
the services use only these, against the fakes over real HTTP."""

from __future__ import annotations

import pytest

from itsm import public
from itsm.clients import CLIENTS
from itsm.clients.servicenow import ServiceNowClient
from tests.itsm.test_clients import RCA_DESCRIPTION, fast_config

pytestmark = pytest.mark.django_db

JIRA_FIELDS = {
    "project": "OPS",
    "summary": "RCA Required: nightly",
    "description": RCA_DESCRIPTION,
    "issue_type": "Task",
    "priority": "2",
}


@pytest.fixture
def client(itsm_endpoints, request):
    with public.client_for(request.param, config=fast_config()) as platform_client:
        yield platform_client


@pytest.mark.parametrize("platform", sorted(CLIENTS))
def test_every_client_implements_the_platform_client_interface(platform):
    client_class = CLIENTS[platform]

    assert issubclass(client_class, public.PlatformClient)
    for operation in client_class.capabilities:
        # A capability a client declares is one it overrides, not the interface's refusal.
        method = getattr(client_class, operation)
        assert method is not getattr(public.PlatformClient, operation), (platform, operation)


def test_an_operation_a_platform_lacks_is_refused_as_a_programming_error(itsm_endpoints):
    with public.client_for("slack") as slack:
        assert not slack.supports(public.COMMENT)
        with pytest.raises(NotImplementedError, match="slack"):
            slack.comment("C1", "hello")


@pytest.mark.parametrize("client", ["jira"], indirect=True)
def test_jira_through_the_interface_creates_reads_comments_transitions_and_links(client, fakes):
    first = client.create(JIRA_FIELDS, idempotency_key="iface-1")
    second = client.create({**JIRA_FIELDS, "summary": "second"}, idempotency_key="iface-2")
    ref = public.TicketRef(first.id, first.key)

    assert client.read_status(ref) == public.PlatformView(
        responded=False, resolved=False, status="To Do"
    )
    client.comment(ref, "Looking into it")
    assert client.transition(ref, ["Failed"]) == "Failed"
    client.link(ref, public.TicketRef(second.id, second.key))

    view = client.read_status(ref)
    assert view.responded and view.resolved and view.status == "Failed"
    assert view.responded_at is not None
    issue = next(i for i in fakes.state("jira")["issues"] if i["key"] == first.key)
    assert [c["body"]["content"][0]["content"][0]["text"] for c in issue["comments"]] == [
        "Looking into it"
    ]
    assert client.get_blockers_by_key(second.key) == [first.key]


@pytest.mark.parametrize("client", ["servicenow"], indirect=True)
def test_servicenow_through_the_interface_creates_reads_and_comments(client, fakes):
    created = client.create(
        {"short_description": "RCA Required: nightly", "description": "d", "priority": "2"},
        idempotency_key="iface-sn",
    )
    ref = public.TicketRef(created.id, created.key)

    assert client.read_status(ref).responded is False
    client.comment(ref, "Assigned to the platform team")

    assert client.read_status(ref).responded is True
    assert not client.supports(public.TRANSITION)


@pytest.mark.parametrize("client", ["linear"], indirect=True)
def test_linear_through_the_interface_creates_by_team_key_and_reads_the_state(client, fakes):
    team = client.teams()[0]
    created = client.create(
        {"team": team["key"], "title": "Flaky: test_export", "priority": 2, "labels": ["flaky"]},
        idempotency_key="iface-linear",
    )

    view = client.read_status(created.id)
    assert view.resolved is False
    assert view.status
    [issue] = fakes.state("linear")["issues"]
    assert issue["title"] == "Flaky: test_export"


@pytest.mark.parametrize("client", ["linear"], indirect=True)
def test_linear_create_for_an_unknown_team_is_rejected_without_creating(client, fakes):
    with pytest.raises(public.UpstreamRejected, match="no Linear team"):
        client.create({"team": "NOPE", "title": "x"}, idempotency_key="iface-nope")

    assert fakes.state("linear")["issues"] == []


def test_servicenow_wire_fields_are_impact_and_urgency_not_the_priority():
    wire = ServiceNowClient.wire_fields({"short_description": "s", "priority": "2"})

    assert wire == {"short_description": "s", "impact": "1", "urgency": "2"}


@pytest.mark.parametrize("client", ["jira"], indirect=True)
def test_jira_set_property_stores_the_value_on_the_issue(client, fakes):
    created = client.create(JIRA_FIELDS, idempotency_key="iface-prop")

    client.set_property(created.key, "portal.export", {"session": 7, "order": 3})

    issue = next(i for i in fakes.state("jira")["issues"] if i["key"] == created.key)
    assert issue["properties"]["portal.export"] == {"session": 7, "order": 3}


@pytest.mark.parametrize("client", ["jira"], indirect=True)
def test_jira_add_to_sprint_moves_the_issues_into_the_active_sprint(client, fakes):
    active = next(s for s in client.sprints(1) if s["state"] == "active")
    keys = [client.create(JIRA_FIELDS, idempotency_key=f"iface-sprint-{n}").key for n in range(2)]

    client.add_to_sprint(active["id"], keys)

    sprints = {
        i["key"]: i["fields"].get("customfield_10020")
        for i in fakes.state("jira")["issues"]
        if i["key"] in keys
    }
    assert sprints == dict.fromkeys(keys, active["id"])


@pytest.mark.parametrize("client", ["linear"], indirect=True)
def test_linear_comment_is_added_once_even_when_sent_again(client, fakes):
    team = client.teams()[0]
    created = client.create(
        {"team": team["key"], "title": "Flaky: test_export"}, idempotency_key="iface-comment"
    )
    ref = public.TicketRef(created.id, created.key)

    client.comment(ref, "Occurrence 2 at 10:00")
    client.comment(ref, "Occurrence 2 at 10:00", reconcile_first=True)  # a redelivery
    client.comment(ref, "Occurrence 3 at 11:00")

    comments = fakes.state("linear")["comments"]
    assert [c["body"] for c in comments] == ["Occurrence 2 at 10:00", "Occurrence 3 at 11:00"]
    assert {c["issue_id"] for c in comments} == {created.id}


@pytest.mark.parametrize("client", ["linear"], indirect=True)
def test_linear_comment_whose_answer_is_lost_is_not_added_twice(client, fakes):
    team = client.teams()[0]
    created = client.create({"team": team["key"], "title": "t"}, idempotency_key="iface-lost")
    fakes.faults(platform="linear", mode="after", status=503, count=1, method="POST")

    client.comment(created.id, "Looking into it")

    assert [c["body"] for c in fakes.state("linear")["comments"]] == ["Looking into it"]
