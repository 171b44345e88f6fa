"""Pages of the CI failure escalation matrix: the CI health overview, the failures and
escalations lists (the page kit, on the same FilterSets as the API), a failure's page with its
evidence, group, routing, notifications, SLA countdown and timeline, and the flaky tests.

Pages read models and call services for actions (DESIGN.md); every page updates live from the
``/ws/ci/`` socket (static/escalation/live.js) and works without JavaScript.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import OuterRef, Prefetch, Q, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import DetailView, TemplateView

from escalation.admin import duration_text  # the admin's matrix shows SLAs the same way
from escalation.catalog_forms import CatalogRequestForm
from escalation.errors import EscalationError
from escalation.filters import CatalogRequestFilterSet, EscalationFilterSet, FailureFilterSet
from escalation.models import (
    SEVERITY,
    ZERO_TOLERANCE_TYPES,
    Escalation,
    EscalationEvent,
    FailureEvent,
    FailureType,
    Notification,
    OverridePolicy,
    OverrideRequest,
    RoutingRule,
    SlaRecord,
)
from escalation.services import (
    catalog,
    daily_reports,
    ingest,
    overrides,
    recovery,
    reports,
    routing,
    sla,
    weekly_reports,
)
from portal.pages import Column, FilteredListView
from portal.roles import (
    OPERATORS,
    QA,
    QARequiredMixin,
    RoleRequiredMixin,
    user_has_any_role,
    user_has_role,
)


class TriageRequiredMixin(RoleRequiredMixin):
    """Operators (on call) and QA both triage CI failures."""

    required_roles = (OPERATORS, QA)


def sla_view(record: SlaRecord | None, now=None) -> dict[str, Any] | None:
    """What a page shows of an SLA record: state, deadline, seconds left, urgent under an hour."""
    if record is None:
        return None
    remaining = sla.remaining_seconds(record, now) if record.status == "active" else None
    return {
        "record": record,
        "status": record.status,
        "deadline": record.deadline,
        "remaining": remaining,
        "urgent": remaining is not None and remaining < 3600,
        "overdue": remaining is not None and remaining <= 0,
    }


class CiHealthView(TriageRequiredMixin, TemplateView):
    """The seed's CI health dashboard: open escalations by category with an urgent marker, and
    the SLA list (most urgent first) with its countdown, owner, details and override buttons."""

    template_name = "escalation/ci_health.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        open_escalations = list(
            Escalation.objects.filter(status=Escalation.Status.OPEN)
            .select_related("sla")
            .prefetch_related("teams")
            .annotate(
                latest_failure_id=Subquery(
                    FailureEvent.objects.filter(escalation=OuterRef("pk"))
                    .order_by("-created_at", "-id")
                    .values("id")[:1]
                )
            )
            .order_by("sla__deadline", "-last_seen_at")[:200]
        )
        latest = FailureEvent.objects.select_related("escalation").in_bulk(
            [e.latest_failure_id for e in open_escalations if e.latest_failure_id]
        )
        rows = []
        for escalation in open_escalations:
            failure = latest.get(escalation.latest_failure_id)
            rows.append(
                {
                    "escalation": escalation,
                    "sla": sla_view(sla.record_of(escalation), now),
                    "failure": failure,
                    # The button only where a request could succeed: never for zero tolerance.
                    "can_override": failure is not None
                    and overrides.policy_of(failure) != OverridePolicy.ZERO_TOLERANCE,
                }
            )
        context.update(
            categories=reports.open_by_category(now),
            rows=rows,
            open_count=len(rows),
            urgent_count=sum(1 for row in rows if row["sla"] and row["sla"]["urgent"]),
            # "Today" in the portal's time zone, as the overview's breaches today.
            failures_today=FailureEvent.objects.filter(
                created_at__gte=timezone.localtime(now).replace(
                    hour=0, minute=0, second=0, microsecond=0
                )
            ).count(),
        )
        return context


class FailureListView(TriageRequiredMixin, FilteredListView):
    template_name = "escalation/failure_list.html"
    context_object_name = "failures"
    queryset = FailureEvent.objects.select_related("escalation")
    filterset_class = FailureFilterSet
    default_ordering = ("-created_at", "-id")
    filter_bar_fields = ("q", "type", "status", "team", "since")
    columns = (
        Column("#", "id", numeric=True),
        Column("Repository", "repository"),
        Column("Job", "job"),
        Column("Type", "failure_type"),
        Column("Rule"),
        Column("Escalation", "escalation_id", numeric=True),
        Column("Status", "status"),
        Column("Reported", "created_at"),
    )


class EscalationListView(TriageRequiredMixin, FilteredListView):
    template_name = "escalation/escalation_list.html"
    context_object_name = "escalations"
    queryset = Escalation.objects.select_related("sla").prefetch_related("teams")
    filterset_class = EscalationFilterSet
    default_ordering = ("-last_seen_at", "-id")
    columns = (
        Column("#", "id", numeric=True),
        Column("Repository", "repository"),
        Column("Type", "failure_type"),
        Column("Priority", "priority"),
        Column("Occurrences", "occurrences", numeric=True),
        Column("Teams"),
        Column("Ticket"),
        Column("SLA", "sla__deadline"),
        Column("Last seen", "last_seen_at"),
    )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        for escalation in context["escalations"]:
            escalation.sla_view = sla_view(sla.record_of(escalation), now)
        return context


def escalation_context(escalation: Escalation) -> dict[str, Any]:
    return {
        "escalation": escalation,
        "sla": sla_view(sla.record_of(escalation)),
        "notifications": escalation.notifications.select_related("outbox_message"),
        "occurrences": escalation.failures.order_by("-created_at")[:50],
        # The escalation's own events and those of its failures (their classification).
        "events": EscalationEvent.objects.filter(
            Q(escalation=escalation) | Q(failure__escalation=escalation)
        )
        .select_related("actor", "failure")
        .order_by("at", "id"),
        "failure_types": FailureType.choices,
    }


class FailureDetailView(TriageRequiredMixin, DetailView):
    template_name = "escalation/failure_detail.html"
    context_object_name = "failure"
    queryset = FailureEvent.objects.select_related("escalation__sla", "escalation", "reported_by")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        failure = self.object
        if failure.escalation is not None:
            context.update(escalation_context(failure.escalation))
        context["failure_events"] = failure.events.select_related("actor").order_by("at", "id")
        context["failure_types"] = FailureType.choices
        context["override_policy"] = overrides.policy_of(failure)
        context["override_requests"] = failure.override_requests.select_related(
            "requested_by", "decided_by"
        )
        context["override_kinds"] = OverrideRequest.Kind.choices
        context["gate"] = overrides.gate(failure)
        context["can_decide_overrides"] = user_has_role(self.request.user, QA)
        return context


class EscalationDetailView(TriageRequiredMixin, DetailView):
    template_name = "escalation/escalation_detail.html"
    context_object_name = "escalation"
    queryset = Escalation.objects.select_related("sla").prefetch_related(
        "teams",
        Prefetch("notifications", queryset=Notification.objects.select_related("outbox_message")),
    )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(escalation_context(self.object))
        return context


class ReclassifyView(TriageRequiredMixin, View):
    """The failure page's reclassification form (POST, with CSRF)."""

    def post(self, request, pk: int):
        failure = get_object_or_404(FailureEvent.objects.select_related("escalation"), pk=pk)
        new_type = request.POST.get("failure_type", "")
        justification = request.POST.get("justification", "").strip()
        if new_type not in FailureType.values or len(justification) < 5:
            messages.error(
                request, "Choose a type and give a justification (5 characters or more)."
            )
            return redirect("escalation:failure-detail", pk=failure.pk)
        escalation = routing.reclassify_failure(
            failure, new_type, justification, actor=request.user
        )
        messages.success(
            request, f"Reclassified as {new_type}; it is now in escalation #{escalation.pk}."
        )
        return redirect("escalation:failure-detail", pk=failure.pk)


