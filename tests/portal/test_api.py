"""The API's plumbing: authentication, the error envelope, roles, pagination, filters, the schema."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portal.leader import RedisLeaseBackend, backend_from_settings
from portal.models import Heartbeat
from tests.factories import HeartbeatFactory, LeaseFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGINATION_KEYS = {"count", "next", "previous", "results"}


def assert_envelope(response, status: int, code: str) -> dict:
    """The response is ``status`` with the one error shape, and returns its ``error`` object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return body["error"]


@pytest.fixture
def token_client(operator):
    client = APIClient()
    token = Token.objects.create(user=operator)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


# --- authentication ----------------------------------------------------------------------------


def test_anonymous_request_is_refused_with_401_in_the_error_envelope(api_client):
    response = api_client.get("/api/v1/")

    error = assert_envelope(response, 401, "not_authenticated")
    assert error["fields"] == {}


def test_anonymous_401_names_the_token_scheme_in_www_authenticate(api_client):
    response = api_client.get("/api/v1/")

    assert response["WWW-Authenticate"] == "Token"


def test_token_in_the_authorization_header_authenticates(token_client, operator):
    response = token_client.get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["username"] == operator.username


def test_unknown_token_is_refused_with_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    response = api_client.get("/api/v1/me/")

    assert_envelope(response, 401, "authentication_failed")


def test_browser_session_authenticates(client, operator):
    client.force_login(operator)

    response = client.get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["username"] == operator.username


def test_drf_create_token_prints_a_token_that_authenticates(api_client):
    user = UserFactory(username="ci-runner")
    out = io.StringIO()

    call_command("drf_create_token", "ci-runner", stdout=out)

    key = re.search(r"\b([0-9a-f]{40})\b", out.getvalue()).group(1)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = api_client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["id"] == user.pk


def test_me_lists_the_roles_of_the_caller(api_client):
    user = UserFactory(roles=["qa", "operators"])
    api_client.force_authenticate(user)

    response = api_client.get("/api/v1/me/")

    assert response.json()["roles"] == ["operators", "qa"]


def test_me_gives_an_admin_every_role(api_client):
    api_client.force_authenticate(UserFactory(roles=["admins"]))

    response = api_client.get("/api/v1/me/")

    assert response.json()["roles"] == ["admins", "operators", "qa"]


def test_api_root_links_every_collection(operator_client):
    response = operator_client.get("/api/v1/")

    assert response.status_code == 200
    assert {"me", "leases", "heartbeats", "schema", "docs"} <= set(response.json()["links"])


# --- the error envelope ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/nope/deeper/", "/api/nope"])
def test_unknown_api_route_answers_404_in_the_envelope(operator_client, path):
    response = operator_client.get(path)

    error = assert_envelope(response, 404, "not_found")
    assert path in error["message"]


def test_unknown_api_route_answers_404_in_the_envelope_to_anonymous_callers_too(api_client):
    response = api_client.get("/api/v1/nope")

    assert_envelope(response, 404, "not_found")


@pytest.mark.urls("tests.portal.api_probe_urls")
def test_malformed_json_body_answers_400_parse_error(token_client):
    response = token_client.post(
        "/api/v1/probe/", data='{"name": "x", ', content_type="application/json"
    )

    error = assert_envelope(response, 400, "parse_error")
    assert error["fields"] == {}


