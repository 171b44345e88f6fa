"""Pages of the itsm app (seed 003 US-3): a ticket from a template with its live preview, and the
ticket records.

The pages are thin adapters over ``itsm.services.tickets``: the preview, the dry run and the
create are the same calls the API makes, so a page and ``/api/v1/tickets/...`` never disagree.
Everything works without JavaScript (the form posts here); ``static/itsm/new_ticket.js`` only
makes the preview live while typing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import DetailView

from itsm.config import TICKET_PLATFORMS
from itsm.errors import NotConfigured, TemplateError, ValidationFailed
from itsm.filters import TicketFilterSet
from itsm.models import Platform, Ticket
from itsm.services import sla
from itsm.services import tickets as ticket_service
from itsm.templates import TemplateInfo, list_templates, variables_by_field, variables_in_order
from itsm.validation import ANY_ISSUE_TYPE, SCHEMAS
from portal.pages import Column, FilteredListView
from portal.roles import OperatorRequiredMixin

PLATFORM_LABELS = {value: str(Platform(value).label) for value in TICKET_PLATFORMS}
# Listed in this order in the dropdown (the seed's order: ServiceNow first).
PLATFORM_ORDER = ("servicenow", "jira")
# Variables that usually hold paragraphs: a textarea instead of a one-line input.
LONG_VARIABLE_WORDS = {"details", "description", "body", "notes", "steps", "log", "message"}
JOB_ID_MAX_LENGTH = Ticket._meta.get_field("job_id").max_length
TICKETS_PER_PAGE = 50


# --- the new-ticket form ----------------------------------------------------------------------


def is_long_variable(name: str) -> bool:
    return any(word in LONG_VARIABLE_WORDS for word in name.lower().split("_"))


def suggested_values(info: TemplateInfo) -> dict[str, list[str]]:
    """Allowed values of a variable that fills a whole enum field alone (``"priority": "{priority}"``):
    offered as suggestions; the validation still decides."""
    rules = SCHEMAS.get((info.platform, ANY_ISSUE_TYPE), [])
    enums = {rule.name: rule.enum for rule in rules if rule.enum}
    suggestions: dict[str, list[str]] = {}
    for field_name, text in info.fields.items():
        variable = text[1:-1] if text.startswith("{") and text.endswith("}") else ""
        if info.engine == "format" and variable in info.variables and field_name in enums:
            suggestions[variable] = [str(value) for value in enums[field_name]]
    return suggestions


def _catalog_entry(info: TemplateInfo) -> dict[str, Any]:
    uses = variables_by_field(info)
    suggestions = suggested_values(info)
    return {
        "platform": info.platform,
        "name": info.name,
        "source": info.source,
        "description": info.description,
        "fields": list(info.fields),
        "defaults": info.defaults,
        "uses": uses,
        "variables": [
            {
                "name": name,
                "long": is_long_variable(name),
                "suggestions": suggestions.get(name, []),
            }
            for name in variables_in_order(info)
        ],
    }


def template_catalog(templates: list[TemplateInfo]) -> dict[str, Any]:
    """What the page's script needs to rebuild the form: embedded with ``json_script``."""
    return {
        "platforms": [{"value": p, "label": PLATFORM_LABELS[p]} for p in PLATFORM_ORDER],
        "templates": [_catalog_entry(info) for info in templates],
        "urls": {"preview": reverse("api:ticket-preview")},
    }


@dataclass
class VariableInput:
    name: str
    value: str
    long: bool
    used_in: list[str]
    suggestions: list[str]
    errors: list[str] = field(default_factory=list)  # about this input alone (it is missing)
    # Ticket fields this input feeds that have an error: the input is marked, and points at the
    # message under the field in the preview, rather than repeating it under every input.
    affects: list[str] = field(default_factory=list)

    @property
    def invalid(self) -> bool:
        return bool(self.errors or self.affects)

    @property
    def hint(self) -> str:
        parts = []
        if self.used_in:
            parts.append(f"Used in {', '.join(self.used_in)}")
        if self.suggestions:
            parts.append(f"one of {', '.join(self.suggestions)}")
        return "; ".join(parts)


@dataclass
class PreviewField:
    name: str
    value: str
    errors: list[str] = field(default_factory=list)


@dataclass
class Draft:
    """The form as submitted (or as a GET link prefills it), and what checking it found."""

    platform: str
    template: TemplateInfo | None
    templates: list[TemplateInfo]  # every template, all platforms
    job_id: str = ""
    values: dict[str, str] = field(default_factory=dict)
    job_id_errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    field_errors: list[dict[str, str]] = field(default_factory=list)
    general_errors: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def variables(self) -> dict[str, str]:
        """The values to render with: an empty input counts as not given."""
        return {name: value for name, value in self.values.items() if value != ""}


def choose_template(
    platform: str | None, name: str | None
) -> tuple[str, TemplateInfo | None, list[TemplateInfo]]:
    """The platform and template asked for, or the first that exists; unknown values fall back."""
    templates = list_templates()
    if platform not in TICKET_PLATFORMS:
        platform = next(
            (p for p in PLATFORM_ORDER if any(t.platform == p for t in templates)),
            PLATFORM_ORDER[0],
        )
    of_platform = [t for t in templates if t.platform == platform]
    chosen = next(
        (t for t in of_platform if t.name == name), of_platform[0] if of_platform else None
    )
    return platform, chosen, templates


