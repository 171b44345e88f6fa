"""``/api/v1/catalog/items`` and ``/api/v1/requests``: shapes, roles, strict input."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from escalation.models import Request
from escalation.services import fulfillment
from tests.escalation.catalog_support import (
    JIRA,
    SLACK,
    catalog_settings,  # noqa: F401 - the fixture
    http_config,
    make_bundle,
)
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog_settings")]

WEBHOOK = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"
BROKEN_SLACK = {"message": {"text": "{{ request.data.nothing_here }}"}}


@pytest.fixture
def requester_client(db):
    client = APIClient()  # its own: operator_client authenticates the shared api_client
    client.force_authenticate(UserFactory(username="grace", email="grace@example.com"))
    return client


@pytest.fixture
def bundle(db):
    return make_bundle(
        "onboard", [("access", "jira-ticket", JIRA), ("welcome", "slack-message", SLACK)]
    )


def test_the_catalog_lists_items_with_their_components(requester_client, bundle):
    response = requester_client.get("/api/v1/catalog/items")
    assert response.status_code == 200
    item = response.json()["results"][0] if "results" in response.json() else response.json()[0]
    assert item["id"] == "onboard" and item["name"] == "onboard"
    assert item["kind"] == "bundle" and item["version"] == "2.1.0"
    assert [c["id"] for c in item["components"]] == ["access", "welcome"]
    assert item["components"][0]["type"] == "jira-ticket"
    assert item["inputs"][0]["name"] == "name"


def test_anonymous_callers_are_refused(api_client, bundle):
    assert api_client.get("/api/v1/catalog/items").status_code in (401, 403)
    response = api_client.post("/api/v1/requests", {"catalog_item_id": "onboard"}, format="json")
    assert response.status_code in (401, 403)


def test_a_request_is_created_with_201_and_its_id(requester_client, bundle):
    response = requester_client.post(
        "/api/v1/requests",
        {"catalog_item_id": "onboard", "request_data": {"name": "Grace"}},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    created = Request.objects.get(pk=body["id"])
    assert created.user_id == "grace" and created.status == "pending"
    assert body["catalog_item_id"] == "onboard" and body["request_data"] == {"name": "Grace"}
    assert list(created.executions.values_list("component_id", flat=True)) == ["access", "welcome"]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"catalog_item_id": "nope", "request_data": {}}, 404, "catalog_item_unknown"),
        ({"catalog_item_id": "onboard", "request_data": [1, 2]}, 400, None),
        ({"catalog_item_id": "onboard", "request_data": "text"}, 400, None),
        ({"catalog_item_id": "onboard", "request_data": {}}, 400, "invalid_request_data"),
        ({"catalog_item_id": "onboard", "request_data": {"name": "x"}, "extra": 1}, 400, None),
        ({"catalog_item_id": "onboard", "request_data": {"name": "x" * 70_000}}, 400, None),
        ({"catalog_item_id": "onboard", "request_data": {"name": "a\u0000b"}}, 400, None),
    ],
)
def test_bad_requests_answer_the_error_envelope(requester_client, bundle, payload, status, code):
    response = requester_client.post("/api/v1/requests", payload, format="json")
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    assert not Request.objects.exists()


def submit_and_run(client, data):
    created = client.post(
        "/api/v1/requests", {"catalog_item_id": data[0], "request_data": data[1]}, format="json"
    ).json()
    fulfillment.fulfill(created["id"])
    return created["id"]


def test_a_requester_sees_only_their_own_requests(requester_client, bundle, fakes):
    mine = submit_and_run(requester_client, ("onboard", {"name": "Grace"}))
    other = Request.objects.create(catalog_item_id="onboard", user_id="someone-else")
    listed = requester_client.get("/api/v1/requests").json()["results"]
    assert [row["id"] for row in listed] == [mine]
    assert requester_client.get(f"/api/v1/requests/{other.pk}").status_code == 404
    detail = requester_client.get(f"/api/v1/requests/{mine}").json()
    assert detail["status"] == "completed"
    assert [c["status"] for c in detail["components"]] == ["succeeded", "succeeded"]
    assert set(detail) >= {
        "id", "catalog_item_id", "user_id", "status", "request_data", "created_at", "updated_at",
        "completed_at", "escalation_ticket_id", "escalation_timestamp",
    }  # fmt: skip


def test_operators_list_escalated_requests_and_read_the_escalation(
    requester_client, operator_client, fakes
):
    make_bundle(
        "breaks", [("access", "jira-ticket", JIRA), ("welcome", "slack-message", BROKEN_SLACK)]
    )
    make_bundle("works", [("welcome", "slack-message", SLACK)])
    failed = submit_and_run(requester_client, ("breaks", {"name": "Grace"}))
    submit_and_run(requester_client, ("works", {"name": "Grace"}))

    assert requester_client.get("/api/v1/requests/escalated").status_code == 403
    escalated = operator_client.get("/api/v1/requests/escalated").json()["results"]
    assert [row["id"] for row in escalated] == [failed]
    filtered = operator_client.get("/api/v1/requests?status=escalated").json()["results"]
    assert [row["id"] for row in filtered] == [failed]
    assert len(operator_client.get("/api/v1/requests").json()["results"]) == 2

    details = operator_client.get(f"/api/v1/requests/{failed}/escalation").json()
    assert details["status"] == "escalated" and details["failed_component"] == "welcome"
    assert "nothing_here" in details["error"]
    assert [c["status"] for c in details["components"]] == ["succeeded", "failed"]
    assert details["cleanup"][0]["id"] == "access"
    assert details["cleanup"][0]["instructions"] == "Undo access"
    assert details["cleanup"][0]["resources"][0].startswith("Jira OPS-")
    assert details["ticket"]["state"] == "queued"
    assert details["request_data"] == {"name": "Grace"}
    # The requester reads the escalation of their own request too.
    assert requester_client.get(f"/api/v1/requests/{failed}/escalation").status_code == 200


def test_the_list_endpoint_queries_do_not_grow_with_rows(
    operator_client, bundle, django_assert_max_num_queries
):
    for _ in range(15):
        Request.objects.create(catalog_item_id="onboard", user_id="grace")
    with django_assert_max_num_queries(8):
        response = operator_client.get("/api/v1/requests")
    assert len(response.json()["results"]) == 15


def test_the_schema_documents_the_catalog_endpoints(operator_client):
    schema = operator_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    if schema.status_code == 404:
        schema = operator_client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    text = schema.content.decode()
    for path in (
        "/api/v1/catalog/items",
        "/api/v1/requests/escalated",
        "/api/v1/requests/{request_id}/escalation",
    ):
        assert path in text


def test_the_catalog_does_not_show_a_components_credentials(requester_client):
    # Any signed-in user reads the catalog; the credentials a component is configured with
    # (a header, a Slack webhook, a key in a URL) are for the worker only.
    make_bundle(
        "with-secrets",
        [
            (
                "call",
                "http-request",
                http_config(
                    "https://api.example.com/x?api_key=k3y-v4lue-123",
                    headers={"Authorization": "Bearer s3cr3t-t0ken", "Accept": "application/json"},
                ),
            ),
            ("hello", "slack-message", {"message": {"text": "hi", "webhook_url": WEBHOOK}}),
        ],
    )
    body = requester_client.get("/api/v1/catalog/items/with-secrets").json()
    shown = json.dumps(body)
    for secret in ("s3cr3t-t0ken", "k3y-v4lue-123", "B0000/XXXXXXXXXXXXXXXXXXXXXXXX"):
        assert secret not in shown
    call = body["components"][0]["config"]["request"]
    assert call["headers"]["Accept"] == "application/json"  # the rest is shown as it is
    assert call["url"].startswith("https://api.example.com/x?api_key=")
