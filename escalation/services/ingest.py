"""CI failures in: from the API, GitHub and GitLab webhooks, one pipeline for all.

``report_failure`` is idempotent on (repository, run id, run attempt, job): a repeat returns the
failure recorded first and changes nothing. The log is classified as a stream before the
transaction (it may be large); the failure, its escalation (opened or joined), the SLA record,
the notifications and the timeline are then written in one transaction.

``record_job_passed`` is the other half of flakiness: a later attempt of the same job on the same
commit that passes marks the earlier failures flaky, and resolves their escalation when every
occurrence of it turned out flaky.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils import timezone

from escalation import metrics
from escalation.models import ClassificationRule, Escalation, FailureEvent
from escalation.services import audit, recovery, routing, sla
from escalation.services.classify import (
    Classification,
    CompiledRule,
    classify,
    fingerprint_of,
    load_rules,
)
from portal.redaction import redact_text

logger = logging.getLogger("escalation.ingest")

LogSource = BinaryIO | Iterable[bytes] | Iterable[str] | None


@dataclass
class FailureReport:
    """What a CI system says about one failed job (the API's fields, or a webhook's)."""

    repository: str
    job: str
    run_id: str
    run_attempt: int = 1
    pr_number: int | None = None
    commit: str = ""
    workflow: str = ""
    exit_code: int | None = None
    changed_files: list[str] = field(default_factory=list)
    author: str = ""
    source: str = FailureEvent.Source.API
    job_url: str = ""

    def identity(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "run_id": self.run_id,
            "run_attempt": self.run_attempt,
            "job": self.job,
        }


_compiled: tuple[tuple, list[CompiledRule]] | None = None


def current_rules() -> list[CompiledRule]:
    """The enabled rules, compiled once per process until one is added, changed, disabled or
    deleted (one aggregate query tells): compiling ~100 patterns costs more than classifying a
    megabyte of log."""
    global _compiled
    state = ClassificationRule.objects.aggregate(count=Count("id"), latest=Max("updated_at"))
    key = (state["count"], state["latest"])
    if _compiled is None or _compiled[0] != key:
        _compiled = (key, load_rules())
    return _compiled[1]


def find_reported(report: FailureReport) -> FailureEvent | None:
    return FailureEvent.objects.select_related("escalation").filter(**report.identity()).first()


def report_failure(
    report: FailureReport, log: LogSource = None, *, user: Any = None, now: datetime | None = None
) -> tuple[FailureEvent, bool]:
    """Records, classifies, groups and routes one failed job; ``(failure, created)``.

    A job run reported before is found by the unique constraint when its row is inserted (a
    repeat is rare; a look-up before every report is not free), and answered as it was recorded.
    """
    result = classify(
        log if log is not None else [], report.exit_code, report.changed_files,
        rules=current_rules(),
    )  # fmt: skip
    fingerprint = fingerprint_of(result.failure_type, result.signature)
    try:
        with transaction.atomic():
            # A repeat is recorded with its escalation at once (locked until commit); a new
            # fingerprint opens one, routed and notified.
            existing = routing.open_escalation_of(report.repository, fingerprint)
            failure = _create(
                report, result, fingerprint, escalation=existing, user=user,
                now=now or timezone.now(),
            )  # fmt: skip
            if existing is not None:
                routing.attach(existing, failure)
            else:
                routing.open_or_attach_escalation(failure)
            recovery.job_failed(failure)  # a re-run that failed again
    except IntegrityError:
        # The same job reported twice at once: the other request recorded it.
        found = find_reported(report)
        if found is None:
            raise
        return found, False
    metrics.FAILURES_INGESTED.labels(failure_type=failure.failure_type, source=report.source).inc()
    logger.info(
        "escalation.failure_reported: %s %s #%s.%s is %s (rule %s)",
        report.repository, report.job, report.run_id, report.run_attempt,
        failure.failure_type, failure.rule_name or "none",
        extra={"event": "escalation.failure_reported", "failure": failure.pk,
               "failure_type": failure.failure_type, "escalation": failure.escalation_id},
    )  # fmt: skip
    return failure, True


def _create(
    report: FailureReport,
    result: Classification,
    fingerprint: str,
    *,
    escalation: Escalation | None,
    user: Any,
    now: datetime,
) -> FailureEvent:
    failure = FailureEvent.objects.create(
        repository=report.repository,
        pr_number=report.pr_number,
        commit=report.commit,
        workflow=redact_text(report.workflow),
        job=redact_text(report.job),
        run_id=report.run_id,
        run_attempt=report.run_attempt,
        exit_code=report.exit_code,
        author=report.author,
        changed_files=[redact_text(path) for path in report.changed_files],
        source=report.source,
        job_url=report.job_url,
        failure_type=result.failure_type,
        rule_id=result.rule_id,
        rule_name=result.rule_name,
        evidence=[item.as_dict() for item in result.evidence],
        log_excerpt=result.excerpt,
        log_bytes=result.log_bytes,
        fingerprint=fingerprint,
        escalation=escalation,
        signature=result.signature,
        failing_tests=result.failing_tests,
        created_at=now,
        reported_by=user if getattr(user, "is_authenticated", False) else None,
    )
    evidence = f"line {result.evidence[0].line}" if result.evidence else "no matching line"
    audit.record(
        "classified",
        f"Classified as {result.failure_type} by rule {result.rule_name or '(none)'} ({evidence})",
        failure=failure,
        actor=user,
        data={"rule": result.rule_name, "evidence": failure.evidence[:5]},
        push=False,  # the "opened" or "grouped" record of the same transaction pushes one
    )
    return failure


def record_job_passed(
    repository: str, commit: str, job: str, run_attempt: int, *, now: datetime | None = None
) -> list[FailureEvent]:
    """A job passed on attempt ``run_attempt``: earlier failed attempts of the same job on the
    same commit were flaky. Returns the failures newly marked flaky."""
    now = now or timezone.now()
    marked: list[FailureEvent] = []
    if not commit:
        return marked
    with transaction.atomic():
        earlier = (
            FailureEvent.objects.select_for_update()
            .filter(repository=repository, commit=commit, job=job, run_attempt__lt=run_attempt)
            .exclude(status=FailureEvent.Status.FLAKY)
        )
        for failure in earlier:
            failure.status = FailureEvent.Status.FLAKY
            failure.save(update_fields=["status"])
            marked.append(failure)
            audit.record(
                "flaky",
                f"Attempt {run_attempt} of {job} passed on the same commit: attempt "
                f"{failure.run_attempt} was flaky",
                escalation=failure.escalation,
                failure=failure,
            )
        recovery.job_passed(marked, run_attempt, now=now)
        for escalation in {f.escalation for f in marked if f.escalation is not None}:
            still_failing = escalation.failures.exclude(status=FailureEvent.Status.FLAKY)
            if escalation.status == Escalation.Status.OPEN and not still_failing.exists():
                sla.resolve(escalation, "passed on re-run (flaky)", now=now)
    return marked


def flaky_tests(
    repository: str | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Tests that failed and then passed on a re-run, per repository, most frequent first;
    ``since``/``until`` bound the failures' report time (the weekly report's week)."""
    counts: dict[tuple[str, str], dict[str, Any]] = {}
    failures = FailureEvent.objects.filter(status=FailureEvent.Status.FLAKY)
    if repository:
        failures = failures.filter(repository=repository)
    if since is not None:
        failures = failures.filter(created_at__gte=since)
    if until is not None:
        failures = failures.filter(created_at__lt=until)
    for failure in failures.only("repository", "failing_tests", "job", "created_at"):
        names = failure.failing_tests or [f"job: {failure.job}"]
        for name in names:
            entry = counts.setdefault(
                (failure.repository, name),
                {"repository": failure.repository, "test": name, "count": 0, "last_seen": None},
            )
            entry["count"] += 1
            if entry["last_seen"] is None or failure.created_at > entry["last_seen"]:
                entry["last_seen"] = failure.created_at
    return sorted(counts.values(), key=lambda e: (-e["count"], e["repository"], e["test"]))
