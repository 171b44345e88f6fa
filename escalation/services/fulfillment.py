"""The multi-action fulfillment engine and its failure escalation (seed 000; docs/service.md).

:func:`fulfill` runs a request's components in order, in the worker. There is no automatic error
recovery: the first failure stops the request, the components after it are marked not run, and
the request escalates at once (:func:`escalate`): its status becomes ``escalated`` with the
escalation time, and a Jira ticket with the seed's configuration is queued through the itsm
outbox in the same transaction. Jira being down loses nothing: the outbox delivers the ticket
when Jira answers, and its key is written into ``escalation_ticket_id`` then.

Exactly once: a component is claimed (``pending`` -> ``running``, a conditional UPDATE) before
anything is called. A redelivered task skips what succeeded, and never runs a claimed component
again: a claim older than ``CATALOG_COMPONENT_LEASE_SECONDS`` belongs to a worker that died
mid-call, whose outcome is unknown, so it fails the request ("interrupted") and an operator looks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from escalation.models import ComponentExecution, Request, RequestFulfillment
from escalation.services import catalog_actions, catalog_templates, http_actions
from itsm import public
from portal.redaction import redact_text

logger = logging.getLogger("escalation.catalog")

ESCALATION_KIND = "catalog.escalation"
# Below Jira's 32,767 characters (and the portal's check of it) with room for the note.
MAX_DESCRIPTION = 32_000
Status = ComponentExecution.Status

# The seed's escalation ticket (docs/service.md, "Failure Escalation System"): the same shape as a
# catalog ``jira-ticket`` component, its templates translated from Handlebars to Jinja2 line for
# line (``{{#each components}}`` -> ``{% for component in components %}``, ``{{#if x}}`` ->
# ``{% if x %}``, ``{{join resources ", "}}`` -> ``resources | join(", ")``, ``{{json x}}`` ->
# ``x | json``).
ESCALATION_TICKET: dict[str, Any] = {
    "type": "jira-ticket",
    "config": {
        "ticket": {
            "project": "ORCHESTRATION",
            "issueType": "Incident",
            "priority": "High",
            "summaryTemplate": (
                "Bundle Orchestration Failure - {{ bundle.metadata.name }} ({{ request.id }})"
            ),
            "descriptionTemplate": """\
**Bundle Information**
Bundle: {{ bundle.metadata.name }} ({{ bundle.metadata.version }})
Request ID: {{ request.id }}
User: {{ request.user.email }}
Failure Time: {{ failure.timestamp }}

**Component Status**
{% for component in components %}
- {{ component.id }}: {{ component.status }}{% if component.resources %} (Resources: {{ component.resources | join(", ") }}){% endif +%}
{% endfor %}

**Error Details**
{{ failure.error }}

**Cleanup Required**
{% for component in components %}
{% if component.succeeded %}
- {{ component.id }}: {{ component.cleanup.instructions }}
{% endif %}
{% endfor %}

**Original Request Data**
```json
{{ request.data | json }}
```
""",
        }
    },
}


# --- dispatch ------------------------------------------------------------------------------------

Dispatcher = Callable[[str], None]
_dispatcher: Dispatcher | None = None


def set_dispatcher(dispatcher: Dispatcher | None) -> None:
    """``escalation.tasks`` hands submitted requests to the worker; unset, they run inline."""
    global _dispatcher
    _dispatcher = dispatcher


def queue(request_id: UUID | str) -> None:
    """Runs the request after the caller's transaction commits (in the worker when one is set)."""
    request_id = str(request_id)
    if _dispatcher is None:
        transaction.on_commit(lambda: fulfill(request_id))
    else:
        transaction.on_commit(lambda: _dispatcher(request_id), robust=True)


# A request still pending this long after it was submitted lost its task (the broker was down at
# commit): the leader's sweep queues it again.
PENDING_GRACE_SECONDS = 60
SWEEP_BATCH = 200


def sweep_stalled_requests(now: datetime | None = None) -> dict[str, int]:
    """The leader's minute job: queues again the requests whose task was lost, pending past
    ``PENDING_GRACE_SECONDS`` or running with no change for ``CATALOG_COMPONENT_LEASE_SECONDS``
    (the redelivered run fails an interrupted component instead of running it twice)."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.CATALOG_COMPONENT_LEASE_SECONDS)
    counts = {"pending": 0, "running": 0}
    stalled = [
        ("pending", Request.objects.filter(
            status=Request.Status.PENDING,
            updated_at__lte=now - timedelta(seconds=PENDING_GRACE_SECONDS),
        )),
        ("running", Request.objects.filter(
            status=Request.Status.RUNNING, updated_at__lte=now - lease
        )),
    ]  # fmt: skip
    for name, requests in stalled:
        for request in requests.order_by("updated_at")[:SWEEP_BATCH]:
            with transaction.atomic():
                # The conditional UPDATE is the sweep's claim: a second sweep skips it.
                taken = Request.objects.filter(
                    pk=request.pk, status=request.status, updated_at=request.updated_at
                ).update(updated_at=now)
                if taken:
                    queue(request.pk)
                    counts[name] += 1
    return counts


# --- contexts ------------------------------------------------------------------------------------


def user_view(username: str) -> dict[str, str]:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        return {"username": username, "email": "", "name": ""}
    return {"username": username, "email": user.email, "name": user.get_full_name()}


def bundle_view(fulfillment: RequestFulfillment) -> dict[str, Any]:
    return {
        "metadata": {"name": fulfillment.bundle_name, "version": fulfillment.bundle_version},
        "kind": fulfillment.bundle_kind,
    }


def variable_context(
    request: Request, fulfillment: RequestFulfillment, done: list[ComponentExecution]
) -> dict[str, Any]:
    """What a component's templates read (docs/service.md, "Variable System")."""
    return {
        "request": {
            "id": str(request.id),
            "data": request.request_data,
            "user": user_view(request.user_id),
        },
        "components": {
            execution.component_id: {
                "output": execution.output,
                "resources": execution.resources,
                "status": execution.status,
            }
            for execution in done
        },
        "bundle": bundle_view(fulfillment),
    }


