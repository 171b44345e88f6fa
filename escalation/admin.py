"""Admin of the CI failure escalation matrix (issue 9).

Two kinds of tables meet here. The configuration (classification rules, teams, the routing
matrix) is data that QA edits (DESIGN.md, "Config as data"); its forms refuse what the classifier
or the notifier could not use, and a rule can be tried on a sample log before it is saved. The
records (failures, escalations, SLA records, notifications, the timeline, webhook deliveries) are
written by the services and only read here; the two changes a person makes to them,
reclassifying a failure and resolving an escalation, are actions that ask for a justification on
an intermediate page and call the services (``routing.reclassify_failure``, ``sla.resolve``), so
the audit trail, the SLA and the notifications follow as from the API and the pages.

Everything a CI system, a user or an upstream platform wrote is shown escaped with its bidi
controls made visible (``portal``'s ``bidi_safe``).
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from escalation.errors import EscalationError, NotReclassifiable
from escalation.models import (
    PROTECTED_SEVERITY,
    SEVERITY,
    ZERO_TOLERANCE_TYPES,
    BackgroundJob,
    CatalogBundle,
    CatalogComponent,
    ClassificationRule,
    ComponentExecution,
    Escalation,
    EscalationEvent,
    FailureEvent,
    FailureType,
    Notification,
    OverridePolicy,
    OverrideRequest,
    RecoveryAttempt,
    Request,
    RequestFulfillment,
    RoutingRule,
    SlaRecord,
    Team,
    Tracker,
    WebhookDelivery,
)
from escalation.services import catalog, jobs, overrides, routing, sla
from escalation.services.classify import CompiledRule, classify, load_rules, pattern_problems
from portal.admin import ReadOnlyAdmin
from portal.templatetags.portal import bidi_safe
from portal.text import TooDeep, check_text, text_problems

# At most this many rows of a timeline or a notification list on one change page: an escalation
# that groups thousands of occurrences must still open quickly (the pages show the rest).
SHOWN_ROWS = 200
# Selected rows one action may change at once; each one is re-routed or resolved in turn.
MAX_ACTION_ROWS = 100
SAMPLE_LOG_MAX_CHARS = 1_000_000
SLACK_CHANNEL = re.compile(r"^#[a-z0-9][a-z0-9._-]{0,79}$")
# The one problem of ``pattern_problems`` that makes a rule slow, not wrong: saved, with a warning.
SLOW_PATTERN = "no literal word"


def shown(value: Any) -> SafeString:
    """User-supplied text as the admin shows it: escaped, bidi controls as ``<U+202E>``."""
    return bidi_safe("" if value is None else str(value))


def admin_link(model_name: str, pk: int | None, text: Any) -> SafeString | str:
    if pk is None:
        return "—"
    return format_html(
        '<a href="{}">{}</a>', reverse(f"admin:escalation_{model_name}_change", args=[pk]), text
    )


def text_problem_check(value: str) -> None:
    if problem := check_text(value):
        raise forms.ValidationError(f"This text {problem}.")


class CheckedTextForm(forms.ModelForm):
    """Refuses control characters and lone surrogates in any text field (portal.text's rule)."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            if isinstance(value, str) and (problem := check_text(value)):
                self.add_error(name, f"This text {problem}.")
        return cleaned


class BidiSafeTitleMixin:
    """The change page's subtitle is the object's name, often text from outside: made safe here,
    the breadcrumbs in templates/admin/escalation/change_form.html."""

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["subtitle"] = shown(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)


class ConfigurationAdmin(BidiSafeTitleMixin, admin.ModelAdmin):
    """Configuration edited by QA and admins (the roles' permissions decide who may)."""


class RecordAdmin(BidiSafeTitleMixin, ReadOnlyAdmin):
    """Rows the services write: read here, never added, edited or deleted by hand (the audit
    trail must stay whole). Changes go through the actions, which call the services.

    ``service_action`` names the action a change page offers as a button (``can_<action>`` in its
    template), allowed with the model's change permission.
    """

    service_action = ""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        """Every field a record admin shows is read-only: those of its fieldsets when it has them."""
        if self.fieldsets:
            return [name for _title, options in self.fieldsets for name in options["fields"]]
        return super().get_readonly_fields(request, obj)

    def may_run_service_action(self, request) -> bool:
        return request.user.has_perm(f"escalation.change_{self.model._meta.model_name}")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if self.service_action:
            extra_context = {
                **(extra_context or {}),
                f"can_{self.service_action}": self.may_run_service_action(request),
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
        return super().change_view(request, object_id, form_url, extra_context)


# --- intermediate pages of the actions -----------------------------------------------------------


def action_page(
    model_admin: admin.ModelAdmin,
    request,
    queryset: QuerySet,
    *,
    action: str,
    form: forms.Form,
    title: str,
    intro: str,
    submit: str,
) -> TemplateResponse:
    """The page between choosing an action and applying it: the selected rows and a form that
    posts back to the change list with the same selection (and a CSRF token)."""
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "intro": intro,
        "submit": submit,
        "action": action,
        "form": form,
        "rows": [{"pk": obj.pk, "text": shown(obj)} for obj in queryset],
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        "media": model_admin.media + form.media,
    }
    return TemplateResponse(request, "admin/escalation/action_confirmation.html", context)


def too_many(model_admin: admin.ModelAdmin, request, queryset: QuerySet) -> bool:
    if queryset.count() > MAX_ACTION_ROWS:
        model_admin.message_user(
            request,
            f"Select at most {MAX_ACTION_ROWS} rows for this action.",
            level=messages.ERROR,
        )
        return True
    return False


class ReclassifyForm(forms.Form):
    failure_type = forms.ChoiceField(label="New failure type", choices=FailureType.choices)
    justification = forms.CharField(
        min_length=5,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        validators=[text_problem_check],
        help_text="Why the classifier was wrong; kept in the timeline of the failure.",
    )


class ResolveForm(forms.Form):
    reason = forms.CharField(
        min_length=3,
        max_length=200,
        validators=[text_problem_check],
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="What fixed it (a commit, a ticket, a revert); kept in the timeline.",
    )


class SlaCorrectionForm(forms.Form):
    started_at = forms.DateTimeField(
        label="Correct start",
        help_text="When the SLA should have started, e.g. 2026-12-01 09:30 (UTC unless an offset "
        "is given). The deadline is recomputed from the escalation's SLA duration.",
    )
    reason = forms.CharField(
        min_length=5,
        max_length=500,
        validators=[text_problem_check],
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Why the timer was wrong; the owning teams are told.",
    )

    def clean_started_at(self):
        started_at = self.cleaned_data["started_at"]
        if started_at > timezone.now():
            raise forms.ValidationError("The SLA cannot start in the future.")
        return started_at


# --- configuration: classification rules ---------------------------------------------------------


@dataclass
class RuleTest:
    """What "Test this rule" found: whether the rule matches the sample on its own (and why
    not), and what the whole classifier decides with the rule as edited in place."""

    matched: bool
    evidence: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    decided_type: str = ""
    decided_rule: str = ""
    this_rule_decides: bool = False
    enabled: bool = True


def try_rule(
    rule: ClassificationRule, sample_log: str, exit_code: int | None, changed_files: list[str]
) -> RuleTest:
    """Runs the classifier on a sample with ``rule`` (unsaved edits included) alone, then with
    every enabled rule, the saved version of this one replaced by the edit."""
    candidate = CompiledRule.of(rule)
    alone = classify([sample_log], exit_code, changed_files, rules=[candidate])
    matched = alone.rule_name == candidate.name
    reasons = []
    if not matched:
        if rule.exit_code is not None and rule.exit_code != exit_code:
            shown_code = "no exit code" if exit_code is None else f"exit code {exit_code}"
            reasons.append(f"The sample has {shown_code}; the rule wants {rule.exit_code}.")
        if rule.changed_file_glob and not any(
            fnmatch.fnmatch(path, rule.changed_file_glob) for path in changed_files
        ):
            reasons.append(f"No changed file matches {rule.changed_file_glob}.")
        if rule.log_pattern and not reasons:
            reasons.append("No line of the sample log matches the pattern.")
        elif rule.log_pattern:
            reasons.append("The log pattern was not tried: another criterion already fails.")
    others = [compiled for compiled in load_rules() if compiled.id != rule.pk]
    if rule.enabled:
        others.append(candidate)
    # The classifier's own order: position, then id (a rule not saved yet would come last).
    others.sort(key=lambda compiled: (compiled.position, compiled.id or float("inf")))
    decided = classify([sample_log], exit_code, changed_files, rules=others)
    return RuleTest(
        matched=matched,
        evidence=[item.as_dict() for item in alone.evidence],
        reasons=reasons,
        decided_type=decided.failure_type,
        decided_rule=decided.rule_name,
        this_rule_decides=rule.enabled and matched and decided.rule_name == candidate.name,
        enabled=rule.enabled,
    )


class ClassificationRuleForm(CheckedTextForm):
    # Not stored: the sample "Test this rule" runs the rule on.
    sample_log = forms.CharField(
        required=False,
        strip=False,
        max_length=SAMPLE_LOG_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 10, "cols": 100, "spellcheck": "false"}),
        help_text="Paste a CI log (or its interesting part) to try the rule on.",
    )
    sample_exit_code = forms.IntegerField(required=False, label="Sample exit code")
    sample_changed_files = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 100}),
        help_text="One path a line.",
    )

    testing = False  # set by the admin when "Test this rule" was pressed
    rule_test: RuleTest | None = None
    pattern_warnings: list[str] = []

    class Meta:
        model = ClassificationRule
        fields = [
            "name",
            "failure_type",
            "position",
            "enabled",
            "exit_code",
            "log_pattern",
            "changed_file_glob",
            "description",
        ]
        widgets = {"log_pattern": forms.TextInput(attrs={"size": 100, "spellcheck": "false"})}

    def clean_log_pattern(self) -> str:
        pattern = self.cleaned_data.get("log_pattern", "")
        if not pattern:
            return pattern
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise forms.ValidationError(f"Not a valid regular expression: {exc}.") from exc
        except (RecursionError, OverflowError) as exc:
            raise forms.ValidationError("This regular expression is too complex.") from exc
        # A pattern that matches an empty line matches every log: the rule would take every
        # failure its other criteria let through.
        if compiled.search(""):
            raise forms.ValidationError(
                "This pattern matches an empty line, so it would match every log. "
                "Make it require some text."
            )
        # The classifier's own review of a pattern: a nested quantifier can stall a worker on
        # one long line and is refused; a pattern without a literal word is correct but makes
        # every line a candidate, so it is saved with a warning (docs/escalation-classification.md).
        problems = pattern_problems(pattern)
        refused = [problem for problem in problems if not problem.startswith(SLOW_PATTERN)]
        if refused:
            raise forms.ValidationError([f"This pattern has {problem}." for problem in refused])
        self.pattern_warnings = [problem for problem in problems if problem not in refused]
        return pattern

    def clean_sample_changed_files(self) -> list[str]:
        text = self.cleaned_data.get("sample_changed_files", "")
        return [line.strip() for line in text.splitlines() if line.strip()]

    def is_valid(self) -> bool:
        """When testing, the form is never "valid": the edit is tried, shown, and not saved."""
        valid = super().is_valid()
        if not self.testing:
            return valid
        if valid:
            data = self.cleaned_data
            self.rule_test = try_rule(
                self.instance,
                data.get("sample_log") or "",
                data.get("sample_exit_code"),
                data.get("sample_changed_files") or [],
            )
        return False