def read_draft(data, *, template_key: str, strict: bool = False) -> Draft:
    """The draft in ``data``. A GET falls back to the first template; a submitted form (``strict``)
    must name one that exists, or nothing is rendered: never a ticket from another template."""
    requested_platform, requested = data.get("platform"), data.get(template_key)
    platform, template, templates = choose_template(requested_platform, requested)
    unknown = strict and (
        platform != requested_platform or template is None or template.name != requested
    )
    if unknown:
        template = None
    values = {}
    if template is not None:
        for name in template.variables:
            # Browsers send a textarea's line breaks as CRLF; the API (and the script) send LF.
            values[name] = data.get(f"var_{name}", "").replace("\r\n", "\n")
    draft = Draft(
        platform=platform,
        template=template,
        templates=templates,
        job_id=data.get("job_id", "").strip(),
        values=values,
    )
    if unknown:
        draft.general_errors.append(
            f"There is no template {requested or '(none)'} for "
            f"{PLATFORM_LABELS.get(requested_platform or '', requested_platform or '(none)')}: "
            "choose one from the list."
        )
    return draft


def check_draft(draft: Draft) -> None:
    """Fills the draft's preview: rendered fields (placeholders for what is missing) and errors."""
    if draft.template is None:
        return
    result = ticket_service.preview(draft.platform, draft.template.name, draft.variables)
    draft.fields = result.fields
    draft.missing = result.missing
    draft.field_errors = result.errors


def record_failure(draft: Draft, exc: TemplateError | ValidationFailed) -> None:
    """What ``create_from_template`` refused, merged with the preview already on the draft."""
    if isinstance(exc, ValidationFailed):
        draft.field_errors = [error.as_dict() for error in exc.errors]
    elif exc.missing:
        draft.missing = sorted(set(draft.missing) | set(exc.missing))
    else:
        draft.general_errors.append(exc.message)


def form_context(draft: Draft, *, submitted: bool) -> dict[str, Any]:
    template = draft.template
    uses = variables_by_field(template) if template else {}
    suggestions = suggested_values(template) if template else {}
    rendered_fields = {name: PreviewField(name, value) for name, value in draft.fields.items()}
    inputs = {
        name: VariableInput(
            name=name,
            value=draft.values.get(name, ""),
            long=is_long_variable(name),
            used_in=[f for f, names in uses.items() if name in names],
            suggestions=suggestions.get(name, []),
        )
        for name in (variables_in_order(template) if template else [])
    }
    general_errors = list(draft.general_errors)
    if submitted:
        # Before the first submit an empty form is not an error; the preview lists what is needed.
        for name in draft.missing:
            message = f"{name} is required by this template"
            if name in inputs:
                inputs[name].errors.append(message)
            else:
                general_errors.append(message)
    for error in draft.field_errors:
        target = rendered_fields.get(error["field"])
        if target is None:
            general_errors.append(error["message"])
            continue
        # Each message once, under the field it is about; the inputs feeding it are only marked.
        if error["message"] not in target.errors:
            target.errors.append(error["message"])
        for name in uses.get(error["field"], []):
            if name in inputs and target.name not in inputs[name].affects:
                inputs[name].affects.append(target.name)
    # After a refused submit, focus starts on the first input to fix (no script needed).
    invalid = [f"var-{i.name}" for i in inputs.values() if i.invalid]
    focus_id = "job-id" if draft.job_id_errors else next(iter(invalid), "")
    # The status line counts exactly the messages the page shows, each once.
    problem_count = (
        len(draft.job_id_errors)
        + sum(len(i.errors) for i in inputs.values())
        + sum(len(f.errors) for f in rendered_fields.values())
        + len(general_errors)
    )
    return {
        "focus_id": focus_id,
        "platforms": [
            {"value": p, "label": PLATFORM_LABELS[p], "selected": p == draft.platform}
            for p in PLATFORM_ORDER
        ],
        "platform": draft.platform,
        "platform_label": PLATFORM_LABELS[draft.platform],
        "template": template,
        "platform_templates": [t for t in draft.templates if t.platform == draft.platform],
        "job_id": draft.job_id,
        "job_id_errors": draft.job_id_errors,
        "job_id_max_length": JOB_ID_MAX_LENGTH,
        "inputs": list(inputs.values()),
        "preview_fields": list(rendered_fields.values()),
        "missing": draft.missing,
        "general_errors": general_errors,
        "problem_count": problem_count,
        "submitted": submitted,
        "catalog": template_catalog(draft.templates),
    }


