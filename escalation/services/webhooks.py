"""CI failures from webhooks: GitHub's ``workflow_job``/``workflow_run`` and GitLab's job and
pipeline hooks, into the same pipeline as the API (:func:`ingest.report_failure`).

What a delivery goes through, in this order (docs/escalation-webhooks.md):

1. **Verified before anything reads it.** GitHub: ``X-Hub-Signature-256`` is the HMAC-SHA256 of
   the raw body with ``GITHUB_WEBHOOK_SECRET``; GitLab: ``X-Gitlab-Token`` is the configured token
   itself. Both are compared in constant time; missing or wrong answers 401, an unset secret 503.
2. **Parsed**: malformed JSON answers 400 ``parse_error`` (GitHub may also send the JSON as the
   ``payload`` field of a form, which is accepted).
3. **Decided** (:func:`decide_github`, :func:`decide_gitlab`: pure functions of the event and the
   payload): ignored, answered, a failed job to report, or a job that passed on a re-run.
4. **Deduplicated**, for deliveries that change something: one ``WebhookDelivery`` row per
   (source, delivery id), written in the same transaction as the change, so a redelivery answers
   200 and changes nothing, and a delivery whose processing failed can be redelivered.

No outbound call happens in the request (GitHub waits 10 s at most). A failed GitHub job's log is
fetched by the worker (:func:`report_github_job`, run by ``escalation.report_github_job``), queued
once the delivery is committed; while the log is not there (GitHub answers 404 for a while, or is
down) the task is retried with back-off, and after the last try the failure is reported without
its log rather than lost.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from hashlib import sha256
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.db import transaction

from escalation.errors import EscalationError, InvalidSignature, NotConfigured
from escalation.models import FailureEvent, WebhookDelivery
from escalation.services import audit, ingest
from itsm import public as itsm
from portal.text import check_text

logger = logging.getLogger("escalation.webhooks")

GITHUB = "github"
GITLAB = "gitlab"

# GitHub caps webhook payloads at 25 MB; GitLab's are smaller. Larger bodies answer 413.
MAX_PAYLOAD_BYTES = 25 * 1024 * 1024

# How the worker waits for a job's log: tries after 10, 20, 40, 80 and 160 s (about 5 minutes in
# all), then the failure is reported without it.
LOG_FETCH_RETRIES = 5
LOG_FETCH_FIRST_DELAY_SECONDS = 10

# GitHub's workflow_job conclusions (INTEGRATIONS.md §5: success, failure, cancelled, skipped;
# timed_out is a check-run conclusion, accepted in case GitHub sends it).
FAILING_CONCLUSIONS = frozenset({"failure", "timed_out"})
# A job that runs past ``timeout-minutes`` (or the 6-hour limit) ends as *cancelled*, like a job a
# person or a newer push cancelled. Only its log tells them apart: this line.
GITHUB_TIMEOUT_MARKER = re.compile(r"has exceeded the maximum execution time of \d+ minutes")

REPOSITORY = re.compile(r"^[\w.-]+(?:/[\w.-]+)+$")
COMMIT = re.compile(r"^[0-9a-fA-F]{4,64}$")
MAX_NAME_CHARS = 200  # FailureEvent.job and .workflow
MAX_URL_CHARS = 500  # FailureEvent.job_url
MAX_DELIVERY_ID_CHARS = 100  # WebhookDelivery.delivery_id
MAX_ATTEMPT = 10_000


# --- errors ---------------------------------------------------------------------------------


class PayloadTooLarge(EscalationError):
    http_status = 413
    code = "request_too_large"

    def __init__(self) -> None:
        super().__init__(f"The webhook body is larger than {MAX_PAYLOAD_BYTES:,} bytes.")


class MalformedPayload(EscalationError):
    http_status = 400
    code = "parse_error"


class InvalidPayload(EscalationError):
    """A signed delivery that lacks what the portal needs, naming the field."""

    http_status = 400
    code = "invalid"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    def fields(self) -> dict[str, Any]:
        return {self.field: self.problem}


class QueueUnavailable(EscalationError):
    """The log fetch could not be queued (the broker is down): the delivery is forgotten again
    and answered 503, so that GitHub shows it as failed and it can be redelivered."""

    http_status = 503
    code = "queue_unavailable"


class LogNotReady(Exception):
    """The job's log could not be fetched yet; the task retries later."""


