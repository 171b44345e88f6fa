"""The FilterSets of the CI failure lists: ``/api/v1/ci/...`` and the ``/ci/...`` pages both use
them, so a query string means the same thing in both places."""

from __future__ import annotations

import django_filters
from django import forms

from escalation.models import Escalation, FailureEvent, FailureType, Request, Team
from portal.pages import IdFilter, MomentFilter, SearchFilterSet


def team_choices():
    return [(team.name, str(team)) for team in Team.objects.all()]


class FailureFilterSet(SearchFilterSet):
    search_fields = ("repository", "job", "workflow", "commit", "signature", "author")

    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "repository, job, commit"}),
    )
    repository = django_filters.CharFilter(label="Repository (exact)")
    type = django_filters.ChoiceFilter(
        field_name="failure_type", choices=FailureType.choices, empty_label="Any type"
    )
    status = django_filters.ChoiceFilter(
        choices=FailureEvent.Status.choices, empty_label="Any status"
    )
    team = django_filters.ChoiceFilter(
        field_name="escalation__teams__name", choices=team_choices, empty_label="Any team"
    )
    since = MomentFilter(
        field_name="created_at",
        lookup_expr="gte",
        label="Since",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    escalation = IdFilter(label="Escalation id")

    class Meta:
        model = FailureEvent
        fields = ["q", "repository", "type", "status", "team", "since", "escalation"]


class EscalationFilterSet(SearchFilterSet):
    search_fields = ("repository", "signature", "tracker_key")

    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "repository, signature"}),
    )
    repository = django_filters.CharFilter(label="Repository (exact)")
    type = django_filters.ChoiceFilter(
        field_name="failure_type", choices=FailureType.choices, empty_label="Any type"
    )
    status = django_filters.ChoiceFilter(
        choices=Escalation.Status.choices, empty_label="Any status"
    )
    team = django_filters.ChoiceFilter(
        field_name="teams__name", choices=team_choices, empty_label="Any team"
    )
    since = MomentFilter(
        field_name="last_seen_at",
        lookup_expr="gte",
        label="Seen since",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    class Meta:
        model = Escalation
        fields = ["q", "repository", "type", "status", "team", "since"]


class CatalogRequestFilterSet(SearchFilterSet):
    """Catalog requests (seed 000): ``/api/v1/requests`` and the ``/ci/requests/`` page."""

    search_fields = ("catalog_item_id", "user_id", "escalation_ticket_id")

    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "item, user, ticket"}),
    )
    status = django_filters.ChoiceFilter(choices=Request.Status.choices, empty_label="Any status")
    catalog_item = django_filters.CharFilter(field_name="catalog_item_id", label="Catalog item")
    since = MomentFilter(
        field_name="created_at",
        lookup_expr="gte",
        label="Since",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    class Meta:
        model = Request
        fields = ["q", "status", "catalog_item", "since"]