class NewTicketView(OperatorRequiredMixin, View):
    """The "New ticket from template" page: choose, fill in, preview, dry run, create."""

    template_name = "itsm/new_ticket.html"

    def get(self, request):
        # ?platform=&template= (the no-JavaScript "Show variables" button) may also prefill
        # job_id and var_<name>, so another page can link to a ready draft.
        draft = read_draft(request.GET, template_key="template")
        check_draft(draft)
        return render(request, self.template_name, form_context(draft, submitted=False))

    def post(self, request):
        draft = read_draft(request.POST, template_key="template_name", strict=True)
        if draft.template is None:
            return self.render_form(request, draft, status=422)
        check_draft(draft)
        if len(draft.job_id) > JOB_ID_MAX_LENGTH:
            draft.job_id_errors.append(f"job id is at most {JOB_ID_MAX_LENGTH} characters")
        if request.POST.get("action") == "create":
            return self.create(request, draft)
        return self.dry_run(request, draft)

    @staticmethod
    def submit(request, draft: Draft, *, dry_run: bool):
        return ticket_service.create_from_template(
            job_id=draft.job_id,
            platform=draft.platform,
            template_name=draft.template.name,
            variables=draft.variables,
            dry_run=dry_run,
            user=request.user,
        )

    def dry_run(self, request, draft: Draft):
        if draft.job_id_errors:
            return self.render_form(request, draft, status=422)
        try:
            ticket, _ = self.submit(request, draft, dry_run=True)
        except (TemplateError, ValidationFailed) as exc:
            record_failure(draft, exc)
            return self.render_form(request, draft, status=422)
        # The stored, redacted payload is what the worker sends: show exactly that.
        draft.fields, draft.missing, draft.field_errors = dict(ticket.fields), [], []
        existing = None
        if draft.job_id:
            existing = Ticket.objects.filter(idempotency_key=ticket.idempotency_key).first()
        return self.render_form(request, draft, dry_run_ok=True, existing=existing)

    def create(self, request, draft: Draft):
        if not draft.job_id:
            draft.job_id_errors.append("Enter the job id this ticket is about.")
        if draft.job_id_errors:
            return self.render_form(request, draft, status=422)
        try:
            ticket, created = self.submit(request, draft, dry_run=False)
        except NotConfigured as exc:
            draft.general_errors.append(f"{exc.message}.")
            return self.render_form(request, draft, status=503)
        except (TemplateError, ValidationFailed) as exc:
            record_failure(draft, exc)
            return self.render_form(request, draft, status=422)
        if created:
            messages.success(
                request,
                f"Ticket #{ticket.pk} recorded; the worker is sending it to "
                f"{PLATFORM_LABELS[ticket.platform]}.",
            )
        else:
            messages.info(
                request,
                f"A ticket for job {ticket.job_id} from {ticket.template_name} already exists: "
                f"#{ticket.pk}. Nothing new was created.",
            )
        return redirect("itsm:ticket-detail", pk=ticket.pk)

    def render_form(self, request, draft: Draft, *, status: int = 200, **extra):
        context = form_context(draft, submitted=True)
        context.update(extra)
        return render(request, self.template_name, context, status=status)


# --- ticket records ---------------------------------------------------------------------------


def web_link(url: str) -> str:
    """The platform's URL, only when it is a web address (never ``javascript:`` and the like)."""
    return url if url.startswith(("https://", "http://")) else ""


class TicketListView(OperatorRequiredMixin, FilteredListView):
    """The ticket records: the API's FilterSet, search, sortable columns, forgiving pages."""

    template_name = "itsm/ticket_list.html"
    context_object_name = "tickets"
    queryset = Ticket.objects.select_related("created_by")
    filterset_class = TicketFilterSet
    filter_bar_fields = [
        "q",
        "platform",
        "status",
        "sla_breached",
        "created_after",
        "created_before",
    ]
    paginate_by = TICKETS_PER_PAGE
    default_ordering = ("-created_at", "-id")
    columns = (
        Column("Record", "id"),
        Column("Platform", "platform"),
        Column("External key", "external_key"),
        Column("Job id", "job_id"),
        Column("Template", "template_name"),
        Column("Status", "status"),
        Column("Attempts", "attempts", numeric=True),
        Column("SLA due", "sla_due_at"),
        Column("SLA"),
        Column("Created", "created_at"),
    )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for ticket in context["tickets"]:
            ticket.sla_state = sla.state_of(ticket)
            ticket.link = web_link(ticket.external_url)
        return context


class TicketDetailView(OperatorRequiredMixin, DetailView):
    template_name = "itsm/ticket_detail.html"
    context_object_name = "ticket"

    def get_object(self, queryset=None):
        return get_object_or_404(Ticket.objects.select_related("created_by"), pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        ticket = self.object
        context["sla_state"] = sla.state_of(ticket)
        context["external_link"] = web_link(ticket.external_url)
        context["retries"] = [
            attempt for attempt in ticket.retry_metadata if isinstance(attempt, dict)
        ]
        context["error_items"] = sorted(
            (key, value) for key, value in (ticket.error or {}).items() if value not in ("", None)
        )
        context["platform_label"] = PLATFORM_LABELS.get(ticket.platform, ticket.platform)
        # What the platform receives (ServiceNow: impact and urgency, not a priority).
        context["sent_fields"] = {
            name: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            for name, value in ticket_service.sent_fields(ticket).items()
        }
        return context