# --- the engine ----------------------------------------------------------------------------------


def fulfill(request_id: UUID | str) -> str:
    """Runs the request's components in order; returns the request's status after.

    Safe to call twice (a redelivered task): finished requests are left alone, succeeded
    components are not run again, a claimed one never runs a second time.
    """
    now = timezone.now()
    Request.objects.filter(pk=request_id, status=Request.Status.PENDING).update(
        status=Request.Status.RUNNING, updated_at=now
    )
    request = Request.objects.select_related("fulfillment").get(pk=request_id)
    if request.status != Request.Status.RUNNING:
        return request.status
    fulfillment = request.fulfillment
    executions = list(request.executions.order_by("position"))
    done: list[ComponentExecution] = []
    for execution in executions:
        if execution.status == Status.SUCCEEDED:
            done.append(execution)
            continue
        if execution.status in (Status.FAILED, Status.NOT_RUN):
            # A failure recorded by a worker that died before escalating: escalate now.
            return escalate(request, execution, execution.error or "failed")
        if execution.status == Status.RUNNING:
            lease = timedelta(seconds=settings.CATALOG_COMPONENT_LEASE_SECONDS)
            if execution.started_at and timezone.now() - execution.started_at < lease:
                return request.status  # another worker is running it now
            message = (
                "interrupted: the worker running this component stopped before it finished; "
                "whether it took effect is unknown, so it is not run again"
            )
            if _finish(execution, Status.RUNNING, Status.FAILED, error=message):
                return escalate(request, execution, message)
            return Request.objects.get(pk=request.pk).status
        if not _claim(execution):
            return Request.objects.get(pk=request.pk).status  # claimed by another worker
        context = variable_context(request, fulfillment, done)
        try:
            result = run_component(request, execution, context)
        except Exception as exc:  # every failure stops the request and escalates it
            error = failure_text(exc)
            logger.warning(
                "catalog.component_failed: request %s component %s: %s",
                request.pk,
                execution.component_id,
                error,
                extra={"event": "catalog.component_failed", "request_id": str(request.pk)},
            )
            _finish(execution, Status.RUNNING, Status.FAILED, error=error)
            return escalate(request, execution, error)
        _finish(
            execution,
            Status.RUNNING,
            Status.SUCCEEDED,
            resources=result.resources,
            output=result.output,
        )
        execution.status, execution.resources, execution.output = (
            Status.SUCCEEDED,
            result.resources,
            result.output,
        )
        done.append(execution)
    finished = timezone.now()
    Request.objects.filter(pk=request.pk, status=Request.Status.RUNNING).update(
        status=Request.Status.COMPLETED, completed_at=finished, updated_at=finished
    )
    return Request.objects.get(pk=request.pk).status


def run_component(
    request: Request, execution: ComponentExecution, context: dict[str, Any]
) -> catalog_actions.ActionResult:
    config = catalog_templates.render_config(execution.config, context)
    return catalog_actions.run(
        execution.action_type,
        config,
        idempotency_key=f"catalog:{request.pk}:{execution.component_id}",
    )


