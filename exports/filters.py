"""The FilterSet of the sessions list: ``/api/v1/sessions`` and the ``/exports/`` page both use it,
so a query string means the same thing in both places."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet

from exports.models import ExportSession
from portal.pages import MomentFilter, SearchFilterSet

# The API's status vocabulary (the seed's ``failed``), mapped to what the table stores.
STATUS_CHOICES = [
    ("draft", "Draft"),
    ("exporting", "Exporting"),
    ("completed", "Completed"),
    ("failed", "Failed"),
]
STORED_STATUS = {"failed": ExportSession.Status.EXPORT_FAILED}


class SessionFilterSet(SearchFilterSet):
    search_fields = ("name", "jira_project_key")

    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "name, project key"}),
    )
    status = django_filters.ChoiceFilter(
        choices=STATUS_CHOICES, method="filter_status", empty_label="Any status"
    )
    project = django_filters.CharFilter(
        field_name="jira_project_key", lookup_expr="iexact", label="Project key"
    )
    since = MomentFilter(
        field_name="created_at",
        lookup_expr="gte",
        label="Created since",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    mine = django_filters.BooleanFilter(method="filter_mine", label="Created by me")

    class Meta:
        model = ExportSession
        fields = ["q", "status", "project", "since", "mine"]

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(status=STORED_STATUS.get(value, value)) if value else queryset

    def filter_mine(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        user = getattr(self.request, "user", None)
        if value is None or user is None or not user.is_authenticated:
            return queryset
        return queryset.filter(created_by=user) if value else queryset.exclude(created_by=user)
