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
