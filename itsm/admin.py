"""Admin for the itsm app: templates edited by operators (US-3)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from itsm.errors import TemplateError
from itsm.models import OutboxMessage, Ticket, TicketTemplate
from itsm.templates import check_template, info_from_row, required_variables
from portal.templatetags.portal import visible_bidi


class TicketTemplateForm(forms.ModelForm):
    """Refuses a template that could not render (syntax, unsafe placeholders) before it is saved."""

    class Meta:
        model = TicketTemplate
        fields = ["platform", "name", "description", "engine", "fields", "is_active"]
        widgets = {"fields": forms.Textarea(attrs={"rows": 14, "cols": 100})}
        help_texts = {
            "fields": (
                'A JSON object of ticket field to template text, e.g. {"summary": "RCA Required: '
                '{job_name}"}. "format" templates use {variable} placeholders ({{ and }} for '
                "literal braces); Jinja2 templates run sandboxed, without include or import."
            )
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        platform, engine, fields = (cleaned.get(key) for key in ("platform", "engine", "fields"))
        # A field that failed its own validation already carries an error; check only what parsed.
        if platform and engine and "fields" not in self.errors:
            for message in check_template(platform, engine, fields):
                self.add_error("fields", message)
        return cleaned


@admin.register(TicketTemplate)
class TicketTemplateAdmin(admin.ModelAdmin):
    form = TicketTemplateForm
    list_display = ("platform", "name", "engine", "is_active", "updated_at")
    list_filter = ("platform", "engine", "is_active")
    search_fields = ("name", "description")
    readonly_fields = ("variables", "updated_at")

    @admin.display(description="Variables a caller must supply")
    def variables(self, obj: TicketTemplate) -> str:
        if obj.pk is None:
            return "-"
        try:
            return ", ".join(required_variables(info_from_row(obj))) or "(none)"
        except TemplateError as exc:
            return f"invalid: {exc.message}"


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    """Ticket records are written by the service and the worker; the admin reads them."""

    list_display = [
        "id", "platform", "shown_external_key", "status", "shown_job_id", "shown_template_name",
        "attempts", "sla_due_at", "sla_breached", "created_at",
    ]  # fmt: skip
    list_filter = ["platform", "status", "sla_breached", "template_name"]
    search_fields = ["external_key", "job_id", "idempotency_key"]
    date_hierarchy = "created_at"
    list_select_related = ["created_by"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Ticket._meta.fields]

    # User text with its bidi controls made visible (``evil<U+202E>exe.txt``), as on the pages.
    @admin.display(description="External key", ordering="external_key")
    def shown_external_key(self, ticket: Ticket) -> str:
        return visible_bidi(ticket.external_key)

    @admin.display(description="Job id", ordering="job_id")
    def shown_job_id(self, ticket: Ticket) -> str:
        return visible_bidi(ticket.job_id)

    @admin.display(description="Template", ordering="template_name")
    def shown_template_name(self, ticket: Ticket) -> str:
        return visible_bidi(ticket.template_name)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """What waits to leave the portal. "Deliver now" makes pending or dead messages due again."""

    list_display = [
        "id", "kind", "platform", "status", "attempts", "next_attempt_at", "created_at",
        "delivered_at",
    ]  # fmt: skip
    list_filter = ["status", "kind", "platform"]
    search_fields = ["idempotency_key", "last_error"]
    actions = ["deliver_now"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in OutboxMessage._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Deliver now (pending or dead messages)", permissions=["change"])
    def deliver_now(self, request, queryset) -> None:
        from itsm import outbox

        count = outbox.retry_now(list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} message(s) queued for delivery.")