# --- verification and parsing ---------------------------------------------------------------


def github_signature(secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256`` of ``body``: ``sha256=`` and the hex HMAC-SHA256 keyed by ``secret``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, sha256).hexdigest()


def verify_github_signature(body: bytes, header: str | None) -> None:
    secret = settings.GITHUB_WEBHOOK_SECRET
    if not secret:
        raise NotConfigured("GitHub webhooks are not configured: set GITHUB_WEBHOOK_SECRET.")
    if not header:
        raise InvalidSignature("The X-Hub-Signature-256 header is missing.")
    expected = github_signature(secret, body).encode("ascii")
    # Headers arrive as latin-1 text; encoding never fails and keeps every byte comparable.
    if not hmac.compare_digest(expected, header.strip().encode("latin-1", errors="replace")):
        raise InvalidSignature("The X-Hub-Signature-256 signature does not match the body.")


def verify_gitlab_token(header: str | None) -> None:
    token = settings.GITLAB_WEBHOOK_TOKEN
    if not token:
        raise NotConfigured("GitLab webhooks are not configured: set GITLAB_WEBHOOK_TOKEN.")
    if not header:
        raise InvalidSignature("The X-Gitlab-Token header is missing.")
    given = header.encode("latin-1", errors="replace")
    if not hmac.compare_digest(token.encode("utf-8"), given):
        raise InvalidSignature("The X-Gitlab-Token does not match.")


def parse_payload(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    """The delivery's JSON object. GitHub's "application/x-www-form-urlencoded" content type
    sends the same JSON as the form field ``payload``."""
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("ascii"), strict_parsing=True, max_num_fields=10)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedPayload(f"The form body cannot be read: {exc}") from exc
        if len(fields.get("payload", [])) != 1:
            raise MalformedPayload("The form body has no single 'payload' field.")
        body = fields["payload"][0].encode("utf-8")
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise MalformedPayload("JSON parse error - nested too deeply") from exc
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise MalformedPayload(f"JSON parse error - {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedPayload("The payload is not a JSON object.")
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# --- what a delivery asks for ---------------------------------------------------------------


@dataclass(frozen=True)
class GitHubJob:
    """A completed GitHub job whose log the worker fetches: JSON-able, it travels as the task's
    argument."""

    repository: str  # owner/name
    job_id: int
    job: str
    run_id: str
    run_attempt: int
    commit: str
    workflow: str
    job_url: str
    conclusion: str
    author: str = ""
    delivery: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GitHubJob:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    def failure_report(self) -> ingest.FailureReport:
        return ingest.FailureReport(
            repository=self.repository,
            job=self.job,
            run_id=self.run_id,
            run_attempt=self.run_attempt,
            commit=self.commit,
            workflow=self.workflow,
            job_url=self.job_url,
            author=self.author,
            exit_code=None,  # a webhook does not say; the log may
            pr_number=None,  # workflow_job carries none
            source=FailureEvent.Source.GITHUB,
        )


@dataclass(frozen=True)
class JobPassed:
    repository: str
    commit: str
    job: str
    run_attempt: int


@dataclass(frozen=True)
class Decision:
    """What to do with a delivery. ``status``: ``pong``, ``ignored``, ``queued`` (a log fetch)
    or ``processed`` (done in the request)."""

    status: str
    message: str
    fetch_log: GitHubJob | None = None
    report: ingest.FailureReport | None = None
    log_text: str | None = None
    passed: JobPassed | None = None

    @property
    def changes_something(self) -> bool:
        return self.status in ("queued", "processed")


@dataclass(frozen=True)
class Receipt:
    """The answer to a delivery."""

    status: str  # pong | ignored | queued | processed | duplicate
    message: str
    delivery: str = ""
    failure: int | None = None

    @property
    def http_status(self) -> int:
        return 202 if self.status in ("queued", "ignored") else 200

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "delivery": self.delivery,
            "failure": self.failure,
        }


def ignored(message: str) -> Decision:
    return Decision("ignored", message)


# --- GitHub ---------------------------------------------------------------------------------


