"""Admin of the exports app: sessions and tickets, and the export's records.

A session is added with the same form as the new-session page (the tickets as JSON, read by the
API's serializer and created by ``exports.services.sessions.create_session`` in one transaction);
its change page is read-only, with its tickets inline, and the actions "Start export" and "Retry
export" call the export's lifecycle service (``exports.services.lifecycle``), as the API does. A
ticket's editable fields (title, HTML, assignee, sprint, priority, labels) are saved through
``sessions.update_ticket``: the same rules, the same locks (not while exporting, not once in
Jira) and the audit trail. Manual fixes, orphaned issues and the audit trail are read-only.

Everything users or Jira wrote is shown escaped with its bidi controls made visible.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from exports.errors import ExportError
from exports.forms import SessionAdminForm
from exports.models import ExportEvent, ExportSession, ExportTicket, ManualFix, OrphanedIssue
from exports.services import lifecycle, sessions
from portal.admin import ReadOnlyAdmin
from portal.templatetags.portal import bidi_safe

# Selected sessions one action may start or retry at once.
MAX_ACTION_ROWS = 50


def shown(value: Any) -> SafeString:
    return bidi_safe("" if value is None else str(value))


def jira_link(ticket: ExportTicket) -> SafeString | str:
    if not ticket.jira_ticket_key:
        return "—"
    return format_html(
        '<a href="{}" rel="noopener noreferrer">{}</a>',
        ticket.jira_ticket_url,
        ticket.jira_ticket_key,
    )


class RecordAdmin(ReadOnlyAdmin):
    """Rows the export writes: read, never added, edited or deleted by hand."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class TicketInline(admin.TabularInline):
    model = ExportTicket
    fields = ["order", "ticket_link", "jira_export_status", "key"]
    readonly_fields = fields
    ordering = ["order"]
    extra = 0
    show_change_link = False
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Title")
    def ticket_link(self, ticket: ExportTicket) -> SafeString:
        url = reverse("admin:exports_exportticket_change", args=[ticket.pk])
        return format_html('<a href="{}">{}</a>', url, shown(ticket.title))

    @admin.display(description="Jira")
    def key(self, ticket: ExportTicket) -> SafeString | str:
        return jira_link(ticket)


@admin.register(ExportSession)
class ExportSessionAdmin(admin.ModelAdmin):
    list_display = [
        "shown_name",
        "jira_project_key",
        "status",
        "ticket_count",
        "export_retry_count",
        "created_by",
        "created_at",
    ]
    list_display_links = ["shown_name"]
    list_filter = ["status", "export_mode", "error_category"]
    search_fields = ["name", "jira_project_key"]
    date_hierarchy = "created_at"
    actions = ["start_export", "retry_export"]
    readonly_fields = [
        "shown_name", "jira_project_key", "status", "current_stage", "export_mode",
        "export_task_id", "export_started_at", "export_failed_at", "failed_at_ticket_order",
        "export_retry_count", "first_error_at", "completed_at", "error_category",
        "shown_error_message", "recovery_actions", "current_ticket_title",
        "dependencies_created", "processing_seconds", "created_by", "created_at",
    ]  # fmt: skip

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(ticket_count=Count("tickets"))
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = SessionAdminForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["jira_project_key", "name", "export_mode", "tickets"]
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return [] if obj is None else [TicketInline]

    def has_change_permission(self, request, obj=None) -> bool:
        # The change page shows the session; its fields change only through the export.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and (
            obj is None or obj.status != ExportSession.Status.EXPORTING
        )

    def save_model(self, request, obj, form, change) -> None:
        """A new session goes through the service: tickets, dependencies and audit together."""
        created = sessions.create_session(form.session_input, actor=request.user)
        obj.pk = created.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def view_on_site(self, obj: ExportSession) -> str:
        return reverse("exports:session-detail", args=[obj.pk])

    @admin.display(description="Name", ordering="name")
    def shown_name(self, session: ExportSession) -> SafeString:
        return shown(session.name)

    @admin.display(description="Tickets", ordering="ticket_count")
    def ticket_count(self, session: ExportSession) -> int:
        return session.ticket_count

    @admin.display(description="Error message")
    def shown_error_message(self, session: ExportSession) -> SafeString:
        return shown(session.error_message)

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm("exports.change_exportsession")

    @admin.action(description="Start exporting the selected sessions", permissions=["export"])
    def start_export(self, request, queryset):
        self._each(request, queryset, "Started", self._start)

    @admin.action(description="Retry the selected failed exports", permissions=["export"])
    def retry_export(self, request, queryset):
        self._each(request, queryset, "Retrying", self._retry)

    @staticmethod
    def _start(session: ExportSession, actor) -> str:
        result = lifecycle.start_export(session.pk, actor)
        return f"{session.name} ({'started' if result.started else 'already running'})"

    @staticmethod
    def _retry(session: ExportSession, actor) -> str:
        result = lifecycle.retry_export(session.pk, actor)
        return f"{session.name} (retry {result.retry_attempt}, from #{result.resuming_from_ticket_order})"

    def _each(self, request, queryset, verb: str, run) -> None:
        if queryset.count() > MAX_ACTION_ROWS:
            self.message_user(
                request, f"Select at most {MAX_ACTION_ROWS} sessions.", level=messages.ERROR
            )
            return
        done, refused = [], []
        for session in queryset.order_by("created_at"):
            try:
                done.append(run(session, request.user))
            except ExportError as refusal:
                refused.append(f"{session.name}: {refusal.message}")
        if done:
            self.message_user(request, f"{verb}: {'; '.join(done)}.")
        if refused:
            self.message_user(request, "Refused: " + "; ".join(refused), level=messages.ERROR)


