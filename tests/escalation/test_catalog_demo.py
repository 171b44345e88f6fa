"""The demo catalog of ``make run``, played as a new user would: ``demo-onboarding`` fails at its
third component against the bundled fakes and is escalated with one ticket in the fake Jira;
``demo-service-check`` succeeds; with the fake Jira refusing, the ticket arrives once it accepts."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from escalation.catalog_demo import load_demo_catalog
from escalation.devstack import DemoCatalog
from escalation.models import CatalogBundle, Request
from escalation.services import catalog, fulfillment
from itsm.public import OutboxMessage
from tests.factories import UserFactory
from tests.itsm.deliveries import sweep_now

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_itsm_config")]


@pytest.fixture
def demo(settings, itsm_endpoints, fakes, tmp_path):
    """The settings ``make run`` gives: the fakes everywhere, and what DemoCatalog adds."""
    added = DemoCatalog(tmp_path).start({"JIRA_BASE_URL": itsm_endpoints["JIRA_BASE_URL"]})
    settings.CATALOG_HTTP_ALLOWED_HOSTS = added["CATALOG_HTTP_ALLOWED_HOSTS"].split(",")
    settings.CATALOG_HTTP_ALLOWED_NETWORKS = []
    settings.CATALOG_ESCALATION_JIRA_PROJECT = ""  # the seed's ORCHESTRATION / Incident
    settings.CATALOG_ESCALATION_JIRA_ISSUE_TYPE = ""
    load_demo_catalog()
    return added


@pytest.fixture
def newcomer(db):
    return UserFactory(username="operator", email="operator@example.com")


ONBOARDING = {"full_name": "Grace Hopper", "email": "grace@example.com", "start_date": "2027-01-04"}


def submit(user, name, data):
    request = catalog.submit(user, name, data)
    fulfillment.fulfill(request.pk)
    request.refresh_from_db()
    return request


def test_dev_catalog_lists_the_fakes_and_maps_the_escalation_ticket(
    itsm_endpoints, fakes, tmp_path
):
    added = DemoCatalog(tmp_path).start({"JIRA_BASE_URL": itsm_endpoints["JIRA_BASE_URL"]})
    assert added["CATALOG_HTTP_ALLOWED_HOSTS"] == urlsplit(fakes.url).netloc
    assert DemoCatalog(tmp_path).start({"JIRA_BASE_URL": "https://acme.atlassian.net"}) == {}
    kept = DemoCatalog(tmp_path).start(
        {
            "JIRA_BASE_URL": itsm_endpoints["JIRA_BASE_URL"],
            "CATALOG_ESCALATION_JIRA_PROJECT": "ORCH",
        }
    )
    assert "CATALOG_ESCALATION_JIRA_PROJECT" not in kept


def test_the_demo_bundles_pass_the_admins_checks(demo):
    for bundle in CatalogBundle.objects.prefetch_related("components"):
        components = [
            {"component_id": c.component_id, "action_type": c.action_type, "config": c.config}
            for c in bundle.components.all()
        ]
        inputs = [spec["name"] for spec in catalog.declared_inputs(bundle)]
        assert catalog.component_problems(components, inputs, bundle.kind) == [], bundle.name
    assert CatalogBundle.objects.get(name="demo-onboarding").components.count() == 4
    load_demo_catalog()  # idempotent
    assert CatalogBundle.objects.count() == 3


def test_demo_onboarding_fails_at_its_third_component_and_files_one_ticket(demo, newcomer, fakes):
    request = submit(newcomer, "demo-onboarding", ONBOARDING)
    assert request.status == "escalated"
    steps = list(request.executions.order_by("position"))
    assert [s.status for s in steps] == ["succeeded", "succeeded", "failed", "not_run"]
    assert "answered 404" in steps[2].error
    access_key = steps[0].output["key"]

    sweep_now()
    request.refresh_from_db()
    issues = fakes.state("jira")["issues"]
    escalation_issues = [i for i in issues if i["key"] != access_key]
    assert len(escalation_issues) == 1
    ticket = escalation_issues[0]
    assert request.escalation_ticket_id == ticket["key"]
    assert ticket["key"].startswith("ORCHESTRATION-")
    assert ticket["fields"]["issuetype"] == "Incident"
    assert ticket["fields"]["priority"] == "High"
    assert ticket["fields"]["summary"] == (
        f"Bundle Orchestration Failure - demo-onboarding ({request.pk})"
    )
    description = str(ticket["fields"]["description"])
    assert f"access_ticket: succeeded (Resources: Jira {access_key})" in description
    assert "Close the access ticket as Won't Do" in description
    assert "Post a follow-up in the channel" in description
    assert "Delete the HR account" not in description  # the failed one needs no cleanup
    assert "Cancel the laptop request" not in description
    assert "Grace Hopper" in description and "2027-01-04" in description


def test_demo_service_check_succeeds(demo, newcomer, fakes):
    request = submit(newcomer, "demo-service-check", {"service": "payments"})
    assert request.status == "completed"
    issue = fakes.state("linear")["issues"][0]
    assert issue["title"] == "Service check for payments"
    assert "Health answered 200 (ok: True)" in issue["description"]


def test_with_the_fake_jira_refusing_the_ticket_appears_once_it_accepts(demo, newcomer, fakes):
    fakes.faults(platform="jira", status=503, count=1000)
    request = submit(newcomer, "demo-hello", {"text": "hi"})
    assert request.status == "completed"  # no Jira in this one
    Request.objects.all().delete()
    request = submit(newcomer, "demo-onboarding", ONBOARDING)
    # The first component is a Jira ticket: with Jira refusing, it fails at once and escalates.
    assert request.status == "escalated" and request.escalation_timestamp is not None
    sweep_now()
    request.refresh_from_db()
    assert request.escalation_ticket_id is None
    fakes.clear_faults()
    message = OutboxMessage.objects.get(kind=fulfillment.ESCALATION_KIND)
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=message.created_at)
    sweep_now()
    request.refresh_from_db()
    assert [i["key"] for i in fakes.state("jira")["issues"]] == [request.escalation_ticket_id]
