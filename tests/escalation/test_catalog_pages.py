"""The catalog's pages (requests list, a request's timeline, a new request) and its admin."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from escalation.models import CatalogBundle, Request
from escalation.services import catalog, fulfillment
from tests.escalation.catalog_support import (
    JIRA,
    SLACK,
    catalog_settings,  # noqa: F401 - the fixture
    make_bundle,
)
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog_settings")]

BROKEN_SLACK = {"message": {"text": "{{ request.data.nothing_here }}"}}


@pytest.fixture
def grace(client):
    user = UserFactory(username="grace", email="grace@example.com")
    client.force_login(user)
    return user


def test_the_navigation_offers_requests_to_any_signed_in_user(client, grace):
    page = client.get(reverse("escalation:request-list"))
    assert page.status_code == 200
    assert f'href="{reverse("escalation:request-list")}"' in page.content.decode()


def test_anonymous_visitors_go_to_the_login_page(client):
    page = client.get(reverse("escalation:request-list"))
    assert page.status_code == 302 and "login" in page["Location"]


def test_a_request_submitted_on_the_page_is_queued_and_shown(client, grace, fakes):
    make_bundle("onboard", [("access", "jira-ticket", JIRA)])
    form = client.get(reverse("escalation:request-new") + "?item=onboard")
    assert form.status_code == 200
    assert 'name="input_name"' in form.content.decode()
    assert "csrfmiddlewaretoken" in form.content.decode()
    response = client.post(
        reverse("escalation:request-new"), {"item": "onboard", "input_name": "Grace"}
    )
    created = Request.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("escalation:request-detail", args=[created.pk])
    assert created.request_data == {"name": "Grace"} and created.user_id == "grace"


def test_the_form_refuses_a_missing_input_and_invalid_json(client, grace):
    make_bundle("onboard", [("access", "jira-ticket", JIRA)])
    missing = client.post(reverse("escalation:request-new"), {"item": "onboard"})
    assert missing.status_code == 400
    bundle = make_bundle("free", [("welcome", "slack-message", SLACK)])
    bundle.inputs = []
    bundle.save()
    bad = client.post(reverse("escalation:request-new"), {"item": "free", "request_data": "[1"})
    assert bad.status_code == 400 and "Not JSON" in bad.content.decode()
    not_object = client.post(
        reverse("escalation:request-new"), {"item": "free", "request_data": "[1]"}
    )
    assert not_object.status_code == 400 and "JSON object" in not_object.content.decode()
    assert not Request.objects.exists()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ('{"a": NaN}', "not JSON"),
        ('{"a": 1e400}', "not JSON"),  # Infinity: no JSON column stores it
        ('{"a": -Infinity}', "not JSON"),
        ('{"\\ud800": 1}', "lone surrogate"),
        ('{"a": "\\ud800"}', "lone surrogate"),
    ],
)
def test_the_form_refuses_json_the_api_refuses_without_a_500(client, grace, raw, shown):
    bundle = make_bundle("free", [("welcome", "slack-message", SLACK)])
    bundle.inputs = []
    bundle.save()
    response = client.post(reverse("escalation:request-new"), {"item": "free", "request_data": raw})
    assert response.status_code == 400
    assert shown in response.content.decode()
    assert not Request.objects.exists()


def test_the_form_refuses_json_nested_too_deep_without_a_500(client, grace):
    bundle = make_bundle("free", [("welcome", "slack-message", SLACK)])
    bundle.inputs = []
    bundle.save()
    deep = "[" * 100_000 + "]" * 100_000  # past Python's recursion limit when decoded
    response = client.post(
        reverse("escalation:request-new"), {"item": "free", "request_data": deep}
    )
    assert response.status_code == 400
    assert "nested deeper" in response.content.decode()
    assert not Request.objects.exists()


@pytest.mark.parametrize("value", [5, "abc", [1, 2], {"a": 1}])
def test_request_data_with_a_key_named_items_shows_on_the_request_page(client, grace, value):
    # A template's "request_data.items" would read this key instead of dict.items().
    make_bundle("onboard", [("access", "jira-ticket", JIRA)])
    created = catalog.submit(grace, "onboard", {"items": value, "name": "Grace"})
    page = client.get(reverse("escalation:request-detail", args=[created.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "items: " in text and "name: Grace" in text


def test_an_escalated_requests_page_shows_the_timeline_inventory_and_ticket(client, grace, fakes):
    make_bundle(
        "breaks", [("access", "jira-ticket", JIRA), ("welcome", "slack-message", BROKEN_SLACK)]
    )
    client.post(reverse("escalation:request-new"), {"item": "breaks", "input_name": "Grace"})
    request = Request.objects.get()
    fulfillment.fulfill(request.pk)
    from tests.itsm.deliveries import sweep_now

    sweep_now()
    request.refresh_from_db()
    page = client.get(reverse("escalation:request-detail", args=[request.pk])).content.decode()
    assert 'id="component-timeline"' in page and 'data-component="welcome"' in page
    assert 'id="partial-state"' in page and "Undo access" in page
    assert f">{request.escalation_ticket_id}</a>" in page
    assert "nothing_here" in page


def test_other_users_requests_are_not_shown(client, grace):
    other = Request.objects.create(catalog_item_id="x", user_id="someone")
    assert client.get(reverse("escalation:request-detail", args=[other.pk])).status_code == 404
    assert str(other.pk)[:8] not in client.get(reverse("escalation:request-list")).content.decode()


def test_the_list_filters_by_status_for_operators(client, operator):
    client.force_login(operator)
    Request.objects.create(catalog_item_id="a", user_id="x", status="escalated")
    Request.objects.create(catalog_item_id="b", user_id="y", status="completed")
    page = client.get(reverse("escalation:request-list") + "?status=escalated").content.decode()
    assert page.count("data-request=") == 1 and ">a" in page


def test_the_list_page_queries_do_not_grow_with_rows(
    client, operator, django_assert_max_num_queries
):
    client.force_login(operator)
    bundle = make_bundle("onboard", [("access", "jira-ticket", JIRA)])
    from escalation.models import RequestFulfillment

    for _ in range(20):
        request = Request.objects.create(catalog_item_id=bundle.name, user_id="x")
        RequestFulfillment.objects.create(
            request=request, bundle_name="onboard", bundle_version="1"
        )
    with django_assert_max_num_queries(12):
        page = client.get(reverse("escalation:request-list"))
    assert page.content.decode().count("data-request=") == 20


def test_the_detail_page_queries_are_bounded(client, grace, fakes, django_assert_max_num_queries):
    make_bundle("onboard", [("access", "jira-ticket", JIRA), ("welcome", "slack-message", SLACK)])
    client.post(reverse("escalation:request-new"), {"item": "onboard", "input_name": "Grace"})
    request = Request.objects.get()
    with django_assert_max_num_queries(12):
        assert (
            client.get(reverse("escalation:request-detail", args=[request.pk])).status_code == 200
        )


# --- the admin -----------------------------------------------------------------------------------


def admin_post(bundle_fields, components):
    data = {
        "name": bundle_fields.get("name", "new-bundle"),
        "version": "1.0.0",
        "kind": bundle_fields.get("kind", "bundle"),
        "title": "",
        "description": "",
        "inputs": json.dumps(bundle_fields.get("inputs", [{"name": "name"}])),
        "active": "on",
        "components-TOTAL_FORMS": str(len(components)),
        "components-INITIAL_FORMS": "0",
        "components-MIN_NUM_FORMS": "0",
        "components-MAX_NUM_FORMS": "1000",
    }
    for index, (cid, action, config) in enumerate(components):
        data.update(
            {
                f"components-{index}-position": str(index + 1),
                f"components-{index}-component_id": cid,
                f"components-{index}-action_type": action,
                f"components-{index}-config": json.dumps(config),
                f"components-{index}-cleanup_instructions": "Undo",
            }
        )
    return data


@pytest.fixture
def admin_client_logged(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_the_admin_saves_a_bundle_whose_templates_are_valid(admin_client_logged):
    url = reverse("admin:escalation_catalogbundle_add")
    response = admin_client_logged.post(
        url, admin_post({}, [("access", "jira-ticket", JIRA), ("welcome", "slack-message", SLACK)])
    )
    assert response.status_code == 302
    bundle = CatalogBundle.objects.get(name="new-bundle")
    assert list(bundle.components.values_list("component_id", flat=True)) == ["access", "welcome"]


@pytest.mark.parametrize(
    ("components", "message"),
    [
        ([("access", "jira-ticket", {"ticket": {"project": "OPS", "summaryTemplate": "{{ oops"}})],
         "Component access: config.ticket.summaryTemplate: template syntax error"),
        ([("welcome", "slack-message", {"message": {"text": "{{ components.later.output.key }}"}})],
         "Component welcome: config.message.text: reads components.later"),
        ([("access", "jira-ticket", {"ticket": {"project": "OPS"}})],
         "Component access: config.ticket.summaryTemplate is required"),
        ([("bad-id", "slack-message", SLACK)], "Component bad-id: use letters, digits and _"),
        ([], "A catalog item or bundle needs at least one component."),
    ],
)  # fmt: skip
def test_the_admin_refuses_a_broken_component_naming_it_and_its_field(
    admin_client_logged, components, message
):
    response = admin_client_logged.post(
        reverse("admin:escalation_catalogbundle_add"), admin_post({}, components)
    )
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not CatalogBundle.objects.exists()


def test_the_admin_shows_a_requests_record_read_only(admin_client_logged):
    request = Request.objects.create(catalog_item_id="x", user_id="y")
    page = admin_client_logged.get(reverse("admin:escalation_request_change", args=[request.pk]))
    assert page.status_code == 200
    assert (
        admin_client_logged.get(reverse("admin:escalation_request_changelist")).status_code == 200
    )


def test_qa_edits_the_catalog_in_the_admin_and_operators_only_read_it(client):
    qa = UserFactory(username="quinn", is_staff=True, roles=["qa"])
    operator = UserFactory(username="oscar", is_staff=True, roles=["operators"])
    add = reverse("admin:escalation_catalogbundle_add")
    client.force_login(qa)
    assert (
        client.post(add, admin_post({}, [("welcome", "slack-message", SLACK)])).status_code == 302
    )
    request = Request.objects.create(catalog_item_id="new-bundle", user_id="x")
    assert (
        client.get(reverse("admin:escalation_request_change", args=[request.pk])).status_code == 200
    )
    client.force_login(operator)
    assert client.get(add).status_code == 403
    assert client.get(reverse("admin:escalation_catalogbundle_changelist")).status_code == 200
