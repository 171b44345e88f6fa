"""The API's edge: invalid text, deep nesting and oversized bodies answer the envelope, never a
500 or an HTML page; text stored before the edge refused it still reads back."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from itsm.models import Ticket

pytestmark = pytest.mark.django_db

ECHO = "/api/v1/echo/"


def post_json(client, path: str, text: str | bytes):
    return client.post(path, data=text, content_type="application/json")


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


# --- invalid text in JSON bodies ----------------------------------------------------------------


@pytest.mark.urls("tests.portal.edge_probe_urls")
@pytest.mark.parametrize(
    ("escaped", "problem"),
    [
        ("a\\ud800b", "lone surrogate (U+D800)"),
        ("a\\udfffb", "lone surrogate (U+DFFF)"),
        ("a\\u0000b", "NUL character (U+0000)"),
        ("bell\\u0007", "control character (U+0007)"),
        ("esc\\u001b[31m", "control character (U+001B)"),
    ],
)
def test_invalid_text_in_a_nested_value_answers_400_naming_its_path(
    operator_client, escaped, problem
):
    body = '{"variables": {"job_name": "' + escaped + '"}}'

    response = post_json(operator_client, ECHO, body)

    error = assert_envelope(response, 400, "invalid")
    assert problem in error["fields"]["variables.job_name"]
    assert error["message"].startswith("variables.job_name: contains")


@pytest.mark.urls("tests.portal.edge_probe_urls")
def test_invalid_text_in_a_key_answers_400(operator_client):
    response = post_json(operator_client, ECHO, '{"variables": {"job\\ud83dname": "x"}}')

    error = assert_envelope(response, 400, "invalid")
    assert "the key 'job\\ud83dname' contains a lone surrogate" in error["fields"]["variables"]


@pytest.mark.urls("tests.portal.edge_probe_urls")
def test_invalid_text_in_a_list_names_the_index(operator_client):
    response = post_json(operator_client, ECHO, '{"tags": ["ok", "\\u0001"]}')

    error = assert_envelope(response, 400, "invalid")
    assert set(error["fields"]) == {"tags.1"}


@pytest.mark.urls("tests.portal.edge_probe_urls")
def test_every_invalid_field_is_listed(operator_client):
    response = post_json(operator_client, ECHO, '{"a": "\\u0000", "b": {"c": "\\ud800"}}')

    assert set(assert_envelope(response, 400, "invalid")["fields"]) == {"a", "b.c"}


@pytest.mark.urls("tests.portal.edge_probe_urls")
def test_valid_text_passes_untouched(operator_client):
    text = "tab\there\nnew line\r\nemoji \U0001f600 pair \ud83d\ude00 and \u00e9"

    response = post_json(operator_client, ECHO, json.dumps({"text": text}))

    assert response.status_code == 200, response.content
    assert response.json()["data"]["text"] == "tab\there\nnew line\r\nemoji 😀 pair 😀 and é"


def test_a_lone_surrogate_in_a_variable_is_not_stored(operator_client):
    body = (
        '{"job_id": "7", "platform": "servicenow", "template_name": "rca_incident",'
        ' "variables": {"job_name": "a\\ud800b"}}'
    )

    response = post_json(operator_client, "/api/v1/tickets/from-template", body)

    assert_envelope(response, 400, "invalid")
    assert "variables.job_name" in response.json()["error"]["fields"]
    assert not Ticket.objects.exists()


# --- invalid text in the path and query string --------------------------------------------------


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("platform=a%ED%A0%80b", "platform"),  # a surrogate, UTF-8 encoded: not valid UTF-8
        ("platform=%FF", "platform"),
        ("platform=a%00b", "platform"),
        ("job_id=%07", "job_id"),
    ],
)
def test_invalid_text_in_a_query_parameter_answers_400_naming_it(operator_client, query, name):
    response = operator_client.get(f"/api/v1/tickets/?{query}")

    error = assert_envelope(response, 400, "invalid")
    assert name in error["fields"]


def test_invalid_text_in_a_query_parameter_name_answers_400(operator_client):
    response = operator_client.get("/api/v1/tickets/templates?%00=1")

    assert_envelope(response, 400, "invalid")


def test_a_nul_in_the_path_answers_400(operator_client):
    response = operator_client.get("/api/v1/leases/a%00b/")

    assert "path" in assert_envelope(response, 400, "invalid")["fields"]


def test_ordinary_query_parameters_pass(operator_client):
    response = operator_client.get("/api/v1/tickets/?job_id=caf%C3%A9+build&platform=jira")

    assert response.status_code == 200


# --- malformed, deep and large bodies -----------------------------------------------------------


@pytest.mark.urls("tests.portal.edge_probe_urls")
@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
def test_deeply_nested_json_answers_400_parse_error(operator_client, depth):
    body = '{"a": ' + "[" * depth + "]" * depth + "}"

    response = post_json(operator_client, ECHO, body)

    assert (
        "nested deeper than 32 levels" in assert_envelope(response, 400, "parse_error")["message"]
    )


@pytest.mark.urls("tests.portal.edge_probe_urls")
def test_json_nested_within_the_limit_is_accepted(operator_client):
    body = "[" * 32 + "]" * 32

    assert post_json(operator_client, ECHO, body).status_code == 200


@pytest.mark.urls("tests.portal.edge_probe_urls")
def test_a_body_over_the_limit_answers_413_in_the_envelope(operator_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = json.dumps({"details": "x" * 2_000})

    response = post_json(operator_client, ECHO, body)

    error = assert_envelope(response, 413, "request_too_large")
    assert "1,000 bytes" in error["message"]


def test_a_body_over_the_default_limit_answers_413_on_a_real_endpoint(operator_client):
    body = '{"platform": "jira", "template_name": "' + "x" * (6 * 1024 * 1024) + '"}'

    response = post_json(operator_client, "/api/v1/tickets/preview", body)

    assert_envelope(response, 413, "request_too_large")


@pytest.mark.urls("tests.portal.edge_probe_urls")
def test_a_large_multipart_upload_answers_413_in_the_envelope(operator_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = (
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="a.log"\r\n\r\n'
        + b"x" * 5_000
        + b"\r\n--BOUNDARY--\r\n"
    )

    response = operator_client.post(
        ECHO, data=body, content_type="multipart/form-data; boundary=BOUNDARY"
    )

    assert_envelope(response, 413, "request_too_large")


def multipart(field: str, content: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
    return (
        f"--BOUNDARY\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        + content
        + b"\r\n--BOUNDARY--\r\n"
    )


@pytest.mark.urls("tests.portal.edge_probe_urls")
def test_a_view_that_takes_uploads_receives_files_over_the_form_limit(operator_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = multipart("log", b"x" * 5_000, filename="ci.log")

    response = operator_client.post(
        "/api/v1/upload/", data=body, content_type="multipart/form-data; boundary=BOUNDARY"
    )

    assert response.status_code == 200, response.content
    assert response.json()["files"] == {"log": 5_000}


@pytest.mark.urls("tests.portal.edge_probe_urls")
def test_a_form_field_over_the_limit_in_an_upload_answers_413(operator_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000

    response = operator_client.post(
        "/api/v1/upload/",
        data=multipart("note", b"x" * 5_000),
        content_type="multipart/form-data; boundary=BOUNDARY",
    )

    assert_envelope(response, 413, "request_too_large")


@pytest.mark.urls("tests.portal.edge_probe_urls")
def test_a_form_body_is_refused_the_api_speaks_json(operator_client):
    response = operator_client.post(
        ECHO, data=b"name=x", content_type="application/x-www-form-urlencoded"
    )

    assert_envelope(response, 415, "unsupported_media_type")


# --- text stored before the edge refused it -----------------------------------------------------


def test_a_ticket_stored_with_a_lone_surrogate_still_reads_back(operator_client):
    from django.db import connection

    if connection.vendor == "postgresql":
        # PostgreSQL refuses such text itself: nothing of the kind can have been stored there.
        with pytest.raises(Exception, match="surrogate"), transaction.atomic():
            Ticket.objects.create(
                platform="jira", idempotency_key="stored-before", variables={"x": "a\ud800b"}
            )
        return
    ticket = Ticket.objects.create(
        platform="jira", idempotency_key="stored-before", job_id="7",
        variables={"job_name": "a\ud800b"},
    )  # fmt: skip

    listing = operator_client.get("/api/v1/tickets/")
    detail = operator_client.get(f"/api/v1/tickets/{ticket.pk}/")

    assert listing.status_code == 200
    assert detail.status_code == 200
    assert detail.json()["variables"] == {"job_name": "a\ufffdb"}


# --- page forms ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"template_name=servicenow%2Frca_incident&var_job_name=a%ED%A0%80b",  # surrogate bytes
        b"template_name=servicenow%2Frca_incident&var_job_name=%FF%FE",
        b"template_name=servicenow%2Frca_incident&var_job_name=\xff\xfe",  # raw, unescaped
    ],
    ids=["encoded-surrogate", "invalid-utf8-escaped", "invalid-utf8-raw"],
)
def test_a_page_form_with_invalid_utf8_never_answers_500(client, operator, body):
    client.force_login(operator)

    response = client.post(
        "/itsm/tickets/new/", data=body, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code < 500
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("query", ["template=a%ED%A0%80b", "platform=%FF", "page=%00"])
def test_a_page_with_invalid_utf8_in_the_query_never_answers_500(client, operator, query):
    client.force_login(operator)

    for path in ("/itsm/tickets/", "/itsm/tickets/new/"):
        assert client.get(f"{path}?{query}").status_code < 500