class TicketAdminForm(forms.ModelForm):
    """A ticket's editable fields, checked by the service's rules before anything is saved."""

    class Meta:
        model = ExportTicket
        fields = list(sessions.EDITABLE_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.pk is not None:
            try:
                sessions.check_editable(self.instance)
            except ExportError as refusal:
                raise forms.ValidationError(refusal.message) from refusal
        changes = {name: cleaned[name] for name in self.changed_data if name in cleaned}
        for name, problem in sessions.field_problems(changes).items():
            self.add_error(name, problem)
        return cleaned


@admin.register(ExportTicket)
class ExportTicketAdmin(admin.ModelAdmin):
    form = TicketAdminForm
    list_display = ["order", "shown_title", "session_link", "jira_export_status", "key"]
    list_display_links = ["shown_title"]
    list_filter = ["jira_export_status"]
    search_fields = ["title", "jira_ticket_key", "session__name"]
    list_select_related = ["session"]
    fieldsets = [
        (None, {"fields": ["session_link", "order", *sessions.EDITABLE_FIELDS, "depends_on_list"]}),
        (
            "Export",
            {
                "fields": [
                    "jira_export_status", "key", "jira_issue_id", "exported_at", "attachment",
                    "attachment_uploaded", "error_message", "created_at", "updated_at",
                ]
            },
        ),
    ]  # fmt: skip
    readonly_fields = [
        "session_link", "order", "depends_on_list", "jira_export_status", "key",
        "jira_issue_id", "exported_at", "attachment", "attachment_uploaded", "error_message",
        "created_at", "updated_at",
    ]  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False  # tickets come with their session

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the audit trail and the Jira links point at them

    def save_model(self, request, obj, form, change) -> None:
        """Through the service: the rules, the locks and the audit trail."""
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        original = ExportTicket.objects.select_related("session").get(pk=obj.pk)
        sessions.update_ticket(original, changes, request.user)

    def view_on_site(self, obj: ExportTicket) -> str:
        return reverse("exports:ticket-review", args=[obj.session_id, obj.pk])

    @admin.display(description="Title", ordering="title")
    def shown_title(self, ticket: ExportTicket) -> SafeString:
        return shown(ticket.title)

    @admin.display(description="Session", ordering="session__name")
    def session_link(self, ticket: ExportTicket) -> SafeString:
        url = reverse("admin:exports_exportsession_change", args=[ticket.session_id])
        return format_html('<a href="{}">{}</a>', url, shown(ticket.session.name))

    @admin.display(description="Jira")
    def key(self, ticket: ExportTicket) -> SafeString | str:
        return jira_link(ticket)

    @admin.display(description="Depends on")
    def depends_on_list(self, ticket: ExportTicket) -> str:
        orders = sessions.dependencies_of(ticket.session).get(ticket.order, [])
        return ", ".join(f"#{order}" for order in orders) or "—"


@admin.register(ManualFix)
class ManualFixAdmin(RecordAdmin):
    list_display = ["ticket", "issue_type", "session", "created_at"]
    list_filter = ["issue_type"]
    list_select_related = ["ticket", "session"]
    search_fields = ["ticket__jira_ticket_key", "ticket__title", "session__name"]


@admin.register(OrphanedIssue)
class OrphanedIssueAdmin(RecordAdmin):
    list_display = ["jira_key", "session", "ticket", "created_at"]
    list_select_related = ["ticket", "session"]
    search_fields = ["jira_key", "session__name"]


@admin.register(ExportEvent)
class ExportEventAdmin(RecordAdmin):
    list_display = ["at", "kind", "session", "ticket", "from_status", "to_status", "actor"]
    list_filter = ["kind"]
    list_select_related = ["session", "ticket", "actor"]
    search_fields = ["session__name", "message"]
    date_hierarchy = "at"