class OverrideRequestView(TriageRequiredMixin, View):
    """The failure page's override request form (POST, with CSRF)."""

    def post(self, request, pk: int):
        failure = get_object_or_404(FailureEvent.objects.select_related("escalation"), pk=pk)
        try:
            created = overrides.request_override(
                failure,
                request.POST.get("kind", OverrideRequest.Kind.HOTFIX),
                request.POST.get("justification", ""),
                request.user,
            )
        except EscalationError as refusal:
            messages.error(request, refusal.message)
        else:
            messages.success(
                request, f"Override #{created.pk} requested ({created.get_status_display()})."
            )
        return redirect(f"{failure_page(failure)}#override")


class OverrideDecisionView(QARequiredMixin, View):
    """QA's approve and deny buttons on the failure page (POST, with CSRF)."""

    decision = ""

    def post(self, request, pk: int):
        override = get_object_or_404(OverrideRequest.objects.select_related("failure"), pk=pk)
        decide = overrides.approve if self.decision == "approve" else overrides.deny
        try:
            decide(override, request.user, request.POST.get("reason", ""))
        except EscalationError as refusal:
            messages.error(request, refusal.message)
        else:
            messages.success(request, f"Override #{override.pk} {override.status}.")
        return redirect(f"{failure_page(override.failure)}#override")