def failure_text(exc: BaseException) -> str:
    """The error the request records and its requester reads, credentials masked (an
    http-request's URL may carry a key)."""
    return redact_text(_failure_text(exc))


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, catalog_templates.RenderFailed):
        return f"template error in {exc.path}: {exc.reason}"
    if isinstance(exc, http_actions.HttpActionRefused):
        return f"refused: {exc}"
    if isinstance(exc, public.ItsmError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _claim(execution: ComponentExecution) -> bool:
    now = timezone.now()
    claimed = ComponentExecution.objects.filter(pk=execution.pk, status=Status.PENDING).update(
        status=Status.RUNNING, started_at=now
    )
    execution.started_at = now
    return bool(claimed)


def _finish(execution: ComponentExecution, expected: str, status: str, **values: Any) -> bool:
    return bool(
        ComponentExecution.objects.filter(pk=execution.pk, status=expected).update(
            status=status, finished_at=timezone.now(), **values
        )
    )


# --- escalation ----------------------------------------------------------------------------------


def escalate(request: Request, failed: ComponentExecution, error: str) -> str:
    """Marks the request escalated now and queues the seed's Jira ticket through the outbox.

    One transaction: the status, the time, the failure and the outbox message commit together or
    not at all; the same request escalated twice queues one ticket (the outbox's key).
    """
    now = timezone.now()
    with transaction.atomic():
        request = Request.objects.select_for_update().get(pk=request.pk)
        if request.status == Request.Status.ESCALATED:
            return request.status
        request.executions.filter(position__gt=failed.position, status=Status.PENDING).update(
            status=Status.NOT_RUN
        )
        request.status = Request.Status.ESCALATED
        request.escalation_timestamp = now
        request.save(update_fields=["status", "escalation_timestamp", "updated_at"])
        fulfillment = request.fulfillment
        fulfillment.failed_component = failed.component_id
        fulfillment.error = error
        fulfillment.failed_at = now
        summary, description, fields = escalation_ticket(request, fulfillment)
        fulfillment.ticket_summary = summary[:255]
        fulfillment.ticket_description = description
        fulfillment.outbox_message = public.enqueue(
            ESCALATION_KIND,
            "jira",
            {"request_id": str(request.pk), "fields": fields},
            idempotency_key=f"catalog:{request.pk}:escalation",
        )
        fulfillment.save()
    logger.warning(
        "catalog.request_escalated: request %s (%s) failed at %s",
        request.pk,
        fulfillment.bundle_name,
        failed.component_id,
        extra={"event": "catalog.request_escalated", "request_id": str(request.pk)},
    )
    return Request.Status.ESCALATED


def escalation_context(request: Request, fulfillment: RequestFulfillment) -> dict[str, Any]:
    """What the seed's escalation templates read."""
    components = []
    for execution in request.executions.order_by("position"):
        components.append(
            {
                "id": execution.component_id,
                "action": execution.action_type,
                "status": execution.status,
                "resources": execution.resources,
                "succeeded": execution.status == Status.SUCCEEDED,
                "error": execution.error,
                "cleanup": {"instructions": execution.cleanup_instructions or "none given"},
            }
        )
    failed_at = fulfillment.failed_at or request.escalation_timestamp or timezone.now()
    return {
        "bundle": bundle_view(fulfillment),
        "request": {
            "id": str(request.pk),
            "data": request.request_data,
            "user": user_view(request.user_id),
        },
        "failure": {
            "timestamp": failed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "error": fulfillment.error,
            "component": fulfillment.failed_component,
        },
        "components": components,
    }


def escalation_ticket(
    request: Request, fulfillment: RequestFulfillment
) -> tuple[str, str, dict[str, Any]]:
    """The escalation ticket's summary, description and itsm Jira fields.

    The seed's project and issue type are mapped to the Jira instance by
    ``CATALOG_ESCALATION_JIRA_PROJECT`` and ``CATALOG_ESCALATION_JIRA_ISSUE_TYPE`` (docs/service.md).
    """
    context = escalation_context(request, fulfillment)
    config = catalog_templates.render_config(ESCALATION_TICKET["config"], context)
    fields = catalog_actions.jira_fields(config)
    fields["project"] = settings.CATALOG_ESCALATION_JIRA_PROJECT or fields["project"]
    fields["issue_type"] = settings.CATALOG_ESCALATION_JIRA_ISSUE_TYPE or fields["issue_type"]
    fields["labels"] = ["catalog-escalation", f"bundle-{fulfillment.bundle_name}"[:255]]
    description = fields.get("description", "")
    if len(description) > MAX_DESCRIPTION:
        # Large request data: Jira refuses a description over 32,767 characters, and a refused
        # ticket would leave the escalation without one. The page keeps everything.
        page = settings.PORTAL_BASE_URL + reverse("escalation:request-detail", args=[request.pk])
        note = f"\n\n(truncated: the full details are on the portal, {page})"
        fields["description"] = description = description[: MAX_DESCRIPTION - len(note)] + note
    return fields["summary"], description, fields


@public.outbox_handler(ESCALATION_KIND)
def deliver_escalation(message) -> dict[str, Any]:
    """Creates the escalation ticket in Jira (in the worker) and records its key on the request."""
    request = Request.objects.select_related("fulfillment").get(pk=message.payload["request_id"])
    if request.escalation_ticket_id:
        return {"key": request.escalation_ticket_id, "already": True}
    with public.client_for("jira") as client:
        created = client.create(
            message.payload["fields"],
            idempotency_key=message.idempotency_key,
            reconcile_first=public.is_redelivery(message),
        )
    Request.objects.filter(pk=request.pk).update(
        escalation_ticket_id=created.key[:50], updated_at=timezone.now()
    )
    RequestFulfillment.objects.filter(request=request).update(ticket_url=created.url)
    return {"key": created.key, "id": created.id, "url": created.url}
