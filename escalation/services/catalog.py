"""The service catalog (seed 000): what can be requested, submitting a request, who sees which
requests, checking a bundle's components when it is saved, and the escalation details an
operator reads after a failure (docs/service.md).

The API, the pages and the admin all call these functions; none of them decides anything itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch, QuerySet

from escalation.errors import EscalationError
from escalation.models import (
    ActionType,
    CatalogBundle,
    CatalogComponent,
    ComponentExecution,
    Request,
    RequestFulfillment,
)
from escalation.services import catalog_actions, catalog_templates, fulfillment
from portal.redaction import redact
from portal.roles import OPERATORS, user_has_role
from portal.text import TooDeep, text_problems


class CatalogItemUnknown(EscalationError):
    http_status = 404
    code = "catalog_item_unknown"


class RequestDataInvalid(EscalationError):
    http_status = 400
    code = "invalid_request_data"

    def __init__(self, message: str, problems: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or {}

    def fields(self) -> dict[str, Any]:
        return {"request_data": [self.message], **self.problems}


# --- the catalog ---------------------------------------------------------------------------------


def active_items() -> QuerySet[CatalogBundle]:
    ordered = Prefetch("components", queryset=CatalogComponent.objects.order_by("position"))
    return CatalogBundle.objects.filter(active=True).prefetch_related(ordered).order_by("name")


def shown_config(config: Any) -> Any:
    """A component's configuration as every signed-in user reads it in the catalog: the
    credentials it carries (secret-named headers and keys, webhook URLs, keys in URLs) masked;
    they are for the worker only. The admin shows the configuration whole."""
    return redact(config)


def declared_inputs(bundle: CatalogBundle) -> list[dict[str, Any]]:
    """The bundle's inputs, each ``{"name", "label", "required", "help"}``, well formed."""
    inputs = []
    for raw in bundle.inputs or []:
        if isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, dict) or not raw.get("name"):
            continue
        name = str(raw["name"])
        inputs.append(
            {
                "name": name,
                "label": str(raw.get("label") or name.replace("_", " ").capitalize()),
                "required": bool(raw.get("required", True)),
                "help": str(raw.get("help") or ""),
            }
        )
    return inputs


# --- submitting ----------------------------------------------------------------------------------