def failure_page(failure: FailureEvent) -> str:
    return reverse("escalation:failure-detail", args=[failure.pk])


class ResolveView(TriageRequiredMixin, View):
    def post(self, request, pk: int):
        escalation = get_object_or_404(Escalation, pk=pk)
        reason = request.POST.get("reason", "").strip()
        if len(reason) < 3:
            messages.error(request, "Say why it is resolved (3 characters or more).")
        elif sla.resolve(escalation, reason, actor=request.user):
            messages.success(request, f"Escalation #{escalation.pk} resolved.")
        else:
            messages.info(request, f"Escalation #{escalation.pk} was already resolved.")
        return redirect("escalation:escalation-detail", pk=escalation.pk)


class FlakyTestsView(TriageRequiredMixin, TemplateView):
    template_name = "escalation/flaky_tests.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        repository = self.request.GET.get("repository", "").strip()
        context["repository"] = repository
        context["tests"] = ingest.flaky_tests(repository or None)
        return context


# What the help page's SLA table says of each override policy (the seed's "Override Allowed?").
OVERRIDE_ALLOWED = {
    OverridePolicy.ZERO_TOLERANCE: ("never", "Never: zero tolerance, the failure must be fixed"),
    OverridePolicy.INFRASTRUCTURE_CONFIRMED: (
        "yes",
        "With a confirmed infrastructure issue (auto-approved once confirmed)",
    ),
    OverridePolicy.HOTFIX_APPROVAL: ("yes", "With hotfix approval by QA"),
    OverridePolicy.QA_APPROVAL: ("yes", "With QA's approval"),
}