def decide_github(event: str, payload: dict[str, Any], delivery: str = "") -> Decision:
    if event == "ping":
        hook = payload.get("hook_id")
        return Decision("pong", f"pong: hook {hook} reaches the portal" if hook else "pong")
    if event == "workflow_job":
        return _decide_workflow_job(payload, delivery)
    if event == "workflow_run":
        return _decide_workflow_run(payload)
    return ignored(f"ignored: the portal does not use {event or 'unnamed'} events")


def _decide_workflow_job(payload: dict[str, Any], delivery: str) -> Decision:
    action = payload.get("action")
    job = _object(payload, "workflow_job")
    if action != "completed":
        return ignored(f"ignored: workflow_job {_shown(action)} (only completed jobs count)")
    conclusion = job.get("conclusion")
    name = _name(job, "name", "workflow_job.name")
    if conclusion == "success":
        attempt = _attempt(job.get("run_attempt"), "workflow_job.run_attempt")
        if attempt <= 1:
            return ignored(f"ignored: {name} passed on its first attempt")
        passed = JobPassed(
            repository=_github_repository(payload),
            commit=_commit(job.get("head_sha"), "workflow_job.head_sha"),
            job=name,
            run_attempt=attempt,
        )
        return Decision("processed", f"{name} passed on attempt {attempt}", passed=passed)
    if conclusion not in FAILING_CONCLUSIONS and conclusion != "cancelled":
        return ignored(f"ignored: {name} ended {_shown(conclusion)}")
    sender = payload.get("sender") if isinstance(payload.get("sender"), dict) else {}
    author = sender.get("login") if sender.get("type") == "User" else ""
    fetch = GitHubJob(
        repository=_github_repository(payload),
        job_id=_positive_int(job.get("id"), "workflow_job.id"),
        job=name,
        run_id=str(_positive_int(job.get("run_id"), "workflow_job.run_id")),
        run_attempt=_attempt(job.get("run_attempt"), "workflow_job.run_attempt"),
        commit=_commit(job.get("head_sha"), "workflow_job.head_sha"),
        workflow=_optional_name(job.get("workflow_name"), "workflow_job.workflow_name"),
        job_url=_web_url(job.get("html_url")),
        conclusion=conclusion,
        author=_optional_name(author, "sender.login"),
        delivery=delivery,
    )
    what = "timed out or was cancelled" if conclusion == "cancelled" else f"ended {conclusion}"
    return Decision("queued", f"queued: {name} {what}; its log is fetched next", fetch_log=fetch)


def _decide_workflow_run(payload: dict[str, Any]) -> Decision:
    # A run's failure is the sum of its jobs' failures, and each failed job arrives as its own
    # workflow_job event with the job id its log needs. Reporting the run as well would count
    # the failure twice (docs/escalation-webhooks.md, "workflow_run").
    run = _object(payload, "workflow_run")
    conclusion = run.get("conclusion")
    if payload.get("action") == "completed" and conclusion in FAILING_CONCLUSIONS:
        return ignored(
            f"ignored: run {_shown(run.get('id'))} ended {conclusion}; its failed jobs are "
            "reported from workflow_job events (subscribe to Workflow jobs)"
        )
    return ignored(f"ignored: workflow_run {_shown(payload.get('action'))}")


def _github_repository(payload: dict[str, Any]) -> str:
    repository = _object(payload, "repository")
    full_name = repository.get("full_name")
    if not isinstance(full_name, str) or not REPOSITORY.match(full_name) or len(full_name) > 200:
        raise InvalidPayload("repository.full_name", "must be owner/name")
    return full_name


# --- GitLab ---------------------------------------------------------------------------------


def decide_gitlab(event: str, payload: dict[str, Any]) -> Decision:
    kind = payload.get("object_kind")
    if kind == "build":
        return _decide_gitlab_job(payload)
    if kind == "pipeline":
        # As with GitHub's workflow_run: each failed job comes as its own Job Hook.
        status = _object(payload, "object_attributes").get("status")
        return ignored(
            f"ignored: pipeline {_shown(status)}; failed jobs are reported from Job Hooks "
            "(enable Job events)"
        )
    return ignored(f"ignored: the portal does not use {event or kind or 'unnamed'} events")