def check_request_data(bundle: CatalogBundle, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise RequestDataInvalid("request_data must be a JSON object")
    try:
        problems = dict(text_problems(data))
    except TooDeep as exc:
        raise RequestDataInvalid(str(exc)) from exc
    if problems:  # before encoding: a lone surrogate cannot be encoded as UTF-8
        path, problem = next(iter(problems.items()))
        raise RequestDataInvalid(
            f"request_data.{path} {problem}",
            {f"request_data.{key}": [value] for key, value in problems.items()},
        )
    try:
        # allow_nan=False: NaN and Infinity are not JSON, and no JSON column stores them.
        encoded = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RequestDataInvalid(f"request_data is not JSON: {exc}") from exc
    limit = settings.CATALOG_MAX_REQUEST_DATA_BYTES
    if len(encoded.encode("utf-8")) > limit:
        raise RequestDataInvalid(f"request_data is larger than {limit:,} bytes")
    missing = [
        spec["name"]
        for spec in declared_inputs(bundle)
        if spec["required"] and data.get(spec["name"]) in (None, "", [], {})
    ]
    if missing:
        raise RequestDataInvalid(
            f"missing required input: {', '.join(missing)}",
            {f"request_data.{name}": ["This input is required."] for name in missing},
        )
    return data


def submit(user, catalog_item_id: str, request_data: Any) -> Request:
    """Records the request with a snapshot of its components and queues its fulfillment.

    The components are copied as they are now: editing the bundle later never changes a request
    already submitted.
    """
    bundle = active_items().filter(name=str(catalog_item_id)).first() if catalog_item_id else None
    if bundle is None:
        raise CatalogItemUnknown(f"no active catalog item {str(catalog_item_id)[:255]!r}")
    data = check_request_data(bundle, request_data)
    components = list(bundle.components.all())
    if not components:
        raise CatalogItemUnknown(f"catalog item {bundle.name!r} has no components")
    with transaction.atomic():
        request = Request.objects.create(
            catalog_item_id=bundle.name, user_id=user.get_username(), request_data=data
        )
        RequestFulfillment.objects.create(
            request=request,
            bundle_name=bundle.name,
            bundle_version=bundle.version,
            bundle_kind=bundle.kind,
        )
        ComponentExecution.objects.bulk_create(
            ComponentExecution(
                request=request,
                position=index,
                component_id=component.component_id,
                action_type=component.action_type,
                config=component.config,
                cleanup_instructions=component.cleanup_instructions,
            )
            for index, component in enumerate(components, start=1)
        )
        fulfillment.queue(request.pk)
    return request


# --- who sees what -------------------------------------------------------------------------------


def can_see_all(user) -> bool:
    """Operators (the Orchestration team among them) see every request; others their own."""
    return user_has_role(user, OPERATORS)


def visible_requests(user) -> QuerySet[Request]:
    requests = Request.objects.select_related("fulfillment")
    if can_see_all(user):
        return requests
    return requests.filter(user_id=user.get_username())


# --- checking a bundle when it is saved ---------------------------------------------------------


@dataclass(frozen=True)
class ComponentProblem:
    component_id: str
    field: str  # "config", "component_id", "action_type"
    message: str

    def __str__(self) -> str:
        return f"component {self.component_id}: {self.message}"


NO_COMPONENTS = "a catalog item or bundle needs at least one component"
BAD_ID = "use letters, digits and _ (templates read components.<id>)"


def component_problems(
    components: list[dict[str, Any]], inputs: list[str], kind: str
) -> list[ComponentProblem]:
    """Problems of a bundle's components in their order (each ``{"component_id",
    "action_type", "config"}`` and optionally ``"position"``): none at all, ids that templates
    cannot name, positions or ids repeated, templates that fail the sandbox's checks or read
    components that do not run before them, configurations missing what their action needs."""
    if not components:
        return [ComponentProblem("", "components", NO_COMPONENTS)]
    problems: list[ComponentProblem] = []
    positions: set[int] = set()
    for component in components:
        if not str(component["component_id"]).isidentifier():
            # Templates read it as components.<id>: a dash would be read as a minus.
            problems.append(ComponentProblem(component["component_id"], "component_id", BAD_ID))
        position = component.get("position")
        if position is not None:
            if position in positions:
                problems.append(
                    ComponentProblem(
                        component["component_id"], "position", "another component has this position"
                    )
                )
            positions.add(position)
    if kind == CatalogBundle.Kind.ITEM and len(components) > 1:
        problems.append(
            ComponentProblem(
                components[1]["component_id"], "component_id", "an item has one component"
            )
        )
    seen: list[str] = []
    for component in components:
        name = component["component_id"]
        if name in seen:
            problems.append(ComponentProblem(name, "component_id", "this id is used twice"))
        config = component.get("config")
        if not isinstance(config, dict):
            problems.append(ComponentProblem(name, "config", "config must be a JSON object"))
            seen.append(name)
            continue
        found = catalog_templates.config_problems(config, earlier=list(seen), inputs=inputs)
        problems.extend(ComponentProblem(name, "config", str(problem)) for problem in found)
        if not found and component["action_type"] in catalog_actions.SHAPES:
            sample = catalog_templates.sample_context(seen, inputs)
            try:
                rendered = catalog_templates.render_config(config, sample, sample=True)
                catalog_actions.SHAPES[component["action_type"]](rendered)
            except catalog_actions.ActionConfigError as exc:
                problems.append(ComponentProblem(name, "config", str(exc)))
            except catalog_templates.RenderFailed as exc:
                problems.append(ComponentProblem(name, "config", str(exc)))
        elif component["action_type"] not in ActionType.values:
            problems.append(ComponentProblem(name, "action_type", "unknown action type"))
        seen.append(name)
    return problems


# --- escalation details --------------------------------------------------------------------------


def escalation_details(request: Request) -> dict[str, Any]:
    """The partial-state inventory, the error, the ticket reference and the cleanup guidance."""
    fulfillment_row = request.fulfillment
    executions = list(request.executions.order_by("position"))
    message = fulfillment_row.outbox_message
    ticket_state = "not escalated"
    if request.escalation_ticket_id:
        ticket_state = "created"
    elif message is not None:
        ticket_state = {"pending": "queued", "dead": "refused", "delivered": "created"}.get(
            message.status, message.status
        )
    return {
        "request_id": str(request.pk),
        "status": request.status,
        "escalated_at": request.escalation_timestamp,
        "bundle": {
            "name": fulfillment_row.bundle_name,
            "version": fulfillment_row.bundle_version,
            "kind": fulfillment_row.bundle_kind,
        },
        "failed_component": fulfillment_row.failed_component,
        "error": fulfillment_row.error,
        "failed_at": fulfillment_row.failed_at,
        "ticket": {
            "id": request.escalation_ticket_id,
            "url": fulfillment_row.ticket_url,
            "state": ticket_state,
            "last_error": message.last_error
            if message is not None and ticket_state != "created"
            else "",
            "summary": fulfillment_row.ticket_summary,
        },
        "components": [
            {
                "id": execution.component_id,
                "position": execution.position,
                "action_type": execution.action_type,
                "status": execution.status,
                "resources": execution.resources,
                "error": execution.error,
                "started_at": execution.started_at,
                "finished_at": execution.finished_at,
            }
            for execution in executions
        ],
        "cleanup": [
            {
                "id": execution.component_id,
                "action_type": execution.action_type,
                "resources": execution.resources,
                "instructions": execution.cleanup_instructions or "none given",
            }
            for execution in executions
            if execution.status == ComponentExecution.Status.SUCCEEDED
        ],
        "request_data": request.request_data,
    }