@admin.register(ClassificationRule)
class ClassificationRuleAdmin(ConfigurationAdmin):
    """The rules engine's table. Tried in position order; a protected finding (security, the
    zero-tolerance types) is never replaced by a milder match (docs/escalation-classification.md)."""

    form = ClassificationRuleForm
    list_display = [
        "position",
        "rule_name",
        "failure_type",
        "criteria",
        "protected",
        "enabled",
        "updated_at",
    ]
    list_display_links = ["rule_name"]
    list_editable = ["position", "enabled"]
    list_filter = ["failure_type", "enabled"]
    search_fields = ["name", "log_pattern", "changed_file_glob", "description"]
    ordering = ["position", "id"]
    list_per_page = 100
    readonly_fields = ["updated_at"]
    TEST_BUTTON = "_test_rule"

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ["name", "failure_type", "position", "enabled", "description"]}),
            (
                "Criteria",
                {
                    "description": (
                        "Set at least one. A rule matches when every criterion it sets matches; "
                        "the pattern is a Python regular expression searched in each log line, "
                        "ignoring case, after colour codes and CI timestamps are removed."
                    ),
                    "fields": ["exit_code", "log_pattern", "changed_file_glob"],
                },
            ),
        ]
        if obj is not None:
            fieldsets[0][1]["fields"] = [*fieldsets[0][1]["fields"], "updated_at"]
        may_edit = (
            self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        )
        if may_edit:
            fieldsets.append(
                (
                    "Test this rule",
                    {
                        "description": (
                            "Nothing is saved when you press “Test this rule”: the rule as edited "
                            "above is tried on the sample, alone and among every enabled rule."
                        ),
                        "fields": ["sample_log", "sample_exit_code", "sample_changed_files"],
                    },
                )
            )
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.testing = request.method == "POST" and self.TEST_BUTTON in request.POST
        return form

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        for warning in form.pattern_warnings:
            self.message_user(request, f"The log pattern has {warning}.", level=messages.WARNING)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["test_button"] = self.TEST_BUTTON
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Name", ordering="name")
    def rule_name(self, rule: ClassificationRule) -> SafeString:
        return shown(rule.name)

    @admin.display(description="Criteria")
    def criteria(self, rule: ClassificationRule) -> SafeString:
        parts = []
        if rule.exit_code is not None:
            parts.append(format_html("exit code <code>{}</code>", rule.exit_code))
        if rule.log_pattern:
            parts.append(format_html("log <code>{}</code>", shown(rule.log_pattern)))
        if rule.changed_file_glob:
            parts.append(format_html("files <code>{}</code>", shown(rule.changed_file_glob)))
        return format_html_join(" and ", "{}", ((part,) for part in parts)) or "—"

    @admin.display(description="Never downgraded", boolean=True)
    def protected(self, rule: ClassificationRule) -> bool:
        return SEVERITY.get(rule.failure_type, 0) >= PROTECTED_SEVERITY


# --- configuration: teams and the routing matrix -------------------------------------------------


