"""Pages of the exports app under ``/exports/``: the sessions list (the page kit, on the API's
FilterSet), a session's page with its tickets, a ticket's review page (edit the HTML, see the ADF
the export will send), and the new-session form.

Roles: operators and QA read; operators create sessions, edit tickets and upload attachments.
Pages read models and call ``exports.services`` for every change (DESIGN.md).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.views import View
from django.views.generic import DetailView, FormView, TemplateView

from exports.errors import ExportError
from exports.filters import SessionFilterSet
from exports.forms import AttachmentForm, NewSessionForm, TicketHtmlForm
from exports.models import ExportSession, ExportTicket
from exports.services import adf_checks, lifecycle, progress, sessions
from portal.pages import Column, FilteredListView
from portal.roles import OPERATORS, QA, OperatorRequiredMixin, RoleRequiredMixin, user_has_role
from portal.text import check_text


def refuse_invalid_text(request) -> str:
    """A message naming the form fields whose text portal.text refuses (NUL, lone surrogates,
    control characters), or "" when all is acceptable. The edge (portal.edge) already refuses
    URL-encoded forms; a multipart form (the browser sends one with a file input) is decoded by
    Django, so its fields are checked here, before a form could show the bad text back."""
    problems: dict[str, str] = {}
    for name, values in request.POST.lists():
        for value in values:
            if name not in problems and (problem := check_text(value)):
                problems[name] = f"the value {problem}"
    return "; ".join(f"{name}: {problem}" for name, problem in problems.items())


class SessionReaderMixin(RoleRequiredMixin):
    """Operators run exports; QA reviews the tickets and their ADF."""

    required_roles = (OPERATORS, QA)


class SessionListView(SessionReaderMixin, FilteredListView):
    template_name = "exports/session_list.html"
    context_object_name = "sessions"
    filterset_class = SessionFilterSet
    default_ordering = ("-created_at", "-id")
    columns = (
        Column("Name", "name"),
        Column("Project", "jira_project_key"),
        Column("Status", "status"),
        Column("Tickets", "ticket_count", numeric=True),
        Column("In Jira", "exported_count", numeric=True),
        Column("Created by"),
        Column("Created", "created_at"),
    )

    def get_queryset(self):
        self.queryset = sessions.sessions_with_counts()
        return super().get_queryset()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_edit"] = user_has_role(self.request.user, OPERATORS)
        return context


class SessionDetailView(SessionReaderMixin, DetailView):
    """A session: its state, its tickets in order with their dependencies and Jira keys."""

    template_name = "exports/session_detail.html"
    context_object_name = "session"

    def get_queryset(self):
        return sessions.sessions_with_counts()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        session = self.object
        depends = sessions.dependencies_of(session)
        tickets = list(session.tickets.order_by("order"))
        for ticket in tickets:
            ticket.depends_on_orders = depends.get(ticket.order, [])
        context.update(
            tickets=tickets,
            manual_fixes=session.manual_fixes.select_related("ticket"),
            can_edit=user_has_role(self.request.user, OPERATORS),
            # Retries are counted from the retry events; export_retry_count counts failures.
            retries_used=lifecycle.retries_used(session),
        )
        return context


class ExportPageView(SessionReaderMixin, DetailView):
    """A session's export page: start and retry (operators), the live progress (the progress
    socket, or the status endpoint while it is down), the failure panel and the results.

    The page renders nothing of the export itself: static/exports/export.js draws the state the
    socket and the API answer, starting from the same shapes embedded here (one renderer)."""

    template_name = "exports/export.html"
    context_object_name = "session"

    def get_queryset(self):
        return sessions.sessions_with_counts()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        session = self.object
        exported = session.status in (ExportSession.Status.COMPLETED,)
        failed = session.status == ExportSession.Status.EXPORT_FAILED
        context.update(
            can_operate=user_has_role(self.request.user, OPERATORS),
            export_config={
                "session_id": str(session.pk),
                "urls": {
                    "start": reverse("jira-export-session", args=[session.pk]),
                    "retry": reverse("jira-retry-failed", args=[session.pk]),
                    "status": reverse("jira-export-status", args=[session.pk]),
                    "results": reverse("jira-export-results", args=[session.pk]),
                    "socket": f"/api/jira/export/progress/{session.pk}",
                },
                "initial": progress.socket_message(session),
                "results": progress.results_response(session) if exported or failed else None,
                "orders": {
                    str(pk): order for pk, order in session.tickets.values_list("pk", "order")
                },
                "max_retries": ExportSession.MAX_RETRIES,
            },
        )
        return context


def ticket_of(session_pk, ticket_pk) -> ExportTicket:
    return get_object_or_404(
        ExportTicket.objects.select_related("session"), pk=ticket_pk, session_id=session_pk
    )


class TicketReviewView(SessionReaderMixin, TemplateView):
    """A ticket's review page: its HTML in an editor (operators), and the ADF the export will
    send, converted afresh: the document, a preview, its size and what was degraded."""

    template_name = "exports/ticket_review.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        ticket = ticket_of(kwargs["pk"], kwargs["ticket_pk"])
        form = kwargs.get("form") or TicketHtmlForm(
            initial={"description_html": ticket.description_html}
        )
        result = adf_checks.check_ticket_conversion(ticket)
        context.update(
            session=ticket.session,
            ticket=ticket,
            form=form,
            attachment_form=kwargs.get("attachment_form") or AttachmentForm(),
            result=result,
            preview=adf_preview(result.doc) if result.doc else "",
            can_edit=user_has_role(self.request.user, OPERATORS),
            attachment_limit=sessions.attachment_limit(),
            depends_on=sessions.dependencies_of(ticket.session).get(ticket.order, []),
        )
        return context

    def post(self, request, *args, **kwargs):
        """Saves the edited HTML (operators only; CSRF-protected like every form)."""
        if not user_has_role(request.user, OPERATORS):
            raise PermissionDenied("Editing tickets needs the operators role.")
        ticket = ticket_of(kwargs["pk"], kwargs["ticket_pk"])
        if problem := refuse_invalid_text(request):
            messages.error(request, f"Not saved: {problem}.")
            return self.render_to_response(self.get_context_data(**kwargs), status=400)
        form = TicketHtmlForm(request.POST)
        if form.is_valid():
            try:
                sessions.update_ticket_html(
                    ticket, form.cleaned_data["description_html"], actor=request.user
                )
            except ExportError as refusal:
                form.add_error(None, refusal.message)
            else:
                messages.success(request, f"Ticket #{ticket.order} saved.")
                return redirect(ticket_url(ticket))
        context = self.get_context_data(form=form, **kwargs)
        return self.render_to_response(context, status=400)


class TicketAttachmentView(OperatorRequiredMixin, View):
    """The review page's attachment upload (multipart, CSRF)."""

    def post(self, request, pk, ticket_pk):
        ticket = ticket_of(pk, ticket_pk)
        try:
            # A body declaring far more than the limit is refused before it is read.
            sessions.check_declared_upload(request.META.get("CONTENT_LENGTH"))
            form = AttachmentForm(request.POST, request.FILES)
            if not form.is_valid():
                raise ExportError("Choose a file to attach.")
            sessions.attach_file(ticket, form.cleaned_data["file"], actor=request.user)
        except ExportError as refusal:
            messages.error(request, refusal.message)
            view = TicketReviewView()
            view.setup(request, pk=pk, ticket_pk=ticket_pk)
            context = view.get_context_data(pk=pk, ticket_pk=ticket_pk)
            return view.render_to_response(context, status=refusal.http_status)
        messages.success(request, f"Attachment added to ticket #{ticket.order}.")
        return redirect(ticket_url(ticket))


