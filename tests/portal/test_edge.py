"""The edge middleware: invalid text in a page request answers 400 naming the field, and an API
path never answers an HTML stack page, even for an exception raised in a middleware."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    client.force_login(UserFactory(roles=["operators"]))
    return client


@pytest.mark.parametrize(
    "query",
    ["q=%ED%A0%80", "q=a%00b", "q=%FF%FE", "q=bell%07"],
    ids=["lone-surrogate", "nul", "invalid-utf8", "control"],
)
def test_invalid_text_in_a_page_query_answers_400_naming_the_field(operator_client, query):
    response = operator_client.get(f"/itsm/tickets/?{query}")

    assert response.status_code == 400
    assert "<strong>q</strong>" in response.content.decode()


def test_invalid_text_in_a_posted_form_answers_400(operator_client):
    response = operator_client.post(
        "/itsm/tickets/new/",
        "platform=jira&template_name=rca_issue&job_id=a%00b",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 400
    assert "job_id" in response.content.decode()


def test_valid_text_passes_the_edge(operator_client):
    assert operator_client.get("/itsm/tickets/?q=caf%C3%A9").status_code == 200


def test_an_exception_in_a_middleware_on_an_api_path_answers_the_json_envelope(settings):
    settings.DEBUG = True
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "tests.portal.raising_middleware.RaisingMiddleware",
    ]
    client = Client(raise_request_exception=False)

    response = client.get("/api/v1/explode")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "server_error"