@pytest.mark.urls("tests.portal.api_probe_urls")
@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe not utf-8", b"[1, 2", b"null nonsense", b'{"name": NaN}x', b"\x00"],
    ids=["bad-encoding", "truncated", "trailing", "garbage-after", "nul"],
)
def test_garbled_json_bodies_never_cause_a_server_error(token_client, body):
    response = token_client.post("/api/v1/probe/", data=body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "parse_error"


@pytest.mark.urls("tests.portal.api_probe_urls")
def test_invalid_fields_answer_400_with_a_message_per_field(token_client):
    response = token_client.post("/api/v1/probe/", data={"priority": 9}, format="json")

    error = assert_envelope(response, 400, "invalid")
    assert set(error["fields"]) == {"name", "priority"}
    assert error["fields"]["name"] == "This field is required."
    assert "less than or equal to 5" in error["fields"]["priority"]


@pytest.mark.urls("tests.portal.api_probe_urls")
def test_a_json_array_instead_of_an_object_is_reported_as_non_field_error(token_client):
    response = token_client.post("/api/v1/probe/", data=[1, 2], format="json")

    error = assert_envelope(response, 400, "invalid")
    assert "non_field_errors" in error["fields"]


@pytest.mark.urls("tests.portal.api_probe_urls")
def test_valid_body_is_accepted(token_client):
    response = token_client.post(
        "/api/v1/probe/", data={"name": "db-backup", "priority": 2}, format="json"
    )

    assert response.status_code == 201
    assert response.json() == {"name": "db-backup", "priority": 2}


def test_unsupported_method_answers_405_in_the_envelope(operator_client):
    response = operator_client.post("/api/v1/me/", data={}, format="json")

    assert_envelope(response, 405, "method_not_allowed")


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/leases/", "/api/v1/heartbeats/"])
def test_user_without_the_operators_role_is_refused_with_403(api_client, path):
    api_client.force_authenticate(UserFactory(roles=["qa"]))

    response = api_client.get(path)

    error = assert_envelope(response, 403, "permission_denied")
    assert "operators" in error["message"]


def test_admin_holds_the_operators_role_for_the_api(api_client):
    api_client.force_authenticate(UserFactory(roles=["admins"]))

    response = api_client.get("/api/v1/heartbeats/")

    assert response.status_code == 200


# --- leases (read from the configured backend) ------------------------------------------------


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
def lease_backend(request, settings):
    """The lease API on each backend the settings can choose."""
    settings.LEADER_ELECTION = {**settings.LEADER_ELECTION, "BACKEND": request.param}
    return backend_from_settings()


@pytest.fixture
def hold_lease(lease_backend):
    """Acquires a lease of a unique name through the backend; Redis keys are removed afterwards."""
    names: list[str] = []

    def hold(holder: str, duration: float = 30.0):
        name = f"test-api-{uuid.uuid4().hex[:10]}"
        names.append(name)
        return lease_backend.try_acquire_or_renew(name, holder, duration).record

    yield hold
    if isinstance(lease_backend, RedisLeaseBackend) and names:
        lease_backend.client.delete(*(lease_backend.prefix + name for name in names))


def test_operator_lists_the_leases_the_backend_holds(operator_client, hold_lease):
    first, second = hold_lease("beat@host-a"), hold_lease("beat@host-b")

    response = operator_client.get("/api/v1/leases/")

    assert response.status_code == 200
    by_name = {lease["name"]: lease for lease in response.json()}
    assert by_name[first.name]["holder_identity"] == "beat@host-a"
    assert by_name[second.name]["holder_identity"] == "beat@host-b"
    assert by_name[first.name]["held"] is True
    assert by_name[first.name]["lease_transitions"] == 1


def test_lease_detail_is_found_by_name(operator_client, hold_lease):
    record = hold_lease("beat@host-a")

    response = operator_client.get(f"/api/v1/leases/{record.name}/")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == record.name
    assert body["holder_identity"] == "beat@host-a"
    assert body["lease_duration_seconds"] == 30.0
    assert body["expires_at"] is not None


def test_released_lease_is_shown_as_not_held(operator_client, hold_lease, lease_backend):
    record = hold_lease("beat@host-a")
    lease_backend.release(record.name, "beat@host-a")

    response = operator_client.get(f"/api/v1/leases/{record.name}/")

    assert response.json()["holder_identity"] == ""
    assert response.json()["held"] is False


def test_unknown_lease_answers_404_in_the_envelope(operator_client, lease_backend):
    response = operator_client.get("/api/v1/leases/no-such-lease/")

    error = assert_envelope(response, 404, "not_found")
    assert "no-such-lease" in error["message"]


def test_lease_list_queries_do_not_grow_with_the_number_of_leases(
    operator_client, settings, django_assert_max_num_queries
):
    settings.LEADER_ELECTION = {**settings.LEADER_ELECTION, "BACKEND": "database"}
    LeaseFactory.create_batch(20)

    # permission (groups), the database clock, the leases
    with django_assert_max_num_queries(3):
        response = operator_client.get("/api/v1/leases/")

    assert response.status_code == 200
    assert len(response.json()) == 20


# --- heartbeats: pagination, filters, ordering ------------------------------------------------


def test_heartbeat_list_is_paginated(operator_client):
    HeartbeatFactory.create_batch(3)

    response = operator_client.get("/api/v1/heartbeats/?page_size=2")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == PAGINATION_KEYS
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["previous"] is None
    assert "page=2" in body["next"]


def test_heartbeat_page_size_is_capped_at_500(operator_client):
    Heartbeat.objects.bulk_create(HeartbeatFactory.build_batch(501))

    response = operator_client.get("/api/v1/heartbeats/?page_size=100000")

    assert response.json()["count"] == 501
    assert len(response.json()["results"]) == 500


def test_page_beyond_the_last_answers_404_in_the_envelope(operator_client):
    HeartbeatFactory()

    response = operator_client.get("/api/v1/heartbeats/?page=9")

    assert_envelope(response, 404, "not_found")


def test_heartbeats_filter_by_worker(operator_client):
    HeartbeatFactory(worker="celery@alpha")
    HeartbeatFactory(worker="celery@beta")

    response = operator_client.get("/api/v1/heartbeats/?worker=ALPHA")

    assert [item["worker"] for item in response.json()["results"]] == ["celery@alpha"]


def test_heartbeats_filter_by_time_range(operator_client):
    old, recent = HeartbeatFactory(), HeartbeatFactory()
    now = timezone.now()
    Heartbeat.objects.filter(pk=old.pk).update(ran_at=now - timedelta(hours=3))
    Heartbeat.objects.filter(pk=recent.pk).update(ran_at=now - timedelta(minutes=5))

    since = (now - timedelta(hours=1)).isoformat()
    response = operator_client.get("/api/v1/heartbeats/", {"ran_after": since})

    assert [item["id"] for item in response.json()["results"]] == [recent.pk]


def test_heartbeats_are_ordered_by_the_requested_field(operator_client):
    for worker in ("celery@b", "celery@c", "celery@a"):
        HeartbeatFactory(worker=worker)

    ascending = operator_client.get("/api/v1/heartbeats/?ordering=worker").json()["results"]
    descending = operator_client.get("/api/v1/heartbeats/?ordering=-worker").json()["results"]

    assert [item["worker"] for item in ascending] == ["celery@a", "celery@b", "celery@c"]
    assert [item["worker"] for item in descending] == ["celery@c", "celery@b", "celery@a"]


def test_heartbeat_detail_is_found_by_id(operator_client):
    heartbeat = HeartbeatFactory(worker="celery@alpha", fencing_token=7)

    response = operator_client.get(f"/api/v1/heartbeats/{heartbeat.pk}/")

    assert response.status_code == 200
    assert response.json()["fencing_token"] == 7


def test_heartbeat_list_queries_do_not_grow_with_the_number_of_rows(
    token_client, django_assert_max_num_queries
):
    HeartbeatFactory.create_batch(20)

    # token and user, permission (groups), count, page
    with django_assert_max_num_queries(4):
        response = token_client.get("/api/v1/heartbeats/")

    assert response.json()["count"] == 20


# --- OpenAPI schema and docs ------------------------------------------------------------------


@pytest.fixture
def schema(operator_client) -> dict:
    response = operator_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_schema_is_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Operations portal API"


def test_schema_documents_the_api_routes(schema):
    assert {"/api/v1/leases/", "/api/v1/leases/{name}/", "/api/v1/me/"} <= set(schema["paths"])


def test_schema_documents_the_error_envelope_on_every_operation(schema):
    assert "ErrorEnvelope" in schema["components"]["schemas"]
    refused = schema["paths"]["/api/v1/leases/"]["get"]["responses"]["403"]
    envelope_ref = refused["content"]["application/json"]["schema"]["$ref"]
    assert envelope_ref == "#/components/schemas/ErrorEnvelope"


def test_schema_declares_token_and_session_security(schema):
    schemes = schema["components"]["securitySchemes"]

    assert schemes["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"',
    }
    assert schemes["cookieAuth"]["in"] == "cookie"
    assert schemes["cookieAuth"]["name"] == "sessionid"


def test_schema_needs_authentication(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert_envelope(response, 401, "not_authenticated")


def test_api_docs_redirect_anonymous_visitors_to_login(client):
    response = client.get("/api/docs/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/api/docs/")


def test_api_docs_render_swagger_ui_from_local_static_files(client, operator):
    client.force_login(operator)

    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/schema/" in html
    assets = re.findall(r'(?:src|href)="(/static/drf_spectacular_sidecar/[^"]+)"', html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    assert not re.search(r'(?:src|href)="https?://', html), "docs must not load assets from a CDN"


def test_swagger_ui_assets_are_served_by_the_portal(client, operator):
    client.force_login(operator)
    html = client.get("/api/docs/").content.decode()
    bundle = re.search(r'src="(/static/[^"]+swagger-ui-bundle\.js)"', html).group(1)

    response = client.get(bundle)

    assert response.status_code == 200
    assert b"".join(response.streaming_content if response.streaming else [response.content])
