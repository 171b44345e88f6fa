"""Tickets from templates (seed 003 US-3): render, validate, record, and deliver through the outbox.

``create_from_template`` never calls a platform: it writes the ``Ticket`` row (with its
idempotency key) and an outbox message in one transaction. ``deliver_ticket`` runs in the worker
and is the only place that creates the external ticket.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from itsm import metrics, outbox
from itsm.clients import client_class, client_for
from itsm.config import endpoints
from itsm.errors import (
    NotConfigured,
    RetryableError,
    TemplateError,
    UpstreamRejected,
    ValidationFailed,
)
from itsm.models import Ticket
from itsm.services import sla
from itsm.templates import TemplateInfo, get_template, render
from itsm.types import CallLog, CreatedTicket
from itsm.validation import ensure_valid, validate
from portal.redaction import redact

TICKET_CREATE = "ticket.create"


@dataclass
class Preview:
    """What the "New ticket" page shows while typing: never raises."""

    fields: dict[str, str] = field(default_factory=dict)
    variables: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.errors


def idempotency_key_for(platform: str, template_name: str, job_id: str) -> str:
    """The same job, platform and template always name the same ticket."""
    raw = f"{platform}\x1f{template_name}\x1f{job_id}".encode()
    return hashlib.sha256(raw).hexdigest()[:40]


def issue_type_of(platform: str, fields: dict[str, Any]) -> str | None:
    return client_class(platform).issue_type_of(fields)


def given_variables(variables: dict[str, Any]) -> dict[str, Any]:
    """The values that count as given: an empty or blank text is not a value (a required
    variable of only spaces is missing, not filled in)."""
    return {
        name: value
        for name, value in variables.items()
        if value is not None and not (isinstance(value, str) and not value.strip())
    }


def sent_fields(ticket: Ticket) -> dict[str, Any]:
    """The fields as the platform receives them (ServiceNow gets impact and urgency, not a
    priority): what the ticket page shows under "Fields sent"."""
    return client_class(ticket.platform).wire_fields(ticket.fields)


def render_fields(
    platform: str, template_name: str, variables: dict[str, Any]
) -> tuple[TemplateInfo, dict[str, str]]:
    """Rendered and validated fields; TemplateError or ValidationFailed otherwise."""
    info = get_template(platform, template_name)
    fields = render(info, given_variables(variables))
    ensure_valid(platform, fields, issue_type_of(platform, fields))
    return info, fields


def preview(platform: str, template_name: str, variables: dict[str, Any]) -> Preview:
    """Renders with what is there so far, reporting missing variables and field errors."""
    try:
        info = get_template(platform, template_name)
    except TemplateError as exc:
        return Preview(errors=[{"field": "template_name", "code": "unknown", "message": str(exc)}])
    result = Preview(variables=info.variables)
    given = given_variables(variables)
    result.missing = [name for name in info.variables if name not in given]
    placeholder = {name: f"{{{name}}}" for name in result.missing}
    try:
        result.fields = render(info, {**placeholder, **given}, count_errors=False)
    except TemplateError as exc:
        result.errors.append({"field": "template", "code": "template_error", "message": str(exc)})
        return result
    if not result.missing:
        result.errors = [
            e.as_dict()
            for e in validate(platform, result.fields, issue_type_of(platform, result.fields))
        ]
    return result


def create_from_template(
    *,
    job_id: str,
    platform: str,
    template_name: str,
    variables: dict[str, Any],
    dry_run: bool = False,
    user: Any = None,
) -> tuple[Ticket, bool]:
    """Returns ``(ticket, created)``. A dry run returns an unsaved ticket and sends nothing.

    The same job, platform and template a second time returns the first ticket unchanged.
    NotConfigured when the platform has no base URL (nothing is recorded then).
    """
    key = idempotency_key_for(platform, template_name, job_id)
    existing = Ticket.objects.filter(idempotency_key=key).first()
    if existing and not dry_run:
        return existing, False
    if not dry_run and not endpoints()[platform].configured:
        # Nothing is recorded for a platform the worker could never reach.
        raise NotConfigured(
            f"{platform} is not configured: set its base URL and credentials", platform=platform
        )
    try:
        info, fields = render_fields(platform, template_name, variables)
    except ValidationFailed:
        if not dry_run:  # an attempt refused before any call: the seed's validation_error outcome
            metrics.TICKET_CREATION_TOTAL.labels(
                platform=platform, outcome=metrics.OUTCOME_VALIDATION_ERROR
            ).inc()
        raise
    ticket = Ticket(
        platform=platform,
        idempotency_key=key,
        job_id=job_id,
        template_name=info.name,
        template_source=info.source,
        variables=redact({k: str(v) for k, v in variables.items()}),
        fields=redact(fields),
        priority=str(fields.get("priority") or ""),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    if dry_run:
        return ticket, False
    return record_ticket(ticket)


def record_ticket(ticket: Ticket) -> tuple[Ticket, bool]:
    """Stores an unsaved ticket with its SLA deadlines and queues its creation through the
    outbox, in one transaction; the same idempotency key again returns the first record.

    The row is inserted straight away (a replay was answered before rendering, so a twin is
    rare) and only a clash on the key looks the first record up: one query less than
    ``get_or_create`` on every new ticket, and the returned ticket keeps the objects it was
    built with (its ``created_by`` is not fetched again to answer the request).
    """
    sla.set_deadlines(ticket, timezone.now())
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: a clash undoes the insert, not the caller
                ticket.save(force_insert=True)
        except IntegrityError:
            first = Ticket.objects.filter(idempotency_key=ticket.idempotency_key).first()
            if first is None:  # another constraint failed: not a replay
                raise
            return first, False
        outbox.enqueue(
            TICKET_CREATE, ticket.platform, {"ticket_id": ticket.pk},
            idempotency_key=f"ticket:{ticket.idempotency_key}", ticket=ticket,
        )  # fmt: skip
    return ticket, True


def open_ticket(
    platform: str,
    fields: dict[str, Any],
    *,
    idempotency_key: str,
    job_id: str = "",
    source: str = "",
) -> tuple[Ticket, bool]:
    """A ticket from fields another app composed (not from a template): validated now, created
    by the worker exactly once per ``idempotency_key`` (any text; it is hashed). ``source`` names
    what opened it (e.g. ``escalation``) and is shown where the template name would be.

    Call it inside the caller's transaction: the ticket and its delivery commit with the
    caller's change or not at all. ValidationFailed when the fields break the platform's
    rules, NotConfigured when the platform has no base URL.
    """
    if not endpoints()[platform].configured:
        raise NotConfigured(
            f"{platform} is not configured: set its base URL and credentials", platform=platform
        )
    ensure_valid(platform, fields, issue_type_of(platform, fields))
    key = hashlib.sha256(f"{platform}\x1f{idempotency_key}".encode()).hexdigest()[:40]
    return record_ticket(
        Ticket(
            platform=platform,
            idempotency_key=key,
            job_id=job_id,
            template_name=source,
            template_source="service",
            fields=redact(fields),
            priority=str(fields.get("priority") or ""),
        )
    )


def send_ticket(ticket: Ticket, log: CallLog, *, reconcile_first: bool = False) -> CreatedTicket:
    """The platform call for one ticket record (the rendered fields are already valid)."""
    with client_for(ticket.platform) as client:
        return client.create(
            ticket.fields, idempotency_key=ticket.idempotency_key, log=log,
            reconcile_first=reconcile_first,
        )  # fmt: skip


@outbox.handler(TICKET_CREATE)
def deliver_ticket_message(message) -> dict[str, Any]:
    ticket = Ticket.objects.get(pk=message.payload["ticket_id"])
    return deliver_ticket(ticket, redelivery=outbox.is_redelivery(message))


def deliver_ticket(ticket: Ticket, *, redelivery: bool = False) -> dict[str, Any]:
    """Creates the external ticket exactly once and records the outcome on the row.

    A redelivery (or a ticket with recorded attempts) may follow a delivery whose answer was lost
    (a crash, a timeout): the client then looks for the ticket by idempotency key before
    creating.
    """
    if ticket.status == Ticket.Status.CREATED:
        return {"key": ticket.external_key, "already": True}
    log = CallLog()
    reconcile_first = redelivery or ticket.attempts > 0
    try:
        created = send_ticket(ticket, log, reconcile_first=reconcile_first)
    except (RetryableError, UpstreamRejected, ValidationFailed) as exc:
        _record_attempts(ticket, log, error=exc)
        raise
    _record_attempts(ticket, log)
    ticket.status = Ticket.Status.CREATED
    ticket.external_id = created.id
    ticket.external_key = created.key
    ticket.external_url = created.url
    ticket.sent_at = timezone.now()
    ticket.error = {}
    # Only what delivery owns: the SLA check may be updating the same row meanwhile.
    ticket.save(update_fields=[*DELIVERY_FIELDS, "external_id", "external_key", "external_url",
                               "sent_at"])  # fmt: skip
    return {"key": created.key, "id": created.id, "reconciled": created.reconciled}


DELIVERY_FIELDS = ["status", "attempts", "retry_metadata", "error", "updated_at"]


def _record_attempts(ticket: Ticket, log: CallLog, *, error: Exception | None = None) -> None:
    ticket.attempts += len(log.attempts)
    ticket.retry_metadata = [*ticket.retry_metadata, *log.as_list()][-50:]
    if error is not None:
        ticket.error = error.as_dict() if hasattr(error, "as_dict") else {"message": str(error)}
        if isinstance(error, UpstreamRejected | ValidationFailed):
            ticket.status = Ticket.Status.FAILED
        ticket.save(update_fields=DELIVERY_FIELDS)
