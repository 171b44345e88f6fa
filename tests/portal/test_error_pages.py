"""The styled 403, 404 and 500 pages, and the JSON envelope that API paths keep instead."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from pytest_django.asserts import assertContains, assertTemplateUsed

from portal.views import server_error
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.portal.error_page_urls")]


@pytest.fixture
def failing_client() -> Client:
    """A client that gets the 500 answer, as a browser would, instead of the view's exception."""
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(username="erin", roles=["operators"]))
    return client


def assert_envelope(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code


# --- 404 --------------------------------------------------------------------------------------


def test_an_unknown_page_answers_the_styled_404_inside_the_portal_layout(client):
    client.force_login(UserFactory(roles=["operators"]))

    response = client.get("/no/such/page/")

    assert response.status_code == 404
    assertTemplateUsed(response, "404.html")
    assertContains(response, '<h1 id="error-heading">Nothing here</h1>', status_code=404, html=True)
    assertContains(response, "<code>/no/such/page/</code>", status_code=404)
    assertContains(response, 'aria-label="Sections"', status_code=404)  # the layout, navigation


def test_a_record_that_does_not_exist_answers_the_styled_404(client):
    client.force_login(UserFactory(roles=["operators"]))

    response = client.get("/itsm/tickets/424242/")

    assert response.status_code == 404
    assertTemplateUsed(response, "404.html")


def test_the_404_page_never_shows_bidi_controls_of_the_path_raw(client):
    response = client.get("/evil\u202egpj.exe/")

    assertContains(response, "<code>/evil%E2%80%AEgpj.exe/</code>", status_code=404)
    assert "\u202e" not in response.content.decode()


def test_an_unknown_api_path_keeps_the_json_envelope(client):
    assert_envelope(client.get("/api/v1/no-such-thing/"), 404, "not_found")


# --- 403 --------------------------------------------------------------------------------------


def test_a_page_the_role_does_not_allow_answers_the_styled_403_naming_the_role(client):
    client.force_login(UserFactory(username="quinn", roles=["qa"]))

    response = client.get("/itsm/tickets/")

    assert response.status_code == 403
    assertTemplateUsed(response, "403.html")
    assertContains(response, "This page needs the operators role.", status_code=403)
    assertContains(response, "signed in as <strong>quinn</strong>", status_code=403)


def test_a_refusal_on_an_api_path_answers_the_json_envelope(client):
    assert_envelope(client.get("/api/v1/refused/"), 403, "permission_denied")


def test_a_refusal_on_a_page_answers_the_styled_403(client):
    response = client.get("/refused/")

    assert response.status_code == 403
    assertContains(response, "This page needs the qa role.", status_code=403)


# --- 500 --------------------------------------------------------------------------------------


def test_a_failing_page_answers_the_styled_500_with_the_request_id(failing_client):
    response = failing_client.get("/broken/", headers={"X-Request-ID": "req-500-test"})

    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "<code>req-500-test</code>" in html
    assert "a bug in a view" not in html
    assert "Traceback" not in html


def test_a_failing_api_path_answers_the_json_envelope(failing_client):
    assert_envelope(failing_client.get("/api/v1/broken/"), 500, "server_error")


def test_the_500_page_renders_without_the_database(django_db_blocker):
    request = RequestFactory().get("/broken/")

    with django_db_blocker.block():
        response = server_error(request)

    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_the_500_page_falls_back_to_plain_html_when_the_layout_cannot_render(settings):
    # The manifest storage without a collectstatic run: {% static %} itself raises.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    settings.STATIC_ROOT = "/nonexistent-static-root"

    response = server_error(RequestFactory().get("/broken/"))

    assert response.status_code == 500
    assert "<h1>Server error</h1>" in response.content.decode()