def _decide_gitlab_job(payload: dict[str, Any]) -> Decision:
    status = payload.get("build_status")
    name = _name(payload, "build_name", "build_name")
    retries = payload.get("retries_count")
    # retries_count: 0 for the first run, 1 for the first retry (GitLab 15.6+; absent before).
    attempt = (
        1 if retries is None else _attempt(_integer(retries, "retries_count") + 1, "retries_count")
    )
    if status == "success":
        if attempt <= 1:
            return ignored(f"ignored: {name} passed on its first attempt")
        passed = JobPassed(
            repository=_gitlab_repository(payload),
            commit=_commit(payload.get("sha"), "sha"),
            job=name,
            run_attempt=attempt,
        )
        return Decision("processed", f"{name} passed on attempt {attempt}", passed=passed)
    if status != "failed":
        return ignored(f"ignored: {name} is {_shown(status)}")
    if payload.get("build_allow_failure") is True:
        return ignored(f"ignored: {name} failed but is allowed to fail")
    project = _object(payload, "project")
    commit = payload.get("commit") if isinstance(payload.get("commit"), dict) else {}
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    build_id = _positive_int(payload.get("build_id"), "build_id")
    web_url = project.get("web_url") if isinstance(project.get("web_url"), str) else ""
    report = ingest.FailureReport(
        repository=_gitlab_repository(payload),
        job=name,
        run_id=str(_positive_int(payload.get("pipeline_id"), "pipeline_id")),
        run_attempt=attempt,
        commit=_commit(payload.get("sha"), "sha"),
        workflow=_optional_name(commit.get("name"), "commit.name"),
        job_url=_web_url(f"{web_url.rstrip('/')}/-/jobs/{build_id}" if web_url else ""),
        author=_optional_name(user.get("username"), "user.username"),
        exit_code=None,
        source=FailureEvent.Source.GITLAB,
    )
    # GitLab sends no log and the portal has no GitLab client: the failure reason GitLab states
    # (script_failure, job_execution_timeout, runner_system_failure, ...) is the log's one line,
    # so a classification rule can match it (docs/escalation-webhooks.md, "GitLab").
    reason = payload.get("build_failure_reason")
    log_text = None
    if isinstance(reason, str) and reason and check_text(reason) is None:
        log_text = f"GitLab failure_reason: {reason[:200]}\n"
    return Decision(
        "processed", f"{name} failed ({reason or 'no reason given'})", report=report,
        log_text=log_text,
    )  # fmt: skip


def _gitlab_repository(payload: dict[str, Any]) -> str:
    path = _object(payload, "project").get("path_with_namespace")
    if not isinstance(path, str) or not REPOSITORY.match(path) or len(path) > 200:
        raise InvalidPayload("project.path_with_namespace", "must be group/project")
    return path


# --- field checks: a signed payload is still checked before anything is stored ---------------


