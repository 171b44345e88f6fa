"""The one FilterSet of ticket records: ``/api/v1/tickets/`` and the ``/itsm/tickets/`` page both
filter with it, so a query string means the same thing in both places."""

from __future__ import annotations

import django_filters
from django import forms

from itsm.config import TICKET_PLATFORMS
from itsm.models import Platform, Ticket
from portal.pages import MomentFilter, SearchFilterSet


class BreachedSelect(forms.NullBooleanSelect):
    """``true``/``false`` as the API takes them, with labels that read well in the filter bar."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", "Any SLA"), ("true", "Breached"), ("false", "Not breached")]


class TicketFilterSet(SearchFilterSet):
    search_fields = ("job_id", "template_name", "external_key")

    q = django_filters.CharFilter(
        method="search",
        label="Search",
        help_text="Part of a job id, template name or external key.",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "job id, template, key"}),
    )

    platform = django_filters.ChoiceFilter(
        choices=[(value, Platform(value).label) for value in TICKET_PLATFORMS],
        empty_label="All platforms",
    )
    status = django_filters.ChoiceFilter(choices=Ticket.Status.choices, empty_label="Any status")
    sla_breached = django_filters.BooleanFilter(label="SLA", widget=BreachedSelect)
    created_after = MomentFilter(
        field_name="created_at",
        lookup_expr="gte",
        label="Created after",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    created_before = MomentFilter(
        field_name="created_at",
        lookup_expr="lt",
        label="Created before",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    job_id = django_filters.CharFilter(label="Job id (exact)")
    template_name = django_filters.CharFilter(label="Template (exact)")

    class Meta:
        model = Ticket
        fields = [
            "q",
            "platform",
            "status",
            "sla_breached",
            "created_after",
            "created_before",
            "job_id",
            "template_name",
        ]