class TeamForm(CheckedTextForm):
    slack_webhook_url = forms.URLField(
        required=False,
        max_length=300,
        assume_scheme="https",
        help_text="Empty: the portal's SLACK_WEBHOOK_URL.",
    )

    class Meta:
        model = Team
        fields = [
            "name",
            "display_name",
            "slack_channel",
            "slack_webhook_url",
            "oncall_handle",
            "tracker",
            "linear_team",
            "jira_project",
        ]

    def clean_slack_channel(self) -> str:
        channel = self.cleaned_data.get("slack_channel", "").strip()
        if channel and not SLACK_CHANNEL.match(channel):
            raise forms.ValidationError(
                "A Slack channel name: # then lower-case letters, digits, '-', '_' or '.', "
                "up to 80 characters."
            )
        return channel

    def clean_slack_webhook_url(self) -> str:
        url = self.cleaned_data.get("slack_webhook_url", "").strip()
        if url and not url.startswith("https://"):
            raise forms.ValidationError("A Slack webhook URL starts with https://.")
        return url

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("tracker") == Tracker.LINEAR and not cleaned.get("linear_team"):
            self.add_error("linear_team", "The team's tickets go to Linear: name its Linear team.")
        return cleaned


@admin.register(Team)
class TeamAdmin(ConfigurationAdmin):
    """Where each team is reached (the seed's notify-teams.sh table)."""

    form = TeamForm
    list_display = [
        "team_name",
        "shown_display_name",
        "slack_channel",
        "oncall_handle",
        "tracker",
        "linear_team",
        "jira_project",
    ]
    list_display_links = ["team_name"]
    list_filter = ["tracker"]
    search_fields = ["name", "display_name", "slack_channel", "oncall_handle"]

    @admin.display(description="Name", ordering="name")
    def team_name(self, team: Team) -> SafeString:
        return shown(team.name)

    @admin.display(description="Display name", ordering="display_name")
    def shown_display_name(self, team: Team) -> SafeString:
        return shown(team.display_name)


class RoutingRuleForm(CheckedTextForm):
    class Meta:
        model = RoutingRule
        fields = [
            "failure_type",
            "title",
            "priority",
            "sla_minutes",
            "teams",
            "ticket_team",
            "urgent",
            "notify_author",
            "override_policy",
            "recovery_action",
        ]
        widgets = {"teams": forms.CheckboxSelectMultiple}
        help_texts = {"sla_minutes": "Minutes from the first failure to the SLA deadline."}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # Zero tolerance is not data for these three: the seed never lets them be overridden.
        if cleaned.get("failure_type") in ZERO_TOLERANCE_TYPES and (
            cleaned.get("override_policy") != OverridePolicy.ZERO_TOLERANCE
        ):
            self.add_error(
                "override_policy",
                f"{cleaned['failure_type']} is zero tolerance; its overrides cannot be allowed.",
            )
        return cleaned

    def clean_sla_minutes(self) -> int:
        minutes = self.cleaned_data["sla_minutes"]
        if minutes < 1:
            raise forms.ValidationError("An SLA of at least one minute.")
        if minutes > 30 * 24 * 60:
            raise forms.ValidationError("An SLA of at most 30 days.")
        return minutes


