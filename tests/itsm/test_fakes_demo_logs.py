"""The fake GitHub's demo job logs (``FAKE_GITHUB_DEMO_LOGS=1``, set by ``make run``): any job
has a failing pytest log, the same failing test for every job; without the flag an unknown job is
a 404, as on GitHub."""

from __future__ import annotations

import httpx
import pytest

from itsm.fakes.server import FakeServer


@pytest.fixture
def fake_github(request, monkeypatch):
    monkeypatch.setenv("FAKE_GITHUB_DEMO_LOGS", "1" if request.param else "0")
    server = FakeServer("127.0.0.1", 0, adf_schema_path=None).start()
    yield server.base_url("github")
    server.stop()


def job_log(base_url: str, job_id: int) -> httpx.Response:
    with httpx.Client(headers={"Authorization": "Bearer demo"}, follow_redirects=True) as client:
        return client.get(f"{base_url}/repos/Codertocat/Hello-World/actions/jobs/{job_id}/logs")


@pytest.mark.parametrize("fake_github", [True], indirect=True)
def test_with_demo_logs_an_unregistered_job_has_a_failing_pytest_log(fake_github):
    first, second = job_log(fake_github, 289782451), job_log(fake_github, 42)

    assert first.status_code == second.status_code == 200
    assert "FAILED tests/test_checkout.py::test_checkout_total" in first.text
    assert "Codertocat/Hello-World" in first.text
    assert "job 289782451" in first.text and "job 42" in second.text


@pytest.mark.parametrize("fake_github", [False], indirect=True)
def test_without_demo_logs_an_unregistered_job_is_not_found(fake_github):
    assert job_log(fake_github, 289782451).status_code == 404
