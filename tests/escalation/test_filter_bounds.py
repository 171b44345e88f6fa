"""Id filters take what a database column holds: a number past a bigint is the filter's 400 (the
page shows it beside its input), never an overflow in the database (a 500 on SQLite)."""

import pytest

pytestmark = pytest.mark.django_db

HUGE = "9" * 25


@pytest.mark.parametrize(
    ("path", "name"),
    [("/api/v1/ci/overrides/", "failure"), ("/api/v1/ci/failures/", "escalation")],
)
@pytest.mark.parametrize("value", [HUGE, "0", "1.5", "-3"])
def test_an_id_filter_out_of_range_is_a_400_naming_the_filter(operator_client, path, name, value):
    response = operator_client.get(path, {name: value})

    assert response.status_code == 400, response.content
    assert name in response.json()["error"]["fields"]


def test_an_id_filter_in_range_filters(operator_client):
    response = operator_client.get("/api/v1/ci/failures/", {"escalation": str(2**63 - 1)})

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_the_failures_page_answers_a_bad_id_with_its_page_not_a_500(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(roles=["operators"]))
    response = client.get("/ci/failures/", {"escalation": HUGE})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/api/v1/ci/failures/", "/api/v1/ci/escalations/", "/api/v1/requests/", "/api/v1/sessions/"],
)
def test_a_moment_is_read_in_utc_whatever_its_offset(operator_client, path):
    """PostgreSQL refuses offsets past 15:59; Python reads up to 23:59 (the fuzzer's find)."""
    response = operator_client.get(path, {"since": "0649-03-07T15:17:55+23:17"})

    assert response.status_code == 200, response.content


def test_a_moment_that_does_not_exist_in_utc_is_a_400(operator_client):
    response = operator_client.get("/api/v1/ci/failures/", {"since": "0001-01-01T00:00:00+05:00"})

    assert response.status_code == 400
    assert "since" in response.json()["error"]["fields"]