def ticket_url(ticket: ExportTicket) -> str:
    return reverse("exports:ticket-review", args=[ticket.session_id, ticket.pk])


class NewSessionView(OperatorRequiredMixin, FormView):
    template_name = "exports/session_new.html"
    form_class = NewSessionForm

    def post(self, request, *args, **kwargs):
        if problem := refuse_invalid_text(request):
            messages.error(request, f"Not created: {problem}.")
            return self.render_to_response(self.get_context_data(), status=400)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            session = sessions.create_session(form.session_input, actor=self.request.user)
        except ExportError as refusal:
            form.add_error(None, refusal.message)
            for path, problem in refusal.fields().items():
                if path != "jira_project_key":
                    form.add_error("tickets", f"{path}: {problem}")
            return self.render_to_response(self.get_context_data(form=form), status=400)
        messages.success(
            self.request, f"Session created with {session.tickets.count()} tickets: review them."
        )
        return redirect("exports:session-detail", pk=session.pk)

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)


# --- a preview of ADF, for people ---------------------------------------------------------------

_BLOCKS = {
    "paragraph": "p",
    "bulletList": "ul",
    "orderedList": "ol",
    "listItem": "li",
    "blockquote": "blockquote",
    "table": "table",
    "tableRow": "tr",
    "tableHeader": "th",
    "tableCell": "td",
}
_MARKS = {
    "strong": "strong",
    "em": "em",
    "underline": "u",
    "strike": "s",
    "code": "code",
}
MAX_PREVIEW_NODES = 5000


