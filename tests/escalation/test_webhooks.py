"""GitHub and GitLab webhooks through the real stack, with GitHub's own example payloads
(tests/escalation/payloads/github, from @octokit/webhooks-examples) and GitLab's documented shape.

A failed GitHub job's log comes from the fake GitHub (itsm/fakes) through the GitHub client, in
the Celery task that the delivery queued, run here inline (``Task.apply`` runs its retries too).
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError

from escalation import tasks
from escalation.models import EscalationEvent, FailureEvent, WebhookDelivery
from escalation.services import webhooks
from itsm.models import OutboxMessage
from tests.itsm.deliveries import sweep_now

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_itsm_config")]

PAYLOADS = Path(__file__).parent / "payloads"
GITHUB_URL = "/api/v1/webhooks/github"
GITLAB_URL = "/api/v1/webhooks/gitlab"
SECRET = "s3cret-for-webhook-tests"
GITLAB_TOKEN = "gitlab-hook-token-for-tests"

# The failing example: job "linters" (id 289782451) of run 2202229078 in Codertocat/Hello-World.
OWNER, REPO, JOB_ID = "Codertocat", "Hello-World", 289782451
LOGS_ENDPOINT = "GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs"  # the fake's request count
JEST_LOG = """\
2021-08-05T10:26:08.0000000Z ##[group]Run actions/checkout@v2
2021-08-05T10:26:11.0000000Z ##[endgroup]
2021-08-05T10:26:25.1000000Z ##[group]Run yarn test --ci
2021-08-05T10:26:25.1100000Z \x1b[36;1myarn test --ci\x1b[0m
2021-08-05T10:26:25.1200000Z shell: /usr/bin/bash -e {0}
2021-08-05T10:26:25.1300000Z ##[endgroup]
2021-08-05T10:26:25.5000000Z yarn run v1.22.11
2021-08-05T10:26:25.5100000Z $ jest --ci
2021-08-05T10:26:27.2000000Z FAIL src/cart.test.js
2021-08-05T10:26:27.2100000Z   \u25cf cart \u203a applies the discount once
2021-08-05T10:26:27.2200000Z
2021-08-05T10:26:27.2300000Z     expect(received).toBe(expected) // Object.is equality
2021-08-05T10:26:27.2400000Z
2021-08-05T10:26:27.2500000Z     Expected: 90
2021-08-05T10:26:27.2600000Z     Received: 81
2021-08-05T10:26:27.9000000Z Tests:       1 failed, 41 passed, 42 total
2021-08-05T10:26:27.9100000Z Snapshots:   0 total
2021-08-05T10:26:27.9200000Z Time:        2.114 s
2021-08-05T10:26:28.0000000Z error Command failed with exit code 1.
2021-08-05T10:26:28.0100000Z ##[error]Process completed with exit code 1.
"""
TIMEOUT_LOG = """\
2021-08-05T10:26:25.1000000Z ##[group]Run yarn test --ci
2021-08-05T10:26:25.5100000Z $ jest --ci
2021-08-05T10:41:25.0000000Z ##[error]The job running on runner GitHub Actions 5 has exceeded the maximum execution time of 15 minutes.
2021-08-05T10:41:25.0100000Z ##[error]The operation was canceled.
"""


def raw(name: str, source: str = "github") -> bytes:
    return (PAYLOADS / source / name).read_bytes()


def example(name: str, source: str = "github") -> dict[str, Any]:
    return json.loads(raw(name, source))


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


@pytest.fixture
def github_secret(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET


@pytest.fixture
def gitlab_token(settings):
    settings.GITLAB_WEBHOOK_TOKEN = GITLAB_TOKEN


@pytest.fixture
def queued_jobs():
    """The log fetches the deliveries queue, kept here instead of sent to the broker."""
    jobs: list[dict[str, Any]] = []
    webhooks.set_dispatcher(jobs.append)
    yield jobs
    webhooks.set_dispatcher(tasks.queue_github_job)


@pytest.fixture
def deliver(api_client, django_capture_on_commit_callbacks):
    """Posts a GitHub delivery signed with ``secret`` and runs what its commit queues."""

    def post(event: str, body: bytes, *, delivery: str | None = None, secret: str = SECRET,
             signature: str | None = None, **headers: str):  # fmt: skip
        if signature is None:
            signature = webhooks.github_signature(secret, body)
        with django_capture_on_commit_callbacks(execute=True):
            return api_client.post(
                GITHUB_URL,
                data=body,
                content_type=headers.pop("content_type", "application/json"),
                HTTP_X_GITHUB_EVENT=event,
                HTTP_X_GITHUB_DELIVERY=delivery or str(uuid.uuid4()),
                HTTP_X_HUB_SIGNATURE_256=signature,
                **headers,
            )

    return post


def run_queued(jobs: list[dict[str, Any]]) -> list[str]:
    """Each queued log fetch, inline, as the worker would run it (retries included)."""
    results = []
    while jobs:
        # Not throw=True: a retry would then raise instead of running the next try inline.
        outcome = tasks.report_github_job.apply(args=[jobs.pop(0)])
        if not outcome.successful():
            raise AssertionError(f"the task failed: {outcome.traceback}")
        results.append(outcome.result)
    return results


def error_code(response) -> str:
    return response.json()["error"]["code"]


# --- the signature ------------------------------------------------------------------------------


def test_the_signature_is_githubs_hmac_sha256_of_the_raw_body():
    # The test vector of INTEGRATIONS.md §5 (GitHub's "Validating webhook deliveries").
    assert webhooks.github_signature("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_a_delivery_without_a_signature_answers_401(github_secret, deliver, queued_jobs):
    response = deliver("workflow_job", raw("workflow_job.completed.failure.json"), signature="")

    assert response.status_code == 401
    assert error_code(response) == "invalid_signature"
    assert queued_jobs == [] and WebhookDelivery.objects.count() == 0


def test_a_delivery_signed_with_another_secret_answers_401(github_secret, deliver, queued_jobs):
    response = deliver(
        "workflow_job", raw("workflow_job.completed.failure.json"), secret="not-the-secret"
    )

    assert response.status_code == 401
    assert error_code(response) == "invalid_signature"
    assert queued_jobs == []


def test_a_body_changed_after_signing_answers_401(github_secret, deliver, queued_jobs):
    body = raw("workflow_job.completed.failure.json")
    signature = webhooks.github_signature(SECRET, body)

    response = deliver("workflow_job", body.replace(b"linters", b"linterz"), signature=signature)

    assert response.status_code == 401
    assert queued_jobs == []


def test_without_a_secret_the_github_webhook_answers_503(settings, deliver):
    settings.GITHUB_WEBHOOK_SECRET = ""

    response = deliver("ping", raw("ping.json"), secret="anything")

    assert response.status_code == 503
    assert error_code(response) == "not_configured"


def test_the_webhook_needs_no_token_but_ignores_one(github_secret, deliver):
    # Exempt from token auth (DESIGN.md): the signature is what counts.
    response = deliver("ping", raw("ping.json"), HTTP_AUTHORIZATION="Token not-a-real-token")

    assert response.status_code == 200


# --- parsing and the edge ---------------------------------------------------------------------


def test_ping_is_answered_200(github_secret, deliver):
    response = deliver("ping", raw("ping.json"))

    assert response.status_code == 200
    assert response.json()["status"] == "pong"
    assert "109948940" in response.json()["message"]


def test_a_malformed_body_with_a_valid_signature_answers_400_parse_error(github_secret, deliver):
    response = deliver("workflow_job", b'{"action": "completed", "workflow_job": {')

    assert response.status_code == 400
    assert error_code(response) == "parse_error"
    assert WebhookDelivery.objects.count() == 0


def test_a_json_array_with_a_valid_signature_answers_400_parse_error(github_secret, deliver):
    response = deliver("workflow_job", b"[1, 2, 3]")

    assert response.status_code == 400
    assert error_code(response) == "parse_error"


def test_a_body_over_25_mb_answers_413_before_it_is_read(github_secret, deliver):
    body = b" " * (webhooks.MAX_PAYLOAD_BYTES + 1)

    response = deliver("workflow_job", body, signature="sha256=0")

    assert response.status_code == 413
    assert error_code(response) == "request_too_large"


def test_a_body_over_the_apis_5_mb_but_within_githubs_25_mb_is_accepted(
    github_secret, deliver, settings
):
    payload = example("ping.json")
    payload["padding"] = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    response = deliver("ping", encode(payload))

    assert response.status_code == 200


def test_a_signed_payload_without_a_repository_answers_400_naming_the_field(
    github_secret, deliver, queued_jobs
):
    payload = example("workflow_job.completed.failure.json")
    del payload["repository"]

    response = deliver("workflow_job", encode(payload))

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"repository": "must be an object"}
    assert queued_jobs == []


def test_a_delivery_without_its_delivery_id_answers_400(github_secret, api_client):
    body = raw("workflow_job.completed.failure.json")

    response = api_client.post(
        GITHUB_URL,
        data=body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="workflow_job",
        HTTP_X_HUB_SIGNATURE_256=webhooks.github_signature(SECRET, body),
    )

    assert response.status_code == 400
    assert "X-GitHub-Delivery" in response.json()["error"]["fields"]


def test_the_form_encoded_content_type_is_accepted(github_secret, deliver):
    from urllib.parse import urlencode

    body = urlencode({"payload": raw("ping.json").decode()}).encode()

    response = deliver("ping", body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert response.json()["status"] == "pong"


# --- what each event does -------------------------------------------------------------------


def test_a_queued_job_is_ignored_with_202(github_secret, deliver, queued_jobs):
    response = deliver("workflow_job", raw("workflow_job.queued.json"))

    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert queued_jobs == [] and WebhookDelivery.objects.count() == 0


def test_unknown_events_are_ignored_with_202(github_secret, deliver):
    response = deliver("star", encode({"action": "created", "starred_at": None}))

    assert response.status_code == 202
    assert response.json()["status"] == "ignored"


def test_a_failed_workflow_run_adds_nothing_its_jobs_come_as_workflow_job(
    github_secret, deliver, queued_jobs
):
    payload = example("workflow_run.completed.json")
    payload["workflow_run"]["conclusion"] = "failure"

    response = deliver("workflow_run", encode(payload))

    assert response.status_code == 202
    assert "workflow_job" in response.json()["message"]
    assert queued_jobs == [] and FailureEvent.objects.count() == 0


def test_a_failing_workflow_job_is_fetched_classified_grouped_and_routed(
    github_secret, deliver, queued_jobs, fakes, itsm_endpoints
):
    fakes.register_job_log(OWNER, REPO, JOB_ID, JEST_LOG)

    response = deliver("workflow_job", raw("workflow_job.completed.failure.json"))

    # Answered before any call to GitHub: the log is the worker's job.
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert fakes.state("github")["log_links_issued"] == 0
    assert FailureEvent.objects.count() == 0

    run_queued(queued_jobs)

    failure = FailureEvent.objects.get()
    assert failure.source == "github"
    assert failure.repository == "Codertocat/Hello-World"
    assert (failure.job, failure.run_id, failure.run_attempt) == ("linters", "2202229078", 1)
    assert failure.commit == "3484a3fb816e0859fd6e1cea078d76385ff50625"
    assert failure.workflow == "CodeQL"
    assert failure.job_url == "https://github.com/octo-org/octo-repo/runs/1291536064"
    assert failure.pr_number is None and failure.exit_code is None
    assert failure.author == "Codertocat"
    # Classified from the log the fake GitHub served, with the evidence's line numbers.
    assert failure.failure_type == "test_failure"
    assert failure.log_bytes == len(JEST_LOG.encode())
    lines = JEST_LOG.splitlines()
    assert failure.evidence
    for item in failure.evidence:
        assert lines[item["line"] - 1].endswith(item["text"])
    assert failure.escalation is not None
    assert fakes.state("github")["log_links_issued"] == 1
    # And routed: the team and the author hear of it through the outbox.
    assert sweep_now() == {OutboxMessage.Status.DELIVERED: 3}
    assert any("Codertocat/Hello-World" in m["text"] for m in fakes.state("slack")["messages"])


def test_a_redelivery_answers_200_and_creates_one_failure(
    github_secret, deliver, queued_jobs, fakes, itsm_endpoints
):
    fakes.register_job_log(OWNER, REPO, JOB_ID, JEST_LOG)
    body = raw("workflow_job.completed.failure.json")
    delivery = str(uuid.uuid4())

    first = deliver("workflow_job", body, delivery=delivery)
    again = deliver("workflow_job", body, delivery=delivery)

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert len(queued_jobs) == 1
    run_queued(queued_jobs)
    assert FailureEvent.objects.count() == 1
    assert WebhookDelivery.objects.get().outcome.startswith("queued: linters")


def test_the_same_job_from_two_deliveries_is_still_one_failure(
    github_secret, deliver, queued_jobs, fakes, itsm_endpoints
):
    # Two hooks (a repository's and its organisation's) deliver the same event with one GUID;
    # a copy sent by hand has another: the job's identity keeps it one failure either way.
    fakes.register_job_log(OWNER, REPO, JOB_ID, JEST_LOG)
    body = raw("workflow_job.completed.failure.json")
    deliver("workflow_job", body)
    deliver("workflow_job", body)

    outcomes = run_queued(queued_jobs)

    assert FailureEvent.objects.count() == 1
    assert outcomes[1].startswith("already reported")
    assert fakes.state("github")["log_links_issued"] == 1


def test_a_success_on_attempt_2_marks_the_failed_attempt_flaky(
    github_secret, deliver, queued_jobs, fakes, itsm_endpoints
):
    fakes.register_job_log(OWNER, REPO, JOB_ID, JEST_LOG)
    deliver("workflow_job", raw("workflow_job.completed.failure.json"))
    run_queued(queued_jobs)
    rerun = example("workflow_job.completed.success.json")  # same job, commit and run
    rerun["workflow_job"]["run_attempt"] = 2

    response = deliver("workflow_job", encode(rerun))

    assert response.status_code == 200
    assert response.json()["status"] == "processed"
    assert "1 earlier failed attempt(s) marked flaky" in response.json()["message"]
    failure = FailureEvent.objects.get()
    assert failure.status == FailureEvent.Status.FLAKY
    assert failure.escalation.status == "resolved"


def test_a_success_on_the_first_attempt_changes_nothing(github_secret, deliver, queued_jobs):
    response = deliver("workflow_job", raw("workflow_job.completed.success.json"))

    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert WebhookDelivery.objects.count() == 0


def test_a_log_not_ready_yet_is_fetched_again_later(
    github_secret, deliver, queued_jobs, fakes, itsm_endpoints
):
    fakes.register_job_log(OWNER, REPO, JOB_ID, JEST_LOG)
    # GitHub answers 404 for a job's log while it prepares it.
    fakes.faults(platform="github", status=404, count=1, path_contains="actions/jobs")
    deliver("workflow_job", raw("workflow_job.completed.failure.json"))

    run_queued(queued_jobs)

    failure = FailureEvent.objects.get()
    assert failure.failure_type == "test_failure"
    assert failure.log_bytes == len(JEST_LOG.encode())
    assert fakes.state("github")["requests"][LOGS_ENDPOINT] == 2


def test_with_github_down_the_failure_is_reported_without_its_log_after_the_retries(
    github_secret, deliver, queued_jobs, fakes, itsm_endpoints
):
    fakes.register_job_log(OWNER, REPO, JOB_ID, JEST_LOG)
    fakes.faults(platform="github", status=503)
    deliver("workflow_job", raw("workflow_job.completed.failure.json"))

    run_queued(queued_jobs)

    failure = FailureEvent.objects.get()
    assert failure.log_bytes == 0
    assert failure.failure_type == "unknown"
    assert failure.escalation is not None
    event = EscalationEvent.objects.get(failure=failure, kind="log_unavailable")
    assert "after 6 tries" in event.message
    # One task run and LOG_FETCH_RETRIES retries, each with the client's own retries.
    requests = fakes.state("github")["requests"]
    assert requests[LOGS_ENDPOINT] >= webhooks.LOG_FETCH_RETRIES + 1


def test_the_task_retries_with_growing_delays():
    assert [webhooks.log_fetch_backoff(n) for n in range(webhooks.LOG_FETCH_RETRIES)] == [
        10, 20, 40, 80, 160,
    ]  # fmt: skip


def test_a_cancelled_job_that_timed_out_is_reported(
    github_secret, deliver, queued_jobs, fakes, itsm_endpoints
):
    fakes.register_job_log(OWNER, REPO, JOB_ID, TIMEOUT_LOG)
    payload = example("workflow_job.completed.failure.json")
    payload["workflow_job"]["conclusion"] = "cancelled"
    deliver("workflow_job", encode(payload))

    run_queued(queued_jobs)

    failure = FailureEvent.objects.get()
    assert failure.failure_type == "infrastructure_timeout"
    assert "exceeded the maximum execution time" in failure.evidence[0]["text"]


def test_a_job_cancelled_by_a_person_or_a_newer_run_is_not_reported(
    github_secret, deliver, queued_jobs, fakes, itsm_endpoints
):
    cancelled_log = "2021-08-05T10:26:28.0100000Z ##[error]The operation was canceled.\n"
    fakes.register_job_log(OWNER, REPO, JOB_ID, cancelled_log)
    payload = example("workflow_job.completed.failure.json")
    payload["workflow_job"]["conclusion"] = "cancelled"
    deliver("workflow_job", encode(payload))

    [outcome] = run_queued(queued_jobs)

    assert "not a timeout" in outcome
    assert FailureEvent.objects.count() == 0


def test_a_skipped_job_is_ignored(github_secret, deliver, queued_jobs):
    payload = example("workflow_job.completed.failure.json")
    payload["workflow_job"]["conclusion"] = "skipped"

    response = deliver("workflow_job", encode(payload))

    assert response.status_code == 202
    assert queued_jobs == []


@pytest.mark.django_db(transaction=True)
def test_when_the_queue_is_down_the_delivery_answers_503_and_can_be_redelivered(
    github_secret, api_client
):
    # Real commits here: the queueing runs as the delivery commits, inside the request.
    def broker_down(job):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    body = raw("workflow_job.completed.failure.json")
    headers = {
        "content_type": "application/json",
        "HTTP_X_GITHUB_EVENT": "workflow_job",
        "HTTP_X_GITHUB_DELIVERY": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "HTTP_X_HUB_SIGNATURE_256": webhooks.github_signature(SECRET, body),
    }
    queued: list[dict[str, Any]] = []
    try:
        webhooks.set_dispatcher(broker_down)
        refused = api_client.post(GITHUB_URL, data=body, **headers)
        webhooks.set_dispatcher(queued.append)
        redelivered = api_client.post(GITHUB_URL, data=body, **headers)
    finally:
        webhooks.set_dispatcher(tasks.queue_github_job)

    assert refused.status_code == 503
    assert error_code(refused) == "queue_unavailable"
    assert redelivered.status_code == 202
    assert len(queued) == 1
    assert WebhookDelivery.objects.count() == 1


def test_the_worker_task_is_what_a_delivery_queues(github_secret, deliver, monkeypatch):
    # Without the queued_jobs fixture the dispatcher is escalation.tasks': the Celery task.
    sent: list[tuple] = []
    monkeypatch.setattr(tasks.report_github_job, "delay", lambda *args: sent.append(args))

    response = deliver("workflow_job", raw("workflow_job.completed.failure.json"))

    assert response.status_code == 202
    [(job,)] = sent
    assert webhooks.GitHubJob.from_dict(job).job_id == JOB_ID


# --- GitLab -------------------------------------------------------------------------------------


@pytest.fixture
def gitlab(api_client, django_capture_on_commit_callbacks):
    def post(name_or_payload, *, token: str | None = GITLAB_TOKEN, event: str = "Job Hook",
             **headers: str):  # fmt: skip
        if isinstance(name_or_payload, str):
            body = raw(name_or_payload, "gitlab")
        else:
            body = encode(name_or_payload)
        if token is not None:
            headers["HTTP_X_GITLAB_TOKEN"] = token
        with django_capture_on_commit_callbacks(execute=True):
            return api_client.post(
                GITLAB_URL,
                data=body,
                content_type="application/json",
                HTTP_X_GITLAB_EVENT=event,
                **headers,
            )

    return post


def gitlab_example(name: str) -> dict[str, Any]:
    return example(name, "gitlab")


def test_a_failed_gitlab_job_with_the_right_token_enters_the_pipeline(
    gitlab_token, gitlab, itsm_endpoints
):
    response = gitlab("job_hook.failed.json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "processed"
    failure = FailureEvent.objects.get(pk=body["failure"])
    assert failure.source == "gitlab"
    assert failure.repository == "gitlab-org/gitlab-test"
    assert (failure.job, failure.run_id, failure.run_attempt) == ("rspec:unit", "2366", 1)
    assert failure.commit == "2293ada6b400935a1378653304eaf6221e0fdb8f"
    assert failure.workflow == "Build pipeline"
    assert failure.job_url == "https://gitlab.example.com/gitlab-org/gitlab-test/-/jobs/1977"
    assert failure.author == "user3"
    # No log from GitLab: the failure reason it states is the log's one line.
    assert "failure_reason: script_failure" in failure.log_excerpt
    assert failure.escalation is not None


def test_a_gitlab_hook_with_a_wrong_token_answers_401(gitlab_token, gitlab):
    response = gitlab("job_hook.failed.json", token="not-the-token")

    assert response.status_code == 401
    assert error_code(response) == "invalid_signature"
    assert FailureEvent.objects.count() == 0


def test_a_gitlab_hook_without_a_token_answers_401(gitlab_token, gitlab):
    response = gitlab("job_hook.failed.json", token=None)

    assert response.status_code == 401
    assert FailureEvent.objects.count() == 0


def test_without_a_token_configured_the_gitlab_webhook_answers_503(settings, gitlab):
    settings.GITLAB_WEBHOOK_TOKEN = ""

    response = gitlab("job_hook.failed.json", token="anything")

    assert response.status_code == 503
    assert error_code(response) == "not_configured"


def test_gitlab_deliveries_are_deduplicated_on_the_idempotency_key(
    gitlab_token, gitlab, itsm_endpoints
):
    key = str(uuid.uuid4())
    first = gitlab("job_hook.failed.json", HTTP_IDEMPOTENCY_KEY=key)
    events_after_first = EscalationEvent.objects.count()

    again = gitlab("job_hook.failed.json", HTTP_IDEMPOTENCY_KEY=key)

    assert first.json()["status"] == "processed"
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert FailureEvent.objects.count() == 1
    assert EscalationEvent.objects.count() == events_after_first
    assert WebhookDelivery.objects.filter(source="gitlab", delivery_id=key).count() == 1


def test_without_an_idempotency_key_gitlab_is_deduplicated_on_the_event_uuid(
    gitlab_token, gitlab, itsm_endpoints
):
    event_uuid = str(uuid.uuid4())
    gitlab("job_hook.failed.json", HTTP_X_GITLAB_EVENT_UUID=event_uuid)

    again = gitlab("job_hook.failed.json", HTTP_X_GITLAB_EVENT_UUID=event_uuid)

    assert again.json()["status"] == "duplicate"
    assert WebhookDelivery.objects.get().delivery_id == event_uuid


def test_a_gitlab_retry_that_passes_marks_the_failure_flaky(gitlab_token, gitlab, itsm_endpoints):
    gitlab("job_hook.failed.json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))

    response = gitlab("job_hook.success_retry.json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))

    assert response.status_code == 200
    assert FailureEvent.objects.get().status == FailureEvent.Status.FLAKY


def test_a_gitlab_job_allowed_to_fail_is_not_reported(gitlab_token, gitlab):
    payload = gitlab_example("job_hook.failed.json")
    payload["build_allow_failure"] = True

    response = gitlab(payload)

    assert response.status_code == 202
    assert FailureEvent.objects.count() == 0


def test_a_gitlab_pipeline_hook_is_acknowledged_its_jobs_come_as_job_hooks(gitlab_token, gitlab):
    response = gitlab("pipeline_hook.failed.json", event="Pipeline Hook")

    assert response.status_code == 202
    assert "Job Hooks" in response.json()["message"]
    assert FailureEvent.objects.count() == 0


def test_a_running_gitlab_job_is_ignored(gitlab_token, gitlab):
    payload = copy.deepcopy(gitlab_example("job_hook.failed.json"))
    payload["build_status"] = "running"

    response = gitlab(payload)

    assert response.status_code == 202
    assert response.json()["status"] == "ignored"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_delivery_arriving_twice_at_once_is_handled_once(github_secret):
    import threading

    from django.db import connection
    from rest_framework.test import APIClient

    body = raw("workflow_job.completed.failure.json")
    headers = {
        "content_type": "application/json",
        "HTTP_X_GITHUB_EVENT": "workflow_job",
        "HTTP_X_GITHUB_DELIVERY": str(uuid.uuid4()),
        "HTTP_X_HUB_SIGNATURE_256": webhooks.github_signature(SECRET, body),
    }
    queued: list[dict[str, Any]] = []
    answers: list[str] = []
    barrier = threading.Barrier(2)

    def deliver_once() -> None:
        barrier.wait()
        try:
            answers.append(APIClient().post(GITHUB_URL, data=body, **headers).json()["status"])
        finally:
            connection.close()

    webhooks.set_dispatcher(queued.append)
    try:
        threads = [threading.Thread(target=deliver_once) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        webhooks.set_dispatcher(tasks.queue_github_job)

    assert sorted(answers) == ["duplicate", "queued"]
    assert len(queued) == 1
    assert WebhookDelivery.objects.count() == 1
