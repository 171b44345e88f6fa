"""The per-user throttle holds its limit exactly when many clients race (it lost updates before)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

THREADS = 20
REQUESTS_PER_THREAD = 6
LIMIT = 37


@pytest.fixture
def small_rate(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": f"{LIMIT}/hour"},
    }


@pytest.fixture
def frozen_window():
    """Time stands still inside one hour of its own: no window ends during the test, and no
    earlier run's counter (same user id, same window) is met again."""
    hours = uuid.uuid4().int % 1_000_000
    moment = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(hours=hours, minutes=20)
    with time_machine.travel(moment, tick=False):
        yield


def race(user) -> Counter:
    """THREADS clients of one user fire REQUESTS_PER_THREAD requests each, all at once."""
    statuses: Counter = Counter()
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def client_run() -> None:
        client = APIClient()
        client.force_authenticate(user)
        start.wait()
        for _ in range(REQUESTS_PER_THREAD):
            response = client.get("/api/v1/echo/")
            with lock:
                statuses[response.status_code] += 1

    threads = [threading.Thread(target=client_run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return statuses


@pytest.mark.urls("tests.portal.edge_probe_urls")
@pytest.mark.usefixtures("small_rate", "frozen_window")
@pytest.mark.parametrize("backend", [pytest.param("redis", marks=pytest.mark.redis), "cache"])
def test_exactly_the_limit_passes_when_twenty_clients_race(settings, backend):
    if backend == "cache":
        settings.REDIS_URL = ""  # the configured cache's add + incr
    user = UserFactory()

    statuses = race(user)

    assert statuses == {200: LIMIT, 429: THREADS * REQUESTS_PER_THREAD - LIMIT}


@pytest.mark.urls("tests.portal.edge_probe_urls")
@pytest.mark.usefixtures("small_rate", "frozen_window")
def test_a_throttled_request_answers_429_in_the_envelope_with_retry_after(operator_client):
    for _ in range(LIMIT):
        assert operator_client.get("/api/v1/echo/").status_code == 200

    response = operator_client.get("/api/v1/echo/")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert response["Retry-After"] == str(40 * 60)  # the rest of the hour's window


@pytest.mark.urls("tests.portal.edge_probe_urls")
@pytest.mark.usefixtures("small_rate")
def test_the_next_window_admits_requests_again(operator_client):
    start = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(hours=uuid.uuid4().int % 1_000_000)
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(LIMIT):
            operator_client.get("/api/v1/echo/")
        assert operator_client.get("/api/v1/echo/").status_code == 429

        traveller.shift(timedelta(hours=1))

        assert operator_client.get("/api/v1/echo/").status_code == 200


@pytest.mark.urls("tests.portal.edge_probe_urls")
@pytest.mark.usefixtures("small_rate", "frozen_window")
def test_each_user_has_a_limit_of_their_own(api_client):
    first, second = UserFactory(), UserFactory()
    api_client.force_authenticate(first)
    for _ in range(LIMIT + 1):
        api_client.get("/api/v1/echo/")

    api_client.force_authenticate(second)

    assert api_client.get("/api/v1/echo/").status_code == 200