@admin.register(RoutingRule)
class RoutingRuleAdmin(ConfigurationAdmin):
    """The routing matrix: one row a failure type. Escalations snapshot their row when they open,
    so an edit applies to escalations opened from then on (a reclassification re-routes)."""

    form = RoutingRuleForm
    list_display = [
        "failure_type",
        "shown_title",
        "owning_teams",
        "priority",
        "sla",
        "urgent",
        "notify_author",
        "override_policy",
        "recovery_action",
    ]
    list_display_links = ["failure_type"]
    list_filter = ["priority", "override_policy", "recovery_action"]
    search_fields = ["failure_type", "title"]
    fieldsets = [
        (
            None,
            {
                "description": (
                    "Running escalations keep the routing they opened with; this row applies to "
                    "escalations opened after it is saved."
                ),
                "fields": ["failure_type", "title", "priority", "sla_minutes"],
            },
        ),
        ("Owners", {"fields": ["teams", "ticket_team", "urgent", "notify_author"]}),
        ("Policies", {"fields": ["override_policy", "recovery_action"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("teams")

    @admin.display(description="Title", ordering="title")
    def shown_title(self, rule: RoutingRule) -> SafeString:
        return shown(rule.title)

    @admin.display(description="Teams")
    def owning_teams(self, rule: RoutingRule) -> SafeString:
        return shown(", ".join(team.name for team in rule.teams.all()))

    @admin.display(description="SLA", ordering="sla_minutes")
    def sla(self, rule: RoutingRule) -> str:
        return duration_text(rule.sla_minutes)


def duration_text(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" if not rest else f"{hours} h {rest} min"


# --- records: failures -------------------------------------------------------------------------


def timeline_table(events) -> SafeString:
    rows = format_html_join(
        "",
        '<tr><td class="nowrap">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>',
        (
            (
                timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M:%S %Z"),
                event.kind,
                shown(event.message),
                shown(event.actor.get_username()) if event.actor else "—",
            )
            for event in events
        ),
    )
    if not rows:
        return format_html('<span class="muted">{}</span>', "Nothing recorded.")
    return format_html(
        '<table class="escalation-timeline"><thead><tr><th>At</th><th>Event</th><th>What</th>'
        "<th>By</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


@admin.register(FailureEvent)
class FailureEventAdmin(RecordAdmin):
    """Failed CI jobs as reported, with their classification and evidence. "Reclassify" corrects
    the type (re-routed, the SLA adjusted, audited), as the failure page and the API do."""

    service_action = "reclassify"

    list_display = [
        "id",
        "shown_repository",
        "shown_job",
        "failure_type",
        "shown_rule",
        "escalation_link",
        "status",
        "source",
        "created_at",
    ]
    list_display_links = ["id"]
    list_filter = ["failure_type", "status", "source"]
    search_fields = ["repository", "job", "run_id", "commit", "author", "rule_name"]
    date_hierarchy = "created_at"
    actions = ["reclassify"]
    fieldsets = [
        (
            "The job",
            {
                "fields": [
                    "shown_repository",
                    "shown_pr",
                    "shown_commit",
                    "shown_workflow",
                    "shown_job",
                    "run",
                    "exit_code",
                    "shown_author",
                    "shown_changed_files",
                    "source",
                    "shown_job_url",
                    "reported_by",
                    "created_at",
                ]
            },
        ),
        (
            "Classification",
            {
                "fields": [
                    "failure_type",
                    "shown_rule",
                    "shown_evidence",
                    "shown_excerpt",
                    "log_size",
                    "shown_signature",
                    "shown_failing_tests",
                    "fingerprint",
                ]
            },
        ),
        ("Escalation", {"fields": ["escalation_link", "status", "failure_timeline"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("reported_by")

    def view_on_site(self, obj: FailureEvent) -> str:
        return reverse("escalation:failure-detail", args=[obj.pk])

    def has_reclassify_permission(self, request) -> bool:
        return self.may_run_service_action(request)

    @admin.action(description="Reclassify the selected failures…", permissions=["reclassify"])
    def reclassify(self, request, queryset):
        if too_many(self, request, queryset):
            return None
        form = ReclassifyForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return action_page(
                self, request, queryset, action="reclassify", form=form,
                title="Reclassify failures",
                intro=(
                    "Each failure gets the new type: it leaves its escalation for the open "
                    "escalation of its new fingerprint (or a new one, routed and notified for the "
                    "new type), and the justification is kept in the timeline."
                ),
                submit="Reclassify",
            )  # fmt: skip
        new_type = form.cleaned_data["failure_type"]
        justification = form.cleaned_data["justification"]
        moved, unchanged = [], []
        for failure in queryset.select_related("escalation").order_by("id"):
            try:
                escalation = routing.reclassify_failure(
                    failure, new_type, justification, actor=request.user
                )
            except NotReclassifiable as refusal:
                unchanged.append(f"#{failure.pk} ({refusal.message})")
                continue
            moved.append(f"#{failure.pk} → escalation #{escalation.pk}")
        if moved:
            self.message_user(request, f"Reclassified as {new_type}: {', '.join(moved)}.")
        if unchanged:
            self.message_user(
                request,
                "Left as they were: " + "; ".join(unchanged),
                level=messages.WARNING,
            )
        return None

    @admin.display(description="Repository", ordering="repository")
    def shown_repository(self, failure: FailureEvent) -> SafeString:
        return shown(failure.repository)

    @admin.display(description="Job", ordering="job")
    def shown_job(self, failure: FailureEvent) -> SafeString:
        return shown(failure.job)

    @admin.display(description="Workflow")
    def shown_workflow(self, failure: FailureEvent) -> SafeString:
        return shown(failure.workflow) or "—"

    @admin.display(description="Pull request")
    def shown_pr(self, failure: FailureEvent) -> str:
        return f"#{failure.pr_number}" if failure.pr_number else "—"

    @admin.display(description="Commit")
    def shown_commit(self, failure: FailureEvent) -> SafeString:
        return format_html("<code>{}</code>", shown(failure.commit)) if failure.commit else "—"

    @admin.display(description="Run")
    def run(self, failure: FailureEvent) -> SafeString:
        return format_html("{}, attempt {}", shown(failure.run_id), failure.run_attempt)

    @admin.display(description="Author")
    def shown_author(self, failure: FailureEvent) -> SafeString:
        return shown(failure.author) or "—"

    @admin.display(description="Changed files")
    def shown_changed_files(self, failure: FailureEvent) -> SafeString:
        return code_list(failure.changed_files)

    @admin.display(description="Job URL")
    def shown_job_url(self, failure: FailureEvent) -> SafeString:
        # Only web links become links: the URL came from a CI system.
        if failure.job_url.startswith(("https://", "http://")):
            return format_html(
                '<a href="{}" rel="noopener noreferrer">{}</a>',
                failure.job_url,
                shown(failure.job_url),
            )
        return shown(failure.job_url) or "—"

    @admin.display(description="Rule", ordering="rule_name")
    def shown_rule(self, failure: FailureEvent) -> SafeString:
        if not failure.rule_name:
            return format_html('<span class="muted">{}</span>', "none")
        if failure.rule_id is None:
            return format_html("{} (deleted)", shown(failure.rule_name))
        return admin_link("classificationrule", failure.rule_id, shown(failure.rule_name))

    @admin.display(description="Evidence")
    def shown_evidence(self, failure: FailureEvent) -> SafeString:
        return evidence_table(failure.evidence)

    @admin.display(description="Log excerpt")
    def shown_excerpt(self, failure: FailureEvent) -> SafeString:
        if not failure.log_excerpt:
            return format_html('<span class="muted">{}</span>', "No log.")
        return format_html('<pre class="log-excerpt">{}</pre>', shown(failure.log_excerpt))

    @admin.display(description="Log size")
    def log_size(self, failure: FailureEvent) -> str:
        return f"{failure.log_bytes:,} bytes"

    @admin.display(description="Signature")
    def shown_signature(self, failure: FailureEvent) -> SafeString:
        return (
            format_html("<code>{}</code>", shown(failure.signature)) if failure.signature else "—"
        )

    @admin.display(description="Failing tests")
    def shown_failing_tests(self, failure: FailureEvent) -> SafeString:
        return code_list(failure.failing_tests)

    @admin.display(description="Escalation", ordering="escalation_id")
    def escalation_link(self, failure: FailureEvent) -> SafeString | str:
        return admin_link("escalation", failure.escalation_id, f"#{failure.escalation_id}")

    @admin.display(description="Timeline")
    def failure_timeline(self, failure: FailureEvent) -> SafeString:
        events = failure.events.select_related("actor").order_by("at", "id")[:SHOWN_ROWS]
        return timeline_table(events)


def code_list(items: list[Any]) -> SafeString:
    if not items:
        return format_html('<span class="muted">{}</span>', "none")
    return format_html(
        '<ul class="code-list">{}</ul>',
        format_html_join("", "<li><code>{}</code></li>", ((shown(item),) for item in items)),
    )


def evidence_table(evidence: list[dict[str, Any]]) -> SafeString:
    """The matching log lines with their numbers, as the classifier kept them (redacted)."""
    if not evidence:
        return format_html('<span class="muted">{}</span>', "No matching line.")
    rows = format_html_join(
        "",
        '<tr><td class="number">{}</td><td><code>{}</code></td></tr>',
        ((item.get("line", "?"), shown(item.get("text", ""))) for item in evidence),
    )
    return format_html(
        '<table class="evidence"><thead><tr><th>Line</th><th>Text</th></tr></thead>'
        "<tbody>{}</tbody></table>",
        rows,
    )


# --- records: escalations and their SLA ----------------------------------------------------------


class SlaRecordInline(admin.TabularInline):
    model = SlaRecord
    fields = ["status", "started_at", "deadline", "time_left", "resolved_at", "exceeded_at"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 1

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Time left")
    def time_left(self, record: SlaRecord) -> str:
        if record.status != SlaRecord.Status.ACTIVE:
            return "—"
        seconds = sla.remaining_seconds(record)
        text = duration_text(abs(seconds) // 60)
        return f"{text} overdue" if seconds < 0 else text


class RecoveryAttemptInline(admin.TabularInline):
    """The escalation's recovery attempts and their outcomes (read-only)."""

    model = RecoveryAttempt
    fields = ["attempt_link", "action", "status", "outcome", "scheduled_for", "finished_at"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    ordering = ["attempt"]
    verbose_name_plural = "Recovery attempts"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Attempt")
    def attempt_link(self, attempt: RecoveryAttempt) -> SafeString | str:
        return admin_link("recoveryattempt", attempt.pk, f"#{attempt.attempt}")

    @admin.display(description="Outcome")
    def outcome(self, attempt: RecoveryAttempt) -> SafeString:
        return shown(attempt.detail) or "—"


@admin.register(Escalation)
class EscalationAdmin(RecordAdmin):
    """Grouped failures with their routing snapshot, SLA and ticket. "Resolve" closes one and its
    SLA record, as the escalation page, the API and the tracker's status do; "Correct the SLA
    timer" restarts its SLA from a corrected start, as the API does."""

    service_action = "resolve"

    list_display = [
        "id",
        "shown_repository",
        "failure_type",
        "priority",
        "status",
        "occurrences",
        "owning_teams",
        "sla_status",
        "sla_deadline",
        "shown_ticket",
        "last_seen_at",
    ]
    list_display_links = ["id"]
    list_filter = ["status", "failure_type", "priority", "sla__status"]
    search_fields = ["repository", "signature", "tracker_key"]
    date_hierarchy = "last_seen_at"
    list_select_related = ["sla"]
    actions = ["resolve", "correct_sla_timer"]
    inlines = [SlaRecordInline, RecoveryAttemptInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "shown_repository",
                    "failure_type",
                    "priority",
                    "status",
                    "occurrences",
                    "first_seen_at",
                    "last_seen_at",
                    "resolved_at",
                    "shown_resolution",
                ]
            },
        ),
        ("Routing (as it was when the escalation opened)", {"fields": ["routing_snapshot"]}),
        ("Ticket", {"fields": ["tracker", "shown_ticket"]}),
        ("Grouping", {"fields": ["shown_signature", "fingerprint", "failures"]}),
        ("Notifications", {"fields": ["notification_table"]}),
        ("Timeline", {"fields": ["timeline"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("teams")

    def view_on_site(self, obj: Escalation) -> str:
        return reverse("escalation:escalation-detail", args=[obj.pk])

    def has_resolve_permission(self, request) -> bool:
        return self.may_run_service_action(request)

    @admin.action(description="Resolve the selected escalations…", permissions=["resolve"])
    def resolve(self, request, queryset):
        if too_many(self, request, queryset):
            return None
        form = ResolveForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return action_page(
                self, request, queryset, action="resolve", form=form,
                title="Resolve escalations",
                intro=(
                    "Each open escalation is resolved with this reason: its SLA record is closed "
                    "(within the SLA if its deadline has not passed) and its open failures are "
                    "marked resolved."
                ),
                submit="Resolve",
            )  # fmt: skip
        reason = form.cleaned_data["reason"]
        resolved, already = [], []
        for escalation in queryset.order_by("id"):
            done = sla.resolve(escalation, reason, actor=request.user)
            (resolved if done else already).append(f"#{escalation.pk}")
        if resolved:
            self.message_user(request, f"Resolved: {', '.join(resolved)}.")
        if already:
            self.message_user(
                request, f"Already resolved: {', '.join(already)}.", level=messages.WARNING
            )
        return None

    @admin.action(description="Correct the SLA timer…", permissions=["resolve"])
    def correct_sla_timer(self, request, queryset):
        """The seed's ``correct_sla_timer``, for one escalation: each has its own start."""
        if queryset.count() != 1:
            self.message_user(
                request, "Select one escalation to correct its SLA timer.", level=messages.ERROR
            )
            return None
        escalation = queryset.select_related("sla").get()
        if escalation.sla_record() is None:
            self.message_user(
                request, f"Escalation #{escalation.pk} has no SLA record.", level=messages.ERROR
            )
            return None
        form = SlaCorrectionForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return action_page(
                self, request, queryset, action="correct_sla_timer", form=form,
                title="Correct the SLA timer",
                intro=(
                    f"The SLA of {escalation.routing.get('sla_minutes', '?')} minutes starts again "
                    f"from the corrected start (now {escalation.sla.started_at:%Y-%m-%d %H:%M} "
                    "UTC). The owning teams are told; a miss already escalated stays escalated."
                ),
                submit="Correct",
            )  # fmt: skip
        record = sla.correct_sla_timer(
            escalation, form.cleaned_data["started_at"], form.cleaned_data["reason"],
            actor=request.user,
        )  # fmt: skip
        self.message_user(
            request,
            f"Escalation #{escalation.pk}: SLA deadline now "
            f"{timezone.localtime(record.deadline):%Y-%m-%d %H:%M %Z}.",
        )
        return None

    @admin.display(description="Repository", ordering="repository")
    def shown_repository(self, escalation: Escalation) -> SafeString:
        return shown(escalation.repository)

    @admin.display(description="Teams")
    def owning_teams(self, escalation: Escalation) -> SafeString:
        return shown(", ".join(team.name for team in escalation.teams.all())) or "—"

    @admin.display(description="SLA", ordering="sla__status")
    def sla_status(self, escalation: Escalation) -> str:
        record = escalation.sla_record()
        if record is None:
            return "—"
        if record.status == SlaRecord.Status.ACTIVE and record.deadline <= timezone.now():
            return "overdue"
        return record.get_status_display()

    @admin.display(description="SLA deadline", ordering="sla__deadline")
    def sla_deadline(self, escalation: Escalation):
        record = escalation.sla_record()
        return record.deadline if record else None

    @admin.display(description="Ticket", ordering="tracker_key")
    def shown_ticket(self, escalation: Escalation) -> SafeString | str:
        if not escalation.tracker_key:
            return "—"
        if escalation.tracker_url.startswith(("https://", "http://")):
            return format_html(
                '<a href="{}" rel="noopener noreferrer">{}</a>',
                escalation.tracker_url,
                shown(escalation.tracker_key),
            )
        return shown(escalation.tracker_key)

    @admin.display(description="Resolution")
    def shown_resolution(self, escalation: Escalation) -> SafeString:
        return shown(escalation.resolution) or "—"

    @admin.display(description="Signature")
    def shown_signature(self, escalation: Escalation) -> SafeString:
        return format_html("<code>{}</code>", shown(escalation.signature))

    @admin.display(description="Routing")
    def routing_snapshot(self, escalation: Escalation) -> SafeString:
        snapshot = escalation.routing or {}
        teams = ", ".join(team.get("name", "?") for team in snapshot.get("teams", []))
        ticket_team = (snapshot.get("ticket_team") or {}).get("name", "—")
        items = [
            ("Title", snapshot.get("title", "—")),
            ("Teams", teams or "—"),
            ("Ticket team", ticket_team),
            ("Priority", snapshot.get("priority", "—")),
            ("SLA", duration_text(int(snapshot.get("sla_minutes") or 0))),
            ("Urgent", "yes" if snapshot.get("urgent") else "no"),
            ("Notify the author", "yes" if snapshot.get("notify_author") else "no"),
            ("Override policy", snapshot.get("override_policy", "—")),
            ("Recovery action", snapshot.get("recovery_action", "—")),
        ]
        return format_html(
            '<dl class="routing-snapshot">{}</dl>',
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", ((k, shown(v)) for k, v in items)),
        )

    @admin.display(description="Occurrences")
    def failures(self, escalation: Escalation) -> SafeString:
        rows = escalation.failures.order_by("-created_at", "-id")[:SHOWN_ROWS]
        items = format_html_join(
            "",
            "<li>{} {} #{}.{} ({})</li>",
            (
                (
                    admin_link("failureevent", failure.pk, f"#{failure.pk}"),
                    shown(failure.job),
                    shown(failure.run_id),
                    failure.run_attempt,
                    failure.get_status_display(),
                )
                for failure in rows
            ),
        )
        return format_html("<ul>{}</ul>", items) if items else "—"

    @admin.display(description="Notifications")
    def notification_table(self, escalation: Escalation) -> SafeString:
        rows = escalation.notifications.select_related("outbox_message").order_by(
            "created_at", "id"
        )[:SHOWN_ROWS]
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    notification.get_channel_display(),
                    notification.kind,
                    shown(notification.team) or "—",
                    shown(notification.recipient) or "—",
                    outbox_state(notification),
                )
                for notification in rows
            ),
        )
        if not body:
            return format_html('<span class="muted">{}</span>', "None.")
        return format_html(
            "<table><thead><tr><th>Channel</th><th>Kind</th><th>Team</th><th>To</th>"
            "<th>Delivery</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    @admin.display(description="Timeline")
    def timeline(self, escalation: Escalation) -> SafeString:
        # As on the escalation's page: its own events and those of its failures (classification).
        events = (
            EscalationEvent.objects.filter(
                Q(escalation=escalation) | Q(failure__escalation=escalation)
            )
            .select_related("actor")
            .order_by("at", "id")[:SHOWN_ROWS]
        )
        return timeline_table(events)


def outbox_state(notification: Notification) -> str:
    message = notification.outbox_message
    if message is None:
        return "—"
    return message.get_status_display()


@admin.register(SlaRecord)
class SlaRecordAdmin(RecordAdmin):
    list_display = [
        "id",
        "escalation_link",
        "failure_type",
        "status",
        "started_at",
        "deadline",
        "resolved_at",
        "exceeded_at",
    ]
    list_display_links = ["id"]
    list_filter = ["status", "failure_type"]
    search_fields = ["escalation__repository"]
    date_hierarchy = "deadline"

    def get_readonly_fields(self, request, obj=None):
        return [
            "escalation_link",
            "failure_type",
            "assigned_teams",
            "status",
            "started_at",
            "deadline",
            "resolved_at",
            "exceeded_at",
            "created_at",
        ]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description="Escalation", ordering="escalation_id")
    def escalation_link(self, record: SlaRecord) -> SafeString | str:
        return admin_link("escalation", record.escalation_id, f"#{record.escalation_id}")


@admin.register(Notification)
class NotificationAdmin(RecordAdmin):
    list_display = [
        "id",
        "escalation_link",
        "channel",
        "kind",
        "shown_team",
        "shown_recipient",
        "delivery",
        "created_at",
    ]
    list_display_links = ["id"]
    list_filter = ["channel", "kind"]
    search_fields = ["team", "recipient"]
    date_hierarchy = "created_at"
    list_select_related = ["outbox_message"]

    def get_readonly_fields(self, request, obj=None):
        return [
            "escalation_link",
            "channel",
            "kind",
            "shown_team",
            "shown_recipient",
            "delivery",
            "outbox_link",
            "created_at",
        ]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description="Escalation", ordering="escalation_id")
    def escalation_link(self, notification: Notification) -> SafeString | str:
        return admin_link(
            "escalation", notification.escalation_id, f"#{notification.escalation_id}"
        )

    @admin.display(description="Team", ordering="team")
    def shown_team(self, notification: Notification) -> SafeString:
        return shown(notification.team) or "—"

    @admin.display(description="To", ordering="recipient")
    def shown_recipient(self, notification: Notification) -> SafeString:
        return shown(notification.recipient) or "—"

    @admin.display(description="Delivery")
    def delivery(self, notification: Notification) -> str:
        return outbox_state(notification)

    @admin.display(description="Outbox message")
    def outbox_link(self, notification: Notification) -> SafeString | str:
        if notification.outbox_message_id is None:
            return "—"
        return format_html(
            '<a href="{}">#{}</a>',
            reverse("admin:itsm_outboxmessage_change", args=[notification.outbox_message_id]),
            notification.outbox_message_id,
        )


@admin.register(EscalationEvent)
class EscalationEventAdmin(RecordAdmin):
    """The audit trail, one row a change: read-only, never deleted."""

    list_display = ["at", "kind", "shown_message", "escalation_link", "failure_link", "actor"]
    list_display_links = ["at"]
    list_filter = ["kind"]
    search_fields = ["message"]
    date_hierarchy = "at"
    list_select_related = ["actor"]

    def get_readonly_fields(self, request, obj=None):
        return [
            "at",
            "kind",
            "shown_message",
            "shown_data",
            "escalation_link",
            "failure_link",
            "actor",
        ]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description="Message")
    def shown_message(self, event: EscalationEvent) -> SafeString:
        return shown(event.message)

    @admin.display(description="Data")
    def shown_data(self, event: EscalationEvent) -> SafeString:
        text = json.dumps(event.data, indent=2, ensure_ascii=False, sort_keys=True, default=str)
        return format_html("<pre>{}</pre>", shown(text))

    @admin.display(description="Escalation", ordering="escalation_id")
    def escalation_link(self, event: EscalationEvent) -> SafeString | str:
        return admin_link("escalation", event.escalation_id, f"#{event.escalation_id}")

    @admin.display(description="Failure", ordering="failure_id")
    def failure_link(self, event: EscalationEvent) -> SafeString | str:
        return admin_link("failureevent", event.failure_id, f"#{event.failure_id}")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(RecordAdmin):
    """Webhook deliveries seen once (a redelivery changes nothing)."""

    list_display = ["received_at", "source", "shown_event", "shown_delivery_id", "shown_outcome"]
    list_display_links = ["received_at"]
    list_filter = ["source", "event"]
    search_fields = ["delivery_id", "outcome"]
    date_hierarchy = "received_at"

    def get_readonly_fields(self, request, obj=None):
        return ["received_at", "source", "shown_event", "shown_delivery_id", "shown_outcome"]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description="Event", ordering="event")
    def shown_event(self, delivery: WebhookDelivery) -> SafeString:
        return shown(delivery.event)

    @admin.display(description="Delivery id", ordering="delivery_id")
    def shown_delivery_id(self, delivery: WebhookDelivery) -> SafeString:
        return shown(delivery.delivery_id)

    @admin.display(description="Outcome")
    def shown_outcome(self, delivery: WebhookDelivery) -> SafeString:
        return shown(delivery.outcome) or "—"


# --- recovery attempts ---------------------------------------------------------------------------


@admin.register(RecoveryAttempt)
class RecoveryAttemptAdmin(RecordAdmin):
    """Each try of an escalation's recovery action (the database probe, a re-run of the failed
    jobs) with its backoff and outcome, as ``services.recovery`` recorded it: read-only."""

    list_display = [
        "id",
        "escalation_link",
        "failure_link",
        "action",
        "attempt",
        "status",
        "outcome",
        "scheduled_for",
        "started_at",
        "finished_at",
    ]
    list_display_links = ["id"]
    list_filter = ["status", "action"]
    search_fields = ["escalation__repository", "failure__job", "detail"]
    date_hierarchy = "scheduled_for"
    ordering = ["-scheduled_for", "-id"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "escalation_link",
                    "failure_link",
                    "action",
                    "attempt",
                    "status",
                    "outcome",
                ]
            },
        ),
        ("When", {"fields": ["created_at", "scheduled_for", "started_at", "finished_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("failure")

    @admin.display(description="Escalation", ordering="escalation_id")
    def escalation_link(self, attempt: RecoveryAttempt) -> SafeString | str:
        return admin_link("escalation", attempt.escalation_id, f"#{attempt.escalation_id}")

    @admin.display(description="Failure", ordering="failure_id")
    def failure_link(self, attempt: RecoveryAttempt) -> SafeString | str:
        return admin_link("failureevent", attempt.failure_id, shown(attempt.failure))

    @admin.display(description="Outcome")
    def outcome(self, attempt: RecoveryAttempt) -> SafeString:
        return shown(attempt.detail) or "—"


# --- overrides -----------------------------------------------------------------------------------


class OverrideDecisionForm(forms.Form):
    reason = forms.CharField(
        min_length=3,
        max_length=500,
        validators=[text_problem_check],
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Why; kept in the audit record with your name and the policy.",
    )


class InfrastructureConfirmationForm(OverrideDecisionForm):
    reason = forms.CharField(
        label="What confirms it",
        min_length=3,
        max_length=500,
        validators=[text_problem_check],
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="e.g. the status page's incident, the database's monitoring; kept in the "
        "audit record with your name.",
    )


# What each override action says and does: (title, intro, button, verb, form, service).
OVERRIDE_ACTIONS = {
    "approve": (
        "Approve overrides",
        "Read each failure's evidence first. Approval lets the pipeline proceed, opens a "
        "follow-up ticket and tells the scrum master and QA; no one decides their own request, "
        "and zero-tolerance types are never approved.",
        "Approve", "Approved", OverrideDecisionForm, overrides.approve,
    ),
    "deny": (
        "Deny overrides",
        "Read each failure's evidence first. A denied override keeps the pipeline gate closed; "
        "no one decides their own request.",
        "Deny", "Denied", OverrideDecisionForm, overrides.deny,
    ),
    "confirm_infrastructure": (
        "Confirm the infrastructure issue",
        "Confirm only an infrastructure issue you have seen (an outage, the database down). Each "
        "pending infrastructure override is then approved automatically by its policy, with the "
        "audit record, a follow-up ticket and the scrum master and QA told. No one confirms "
        "their own request, and zero-tolerance types are never approved.",
        "Confirm", "Confirmed and approved", InfrastructureConfirmationForm,
        overrides.confirm_infrastructure,
    ),
}  # fmt: skip


@admin.register(OverrideRequest)
class OverrideRequestAdmin(RecordAdmin):
    """Override requests. QA approves or denies them with the actions (from the list or the
    change page), which show each failure's evidence first and call ``services.overrides``: no
    one decides their own request, and zero-tolerance types are refused whoever asks."""

    service_action = "decide"  # the change page's Approve…/Deny… buttons

    change_form_template = "escalation/admin/override_change_form.html"
    list_display = [
        "id",
        "failure_link",
        "failure_type",
        "kind",
        "status",
        "policy",
        "requested_by",
        "decided_by",
        "created_at",
    ]
    list_display_links = ["id"]
    list_filter = ["status", "kind", "policy"]
    search_fields = ["failure__repository", "failure__job", "justification"]
    date_hierarchy = "created_at"
    actions = ["approve", "deny", "confirm_infrastructure"]
    fieldsets = [
        (
            "The request",
            {
                "fields": [
                    "failure_link",
                    "failure_type",
                    "kind",
                    "shown_justification",
                    "requested_by",
                    "created_at",
                    "policy",
                    "infrastructure_confirmed",
                ]
            },
        ),
        ("The failure's evidence", {"fields": ["failure_evidence"]}),
        (
            "Decision",
            {
                "fields": [
                    "status",
                    "decided_by",
                    "decided_at",
                    "shown_reason",
                    "escalated_at",
                    "followup_key",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("failure", "escalation", "requested_by", "decided_by")
        )

    def has_approve_permission(self, request) -> bool:
        return self.may_run_service_action(request)

    def has_deny_permission(self, request) -> bool:
        return self.may_run_service_action(request)

    @admin.action(description="Approve the selected overrides…", permissions=["approve"])
    def approve(self, request, queryset):
        return self.decide(request, queryset, "approve")

    @admin.action(description="Deny the selected overrides…", permissions=["deny"])
    def deny(self, request, queryset):
        return self.decide(request, queryset, "deny")

    def has_confirm_infrastructure_permission(self, request) -> bool:
        # On call (operators, who only view requests here) and QA; the service checks again.
        return self.has_view_permission(request) and overrides.may_confirm_infrastructure(
            request.user
        )

    @admin.action(
        description="Confirm the infrastructure issue (auto-approves)…",
        permissions=["confirm_infrastructure"],
    )
    def confirm_infrastructure(self, request, queryset):
        return self.decide(request, queryset, "confirm_infrastructure")

    def decide(self, request, queryset, action: str):
        if too_many(self, request, queryset):
            return None
        title, intro, submit, verb, form_class, service = OVERRIDE_ACTIONS[action]
        queryset = queryset.select_related("failure__escalation", "escalation", "requested_by")
        form = form_class(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            response = action_page(
                self, request, queryset, action=action, form=form,
                title=title, intro=intro, submit=submit,
            )  # fmt: skip
            response.context_data["rows"] = [
                {"pk": request_.pk, "text": override_row(request_)} for request_ in queryset
            ]
            return response
        done, refused = [], []
        for override in queryset.order_by("id"):
            try:
                service(override, request.user, form.cleaned_data["reason"])
            except EscalationError as refusal:
                refused.append(f"#{override.pk} ({refusal.message})")
                continue
            done.append(f"#{override.pk}")
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.")
        if refused:
            self.message_user(request, "Refused: " + "; ".join(refused), level=messages.ERROR)
        return None

    @admin.display(description="Failure")
    def failure_link(self, override: OverrideRequest) -> SafeString | str:
        return admin_link("failureevent", override.failure_id, shown(override.failure))

    @admin.display(description="Type")
    def failure_type(self, override: OverrideRequest) -> str:
        return override.failure.failure_type

    @admin.display(description="Justification")
    def shown_justification(self, override: OverrideRequest) -> SafeString:
        return shown(override.justification)

    @admin.display(description="Reason")
    def shown_reason(self, override: OverrideRequest) -> SafeString | str:
        return shown(override.decision_reason) or "—"

    @admin.display(description="Evidence")
    def failure_evidence(self, override: OverrideRequest) -> SafeString:
        return evidence_table(override.failure.evidence)


def override_row(override: OverrideRequest) -> SafeString:
    """A selected request on the decision page: who asked, why, and the failure's evidence."""
    failure = override.failure
    return format_html(
        "<strong>#{}</strong> {} ({}, {}): {} <em>asked by {}</em>{}",
        override.pk,
        shown(failure),
        failure.failure_type,
        override.get_status_display(),
        shown(override.justification),
        shown(getattr(override.requested_by, "username", "—")),
        evidence_table(failure.evidence),
    )


# --- background jobs with a Jira ticket (seed 002) ------------------------------------------------


class BackgroundJobForm(CheckedTextForm):
    """A new job: its kind is one of the registered ones; its parameters a JSON object (they win
    over the ticket description's ``Key: value`` lines)."""

    kind = forms.ChoiceField(choices=())

    class Meta:
        model = BackgroundJob
        fields = ["name", "kind", "jira_key", "parameters"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "kind" not in self.fields:  # an existing job: every field is read-only
            return
        self.fields["kind"].choices = [
            (kind.name, f"{kind.name} — {kind.description}" if kind.description else kind.name)
            for kind in jobs.job_kinds()
        ]

    def clean_parameters(self) -> dict[str, Any]:
        parameters = self.cleaned_data.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise forms.ValidationError('The parameters are a JSON object, e.g. {"batch": 500}.')
        try:
            for path, problem in text_problems(parameters):
                raise forms.ValidationError(f"{path or 'A value'} {problem}.")
        except TooDeep as exc:
            raise forms.ValidationError("The parameters are nested too deeply.") from exc
        return parameters


@admin.register(BackgroundJob)
class BackgroundJobAdmin(BidiSafeTitleMixin, admin.ModelAdmin):
    """Background jobs that have a Jira ticket: added here (queued at once), then read-only; "Run
    now" queues the selected jobs again through the worker's task (``services.jobs``). A failed
    job's ticket gets the comment and the transition through the outbox."""

    form = BackgroundJobForm
    list_display = [
        "id",
        "shown_name",
        "kind",
        "jira_key",
        "status",
        "attempts",
        "shown_detail",
        "started_at",
        "finished_at",
        "failed_at",
    ]
    list_display_links = ["id", "shown_name"]
    list_filter = ["status", "kind", ("failed_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "jira_key", "kind"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    actions = ["run_now"]
    readonly_fields = [
        "status",
        "shown_detail",
        "shown_error",
        "result",
        "attempts",
        "failure_reported_attempt",
        "started_at",
        "finished_at",
        "failed_at",
        "created_by",
        "created_at",
        "updated_at",
        "timeline",
    ]
    add_fieldsets = [(None, {"fields": ["name", "kind", "jira_key", "parameters"]})]
    fieldsets = [
        (None, {"fields": ["name", "kind", "jira_key", "parameters"]}),
        (
            "Outcome",
            {
                "fields": [
                    "status",
                    "shown_detail",
                    "shown_error",
                    "result",
                    "attempts",
                    "failure_reported_attempt",
                ]
            },
        ),
        (
            "When",
            {
                "fields": [
                    "created_by",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "failed_at",
                    "updated_at",
                ]
            },
        ),
        ("Timeline", {"fields": ["timeline"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the timeline and the ticket's comments refer to it

    def save_model(self, request, obj, form, change) -> None:
        if change:  # every field is read-only once the job exists
            return
        created = jobs.create_job(
            form.cleaned_data["name"],
            form.cleaned_data["kind"],
            form.cleaned_data.get("jira_key") or "",
            form.cleaned_data.get("parameters") or {},
            actor=request.user,
        )
        obj.pk = created.pk

    @admin.action(description="Run now", permissions=["change"])
    def run_now(self, request, queryset):
        if too_many(self, request, queryset):
            return
        queued, refused = jobs.request_run(
            queryset.values_list("id", flat=True), actor=request.user
        )
        if queued:
            self.message_user(
                request, "Queued to run: " + ", ".join(f"#{pk}" for pk in queued) + "."
            )
        if refused:
            self.message_user(
                request,
                "Already running, not queued again: " + ", ".join(f"#{pk}" for pk in refused) + ".",
                level=messages.WARNING,
            )

    @admin.display(description="Name", ordering="name")
    def shown_name(self, job: BackgroundJob) -> SafeString:
        return shown(job.name)

    @admin.display(description="Detail")
    def shown_detail(self, job: BackgroundJob) -> SafeString | str:
        return shown(job.detail) or "—"

    @admin.display(description="Last error")
    def shown_error(self, job: BackgroundJob) -> SafeString | str:
        return shown(job.last_error) or "—"

    @admin.display(description="Timeline")
    def timeline(self, job: BackgroundJob) -> SafeString:
        events = job.events.select_related("actor").order_by("-at", "-id")[:SHOWN_ROWS]
        return timeline_table(reversed(list(events)))


# --- The service catalog (seed 000): bundles with their components inline, requests ---------
# Bundles and items are configuration: every component's templates and configuration are checked
# on save (services.catalog.component_problems); a broken component is refused with an error
# naming the component and the field. Requests are records the engine writes, only read here.


class CatalogBundleForm(CheckedTextForm):
    class Meta:
        model = CatalogBundle
        fields = ["name", "version", "kind", "title", "description", "inputs", "active"]
        help_texts = {
            "name": "metadata.name: what requests name as catalog_item_id.",
            "inputs": 'The inputs a requester fills in: [{"name": "email", "label": "E-mail", '
            '"required": true, "help": ""}]',
        }

    def clean_inputs(self) -> list[Any]:
        inputs = self.cleaned_data.get("inputs") or []
        if not isinstance(inputs, list) or not all(
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and item["name"].isidentifier()
            for item in inputs
        ):
            raise forms.ValidationError(
                'A list of objects, each with a "name" usable as a variable (letters, digits, _).'
            )
        return inputs


class CatalogComponentForm(CheckedTextForm):
    class Meta:
        model = CatalogComponent
        fields = ["position", "component_id", "action_type", "config", "cleanup_instructions"]
        widgets = {
            "config": forms.Textarea(attrs={"rows": 8, "cols": 80, "class": "vLargeTextField"}),
            "cleanup_instructions": forms.Textarea(attrs={"rows": 3, "cols": 60}),
        }


class CatalogComponentFormSet(forms.BaseInlineFormSet):
    """Checks the components together, in their order, against the bundle as edited."""

    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms):
            return
        kept = [
            form
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
        ]
        kept.sort(key=lambda form: form.cleaned_data["position"])
        by_id = {form.cleaned_data["component_id"]: form for form in kept}
        bundle = self.instance
        problems = catalog.component_problems(
            [
                {
                    "component_id": form.cleaned_data["component_id"],
                    "action_type": form.cleaned_data["action_type"],
                    "config": form.cleaned_data.get("config"),
                    "position": form.cleaned_data["position"],
                }
                for form in kept
            ],
            [spec["name"] for spec in catalog.declared_inputs(bundle)],
            bundle.kind,
        )
        for problem in problems:
            form = by_id.get(problem.component_id)
            if form is not None:
                form.add_error(
                    problem.field, f"Component {problem.component_id}: {problem.message}"
                )
        if problems:
            raise forms.ValidationError(
                [
                    f"Component {p.component_id}, {p.field}: {p.message}"
                    if p.component_id
                    else p.message[:1].upper() + p.message[1:] + "."
                    for p in problems
                ]
            )


class CatalogComponentInline(admin.StackedInline):
    model = CatalogComponent
    form = CatalogComponentForm
    formset = CatalogComponentFormSet
    extra = 0
    ordering = ["position"]


@admin.register(CatalogBundle)
class CatalogBundleAdmin(ConfigurationAdmin):
    form = CatalogBundleForm
    inlines = [CatalogComponentInline]
    list_display = ["name", "version", "kind", "active", "component_count", "updated_at"]
    list_filter = ["kind", "active"]
    search_fields = ["name", "title", "description"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("components")

    @admin.display(description="components")
    def component_count(self, bundle: CatalogBundle) -> int:
        return len(bundle.components.all())


class ComponentExecutionInline(admin.TabularInline):
    model = ComponentExecution
    fields = ["position", "component_id", "action_type", "status", "resources", "error",
              "started_at", "finished_at"]  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["position"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class RequestFulfillmentInline(admin.StackedInline):
    model = RequestFulfillment
    fields = ["bundle_name", "bundle_version", "failed_component", "error", "failed_at",
              "ticket_summary", "ticket_url", "outbox_message"]  # fmt: skip
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Request)
class CatalogRequestAdmin(RecordAdmin):
    list_display = ["id", "catalog_item_id", "user_id", "status", "created_at",
                    "escalation_ticket_id"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["catalog_item_id", "user_id", "escalation_ticket_id"]
    readonly_fields = ["id", "catalog_item_id", "user_id", "status", "request_data", "created_at",
                       "updated_at", "completed_at", "escalation_ticket_id",
                       "escalation_timestamp"]  # fmt: skip
    inlines = [RequestFulfillmentInline, ComponentExecutionInline]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["subtitle"] = shown(f"{obj.catalog_item_id} {obj.id}")
        return super().render_change_form(request, context, add, change, form_url, obj)