def adf_preview(doc: dict[str, Any]) -> SafeString:
    """The ADF document as simple HTML: every text escaped, only tags chosen here (never the
    user's HTML), links only http(s)/mailto as the converter already ensured."""
    budget = [MAX_PREVIEW_NODES]

    def render(node: Any) -> SafeString:
        if not isinstance(node, dict) or budget[0] <= 0:
            return SafeString("")
        budget[0] -= 1
        kind = node.get("type")
        children = format_html_join("", "{}", ((render(c),) for c in node.get("content") or []))
        if kind == "text":
            html = format_html("{}", node.get("text", ""))
            for mark in node.get("marks") or []:
                tag = _MARKS.get(mark.get("type"))
                if tag:
                    html = format_html("<{}>{}</{}>", mark_safe(tag), html, mark_safe(tag))  # noqa: S308
                elif mark.get("type") == "link":
                    href = str((mark.get("attrs") or {}).get("href", ""))
                    if href.startswith(("http://", "https://", "mailto:")):
                        html = format_html(
                            '<a href="{}" rel="noopener noreferrer">{}</a>', href, html
                        )
                elif mark.get("type") in ("subsup",):
                    tag = "sup" if (mark.get("attrs") or {}).get("type") == "sup" else "sub"
                    html = format_html("<{}>{}</{}>", mark_safe(tag), html, mark_safe(tag))  # noqa: S308
            return html
        if kind == "hardBreak":
            return SafeString("<br>")
        if kind == "rule":
            return SafeString("<hr>")
        if kind == "heading":
            level = int((node.get("attrs") or {}).get("level", 1))
            tag = f"h{min(max(level, 1), 6)}"
            return format_html("<{}>{}</{}>", mark_safe(tag), children, mark_safe(tag))  # noqa: S308
        if kind == "codeBlock":
            return format_html("<pre><code>{}</code></pre>", children)
        if kind in _BLOCKS:
            tag = _BLOCKS[kind]
            return format_html("<{}>{}</{}>", mark_safe(tag), children, mark_safe(tag))  # noqa: S308
        if kind in ("mediaSingle", "mediaGroup", "media"):
            return format_html('<span class="muted">[image]</span>{}', children)
        return children

    return render(doc)


__all__ = [
    "ExportPageView",
    "NewSessionView",
    "SessionDetailView",
    "SessionListView",
    "TicketAttachmentView",
    "TicketReviewView",
    "adf_preview",
]