class HelpView(RoleRequiredMixin, TemplateView):
    """The seed's training material for this portal: the quick reference card, the SLA table
    (read from the routing matrix, so it says what the portal does), the override process and
    the troubleshooting guide. Any logged-in user may read it."""

    template_name = "escalation/help.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rules = RoutingRule.objects.prefetch_related("teams")
        rows = []
        for rule in rules:
            policy = overrides.effective_policy(rule.failure_type, rule.override_policy)
            allowed, allowed_text = OVERRIDE_ALLOWED.get(policy, ("yes", policy))
            rows.append(
                {
                    "failure_type": rule.failure_type,
                    "label": rule.get_failure_type_display(),
                    "sla_minutes": rule.sla_minutes,
                    "sla": duration_text(rule.sla_minutes),
                    "urgent": rule.sla_minutes <= 60,
                    "priority": rule.priority,
                    "teams": [team.name for team in rule.teams.all()],
                    "notify_author": rule.notify_author,
                    "policy": policy,
                    "allowed": allowed,
                    "allowed_text": allowed_text,
                    "recovery": rule.get_recovery_action_display()
                    if rule.recovery_action != "none"
                    else "",
                }
            )
        rows.sort(key=lambda row: (row["sla_minutes"], -SEVERITY.get(row["failure_type"], 0)))
        user = self.request.user
        context.update(
            sla_rows=rows,
            can_triage=user_has_any_role(user, TriageRequiredMixin.required_roles),
            is_qa=user_has_role(user, QA),
            can_confirm=overrides.may_confirm_infrastructure(user),
            approval_wait=int(overrides.APPROVAL_WAIT.total_seconds() // 60),
            max_attempts=recovery.max_attempts(),
            rerun_timeout=int(recovery.rerun_timeout().total_seconds() // 60),
            zero_tolerance=sorted(ZERO_TOLERANCE_TYPES),
        )
        return context


# --- Reports (issue 10): the daily metrics and the weekly pattern analysis, with charts --------
def report_day(value: str) -> date:
    """A page's date from its URL (YYYY-MM-DD, routed by pattern), or 404."""
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise Http404("Not a date.") from exc


def bar_chart(label: str, labels: list, data: list, *, horizontal: bool = False) -> dict:
    """A chart as static/escalation/reports.js draws it (Chart.js), sent with json_script."""
    return {
        "type": "bar",
        "labels": [str(item) for item in labels],
        "datasets": [{"label": label, "data": data}],
        "horizontal": horizontal,
    }


TYPE_LABELS = dict(FailureType.choices)


class ReportsIndexView(TriageRequiredMixin, TemplateView):
    """The recent days and weeks, and a date to open."""

    template_name = "escalation/reports_index.html"

    def get(self, request, *args, **kwargs):
        picked = request.GET.get("date", "").strip()
        if picked:
            kind = "weekly" if request.GET.get("kind") == "weekly" else "daily"
            try:
                day = date.fromisoformat(picked)
                daily_reports.check_report_date(day)
            except (ValueError, EscalationError) as problem:
                messages.error(request, getattr(problem, "message", "Give a date as YYYY-MM-DD."))
            else:
                return redirect(f"escalation:report-{kind}", day=day.isoformat())
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        yesterday = reports.local_today() - timedelta(days=1)
        context.update(
            days=daily_reports.recent_reports(14),
            weeks=[yesterday - timedelta(days=7 * n) for n in range(4)],
            yesterday=yesterday,
        )
        return context


class DailyReportPageView(TriageRequiredMixin, TemplateView):
    template_name = "escalation/reports_daily.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        day = report_day(self.kwargs["day"])
        try:
            report = daily_reports.daily_report(day)
        except EscalationError as exc:
            raise Http404(exc.message) from exc
        metrics = report.metrics
        compliance = metrics["sla_compliance"]
        by_type = metrics["failure_distribution"]["by_type"]
        teams = metrics["team_performance"]["by_team"]
        today = reports.local_today()
        context.update(
            report=report,
            metrics=metrics,
            day=day,
            previous_day=day - timedelta(days=1),
            next_day=day + timedelta(days=1) if day < today else None,
            by_type=[(TYPE_LABELS.get(name, name), count) for name, count in by_type.items()],
            csv_url=f"{reverse('api:ci-report-daily')}?date={day.isoformat()}&format=csv",
            charts={
                "sla": bar_chart(
                    "SLA records",
                    ["Within SLA", "Missed", "Still running"],
                    [compliance["sla_hits"], compliance["sla_misses"], compliance["sla_pending"]],
                ),
                "distribution": bar_chart(
                    "Failures (SLA records started)",
                    [TYPE_LABELS.get(name, name) for name in by_type],
                    list(by_type.values()),
                    horizontal=True,
                ),
                "teams": bar_chart(
                    "Average resolution time (hours)",
                    [row["team"] for row in teams],
                    [row["avg_resolution_time_hours"] for row in teams],
                    horizontal=True,
                ),
            },
        )
        return context


class WeeklyReportPageView(TriageRequiredMixin, TemplateView):
    template_name = "escalation/reports_weekly.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        day = report_day(self.kwargs["day"])
        try:
            analysis = weekly_reports.analyze_weekly_patterns(day)
        except EscalationError as exc:
            raise Http404(exc.message) from exc
        today = reports.local_today()
        context.update(
            analysis=analysis,
            day=day,
            previous_week=day - timedelta(days=7),
            next_week=day + timedelta(days=7) if day + timedelta(days=7) <= today else None,
            csv_url=f"{reverse('api:ci-report-weekly')}?date={day.isoformat()}&format=csv",
            charts={
                "misses-by-hour": bar_chart(
                    "SLA misses by the hour their SLA started",
                    [f"{row['hour']:02d}:00" for row in analysis["sla_misses_by_hour"]],
                    [row["misses"] for row in analysis["sla_misses_by_hour"]],
                ),
                "types": bar_chart(
                    "Failures",
                    [
                        TYPE_LABELS.get(r["failure_type"], r["failure_type"])
                        for r in analysis["most_common_types"]
                    ],
                    [r["count"] for r in analysis["most_common_types"]],
                    horizontal=True,
                ),
                "daily": {
                    "type": "bar",
                    "labels": [row["date"] for row in analysis["daily"]],
                    "datasets": [
                        {"label": "Failures", "data": [r["failures"] for r in analysis["daily"]]},
                        {
                            "label": "SLA misses",
                            "data": [r["sla_misses"] for r in analysis["daily"]],
                        },
                    ],
                    "horizontal": False,
                },
            },
        )
        return context


# --- The service catalog's pages (seed 000): requests, a request's timeline, a new request -----


class CatalogRequestListView(RoleRequiredMixin, FilteredListView):
    """Requests, newest first: one's own, or every request for operators."""

    template_name = "escalation/requests_list.html"
    context_object_name = "requests"
    filterset_class = CatalogRequestFilterSet
    default_ordering = ("-created_at",)
    columns = (
        Column("Request"),
        Column("Catalog item", "catalog_item_id"),
        Column("Requested by", "user_id"),
        Column("Status", "status"),
        Column("Escalation ticket", "escalation_ticket_id"),
        Column("Submitted", "created_at"),
    )

    def get_queryset(self):
        self.queryset = catalog.visible_requests(self.request.user)
        return super().get_queryset()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["sees_all"] = catalog.can_see_all(self.request.user)
        return context


class CatalogRequestDetailView(RoleRequiredMixin, DetailView):
    """A request's component timeline, its partial-state inventory and its escalation ticket."""

    template_name = "escalation/requests_detail.html"
    context_object_name = "catalog_request"

    def get_queryset(self):
        return catalog.visible_requests(self.request.user).select_related(
            "fulfillment__outbox_message"
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["details"] = catalog.escalation_details(self.object)
        # Pairs made here: in the template, request_data.items would read a key named "items".
        context["request_data_rows"] = list((self.object.request_data or {}).items())
        return context


class CatalogRequestNewView(RoleRequiredMixin, TemplateView):
    """Pick a catalog item (``?item=name``), fill in its inputs, submit: the request is queued."""

    template_name = "escalation/requests_new.html"

    def form(self, data=None) -> CatalogRequestForm:
        items = list(catalog.active_items())
        wanted = (data or self.request.GET).get("item", "")
        selected = next((item for item in items if item.name == wanted), None)
        if selected is None and items:
            selected = items[0]
        return CatalogRequestForm(data, items=items, selected=selected)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", self.form())
        return context

    def post(self, request, *args, **kwargs):
        form = self.form(request.POST)
        if form.is_valid():
            try:
                created = catalog.submit(
                    request.user, form.cleaned_data["item"], form.data_of_request()
                )
            except forms.ValidationError as exc:
                form.add_error(None, exc)
            except EscalationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request, f"Request {created.pk} submitted; it runs in the background."
                )
                return redirect("escalation:request-detail", pk=created.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)