def _object(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    if not isinstance(value, dict):
        raise InvalidPayload(key, "must be an object")
    return value


def _name(data: dict[str, Any], key: str, field: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidPayload(field, "must be a non-empty string")
    return _text(value, field)


def _optional_name(value: Any, field: str) -> str:
    if not isinstance(value, str):
        return ""
    return _text(value, field)


def _text(value: str, field: str) -> str:
    if problem := check_text(value):
        raise InvalidPayload(field, problem)
    # One line, at most what the failure's column holds (a long matrix job name is cut).
    return " ".join(value.split())[:MAX_NAME_CHARS]


def _integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPayload(field, "must be a whole number")
    return value


def _positive_int(value: Any, field: str) -> int:
    number = _integer(value, field)
    if number < 1:
        raise InvalidPayload(field, "must be at least 1")
    return number


def _attempt(value: Any, field: str) -> int:
    number = _positive_int(value, field)
    if number > MAX_ATTEMPT:
        raise InvalidPayload(field, f"must be at most {MAX_ATTEMPT}")
    return number


def _commit(value: Any, field: str) -> str:
    if not isinstance(value, str) or not COMMIT.match(value):
        raise InvalidPayload(field, "must be a commit SHA")
    return value.lower()


def _web_url(value: Any) -> str:
    """A link for the failure page: kept only when it is an http(s) URL that fits the column."""
    if (
        isinstance(value, str)
        and value.startswith(("https://", "http://"))
        and len(value) <= MAX_URL_CHARS
        and check_text(value) is None
        and not any(char.isspace() for char in value)
    ):
        return value
    return ""


def _shown(value: Any) -> str:
    text = str(value) if value is not None else "null"
    return text[:40] if check_text(text) is None else repr(text[:40])


def delivery_id(value: str | None, header: str, *, required: bool) -> str:
    if not value:
        if required:
            raise InvalidPayload(header, "the header is missing")
        return ""
    value = value.strip()
    if len(value) > MAX_DELIVERY_ID_CHARS or check_text(value) or not value.isprintable():
        raise InvalidPayload(header, f"at most {MAX_DELIVERY_ID_CHARS} printable characters")
    return value


# --- receiving a delivery -------------------------------------------------------------------


def receive_github(
    *,
    body: bytes,
    signature: str | None,
    event: str | None,
    delivery: str | None,
    content_type: str = "application/json",
) -> Receipt:
    """A GitHub delivery, end to end: verified, parsed, decided, deduplicated, applied."""
    verify_github_signature(body, signature)
    payload = parse_payload(body, content_type)
    if not event:
        raise InvalidPayload("X-GitHub-Event", "the header is missing")
    event = _text(event, "X-GitHub-Event")[:50]
    delivery_key = delivery_id(delivery, "X-GitHub-Delivery", required=True)
    decision = decide_github(event, payload, delivery_key)
    return apply(GITHUB, event, delivery_key, decision)


def receive_gitlab(
    *,
    body: bytes,
    token: str | None,
    event: str | None,
    idempotency_key: str | None,
    event_uuid: str | None,
) -> Receipt:
    """A GitLab delivery. Deduplicated on ``Idempotency-Key`` (GitLab 17.x, stable across
    retries), else ``X-Gitlab-Event-UUID``; with neither, on the failure's own identity."""
    verify_gitlab_token(token)
    payload = parse_payload(body)
    event = _text(event or "", "X-Gitlab-Event")[:50]
    key = delivery_id(idempotency_key, "Idempotency-Key", required=False) or delivery_id(
        event_uuid, "X-Gitlab-Event-UUID", required=False
    )
    decision = decide_gitlab(event, payload)
    return apply(GITLAB, event or str(payload.get("object_kind", ""))[:50], key, decision)


def apply(source: str, event: str, delivery: str, decision: Decision) -> Receipt:
    """Does what ``decision`` says, once per delivery id.

    Deliveries that change nothing (pings, ignored events) leave no row: a redelivery of them
    changes nothing either, and the table keeps only what the portal acted on.
    """
    if not decision.changes_something:
        _log(source, event, delivery, decision.status, decision.message)
        return Receipt(decision.status, decision.message, delivery)
    with transaction.atomic():
        row = None
        if delivery:
            row, created = WebhookDelivery.objects.get_or_create(
                source=source, delivery_id=delivery, defaults={"event": event}
            )
            if not created:
                message = f"duplicate delivery: already handled ({row.outcome or row.event})"
                _log(source, event, delivery, "duplicate", message)
                return Receipt("duplicate", message, delivery)
        receipt = _act(decision, delivery)
        if row is not None:
            row.outcome = receipt.message[:200]
            row.save(update_fields=["outcome"])
        if decision.fetch_log is not None:
            job, row_id = decision.fetch_log, row.pk if row is not None else None
            transaction.on_commit(lambda: _queue_log_fetch(job, source, row_id))
    _log(source, event, delivery, receipt.status, receipt.message)
    return receipt


def _act(decision: Decision, delivery: str) -> Receipt:
    if decision.passed is not None:
        passed = decision.passed
        marked = ingest.record_job_passed(
            passed.repository, passed.commit, passed.job, passed.run_attempt
        )
        message = f"{decision.message}: {len(marked)} earlier failed attempt(s) marked flaky"
        return Receipt("processed", message, delivery)
    if decision.report is not None:
        log = [decision.log_text] if decision.log_text else None
        failure, created = ingest.report_failure(decision.report, log)
        what = "reported" if created else "already reported"
        return Receipt(
            "processed", f"{decision.message}: {what} as failure {failure.pk}", delivery,
            failure=failure.pk,
        )  # fmt: skip
    return Receipt(decision.status, decision.message, delivery)


# The worker's queue for log fetches; escalation.tasks registers it on import (the outbox's way:
# the service never imports the tasks module, which imports it).
_dispatcher: Callable[[dict[str, Any]], None] | None = None


def set_dispatcher(dispatcher: Callable[[dict[str, Any]], None]) -> None:
    global _dispatcher
    _dispatcher = dispatcher


def _queue_log_fetch(job: GitHubJob, source: str, row_id: int | None) -> None:
    try:
        if _dispatcher is None:
            raise RuntimeError("no log-fetch dispatcher (escalation.tasks not imported)")
        _dispatcher(job.as_dict())
    except Exception as exc:
        # Acknowledging a delivery whose work is queued nowhere would lose the failure, since
        # the row makes a redelivery a no-op: forget the delivery and answer 503 instead.
        logger.error(
            "escalation.webhook_not_queued: %s job %s of %s: %s",
            source, job.job_id, job.repository, exc,
            extra={"event": "escalation.webhook_not_queued", "delivery": job.delivery},
        )  # fmt: skip
        if row_id is not None:
            WebhookDelivery.objects.filter(pk=row_id).delete()
        raise QueueUnavailable(
            "The job's log fetch could not be queued (the task broker is unreachable); "
            "redeliver this delivery once the portal's worker queue is back."
        ) from exc


def _log(source: str, event: str, delivery: str, status: str, message: str) -> None:
    logger.info(
        "escalation.webhook: %s %s %s: %s",
        source, event, delivery or "-", message,
        extra={"event": "escalation.webhook", "source": source, "webhook_event": event,
               "delivery": delivery, "status": status},
    )  # fmt: skip


# --- the worker's half: a failed GitHub job's log, then the pipeline --------------------------


def log_fetch_backoff(retries: int) -> int:
    """Seconds before try ``retries + 1``: 10, 20, 40, 80, 160."""
    return LOG_FETCH_FIRST_DELAY_SECONDS * 2 ** max(retries, 0)


def report_github_job(data: dict[str, Any], *, final_attempt: bool) -> str:
    """Fetches the failed job's log through the GitHub client and reports the failure.

    Raises :class:`LogNotReady` while the log cannot be fetched and this is not the final try;
    on the final try the failure is reported without the log (a timeline entry says why). A
    *cancelled* job is reported only when its log shows GitHub's timeout line: a cancel by a
    person or by a newer run (concurrency groups) is not a failure to escalate.
    """
    job = GitHubJob.from_dict(data)
    report = job.failure_report()
    if (existing := ingest.find_reported(report)) is not None:
        return f"already reported as failure {existing.pk}"
    log, problem = _fetch_log(job, final_attempt=final_attempt)
    if job.conclusion == "cancelled":
        if log is None:
            return f"{job.job} was cancelled and its log is unavailable ({problem}): not reported"
        if not GITHUB_TIMEOUT_MARKER.search(log):
            return f"{job.job} was cancelled (not a timeout): not reported"
    failure, created = ingest.report_failure(report, [log] if log is not None else None)
    if created and log is None:
        audit.record(
            "log_unavailable",
            f"Reported without its log: {problem}",
            escalation=failure.escalation,
            failure=failure,
            data={"job_id": job.job_id, "delivery": job.delivery},
        )
    what = "reported" if created else "already reported"
    return f"{what} as failure {failure.pk} ({failure.failure_type})"


def _fetch_log(job: GitHubJob, *, final_attempt: bool) -> tuple[str | None, str]:
    owner, _, name = job.repository.partition("/")
    try:
        with itsm.client_for("github") as client:
            return client.download_job_log(owner, name, job.job_id), ""
    except itsm.NotConfigured:
        # Retrying will not configure it: report now, without the log.
        return None, "the GitHub API is not configured (GITHUB_API_URL, GITHUB_TOKEN)"
    except itsm.ItsmError as exc:
        # 404 while GitHub prepares the log, 5xx or a timeout while it is down: try again later.
        if not final_attempt:
            raise LogNotReady(exc.message) from exc
        return (
            None,
            f"GitHub did not serve the log after {LOG_FETCH_RETRIES + 1} tries ({exc.message})",
        )
