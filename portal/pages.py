"""The list-page kit every app's list pages stand on.

NetBox's pattern: one FilterSet per list serves the page and the API, so the two never filter
differently. A list page is a :class:`FilteredListView` that names its FilterSet, its columns and
the columns that sort; the kit adds

- free-text search: ``?q=`` over the FilterSet's ``search_fields`` (:class:`SearchFilterSet`);
- sorting by an allow-listed column: ``?ordering=name`` or ``?ordering=-name``; a header link
  toggles the direction, and anything not on the list falls back to the default order;
- pagination that never answers 404: ``?page=abc``, ``0``, ``-1`` or past the end show the nearest
  page that exists (a link that outlived its rows still lands somewhere useful);
- links that keep the filters: the pager and the headers change one parameter and keep the rest.

Templates: ``portal/list/filter_bar.html``, ``portal/list/table_head.html`` and
``portal/list/pager.html``, included by the app's own list template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import django_filters
from django import forms
from django.db.models import F, Q, QuerySet
from django.views.generic import ListView

ORDERING_PARAM = "ordering"
SEARCH_PARAM = "q"


# The largest value of a 64-bit integer column (PostgreSQL's bigint, SQLite's INTEGER).
MAX_ROW_ID = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A row's id: a whole number a database column can hold. Anything else (a fraction, a number
    larger than a bigint) is the filter's error, never an overflow in the database."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ROW_ID)
        super().__init__(*args, **kwargs)


class MomentField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 moment, in UTC once read. Python takes offsets up to ±23:59 and years 1 to
    9999; PostgreSQL refuses offsets past ±15:59, and a moment near year 1 or 9999 may not exist
    in UTC: both are the filter's error, never the database's."""

    def to_python(self, value: Any):
        moment = super().to_python(value)
        return None if moment is None else self._in_utc(moment)

    def _in_utc(self, moment):
        if moment.tzinfo is None:
            return moment  # made aware in the portal's time zone by Django afterwards
        try:
            return moment.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError("This moment is out of range.", code="invalid") from exc


class MomentFilter(django_filters.IsoDateTimeFilter):
    """``IsoDateTimeFilter`` on :class:`MomentField`: "since", "before" and the like."""

    field_class = MomentField


class SearchFilterSet(django_filters.FilterSet):
    """A FilterSet with ``q``: a case-insensitive "contains" over every field in ``search_fields``
    (any of them matching). The API and the page both get it, since both use the FilterSet."""

    search_fields: Sequence[str] = ()

    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(attrs={"type": "search"}),
    )

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value or not self.search_fields:
            return queryset
        condition = Q()
        for field in self.search_fields:
            condition |= Q(**{f"{field}__icontains": value})
        return queryset.filter(condition)


@dataclass(frozen=True)
class Column:
    """A column of a list table. ``sort`` is the field it sorts by ("" when it does not sort)."""

    label: str
    sort: str = ""
    numeric: bool = False


@dataclass(frozen=True)
class ColumnHeader:
    """A column as the header shows it now: its link and the direction it is sorted in."""

    label: str
    numeric: bool
    url: str  # "" when the column does not sort
    direction: str  # "ascending", "descending" or ""

    @property
    def arrow(self) -> str:
        return {"ascending": "▲", "descending": "▼"}.get(self.direction, "")

    @property
    def next_direction(self) -> str:
        return "descending" if self.direction == "ascending" else "ascending"


def clamp_page(raw: str | None, num_pages: int) -> int:
    """The page to show for ``?page=raw``: the first when it is not a whole number, else the
    nearest of 1..num_pages."""
    try:
        number = int(str(raw).strip())
    except (TypeError, ValueError):
        return 1
    return max(1, min(number, max(num_pages, 1)))


class FilteredListView(ListView):
    """A list page on a FilterSet, with search, sortable columns and forgiving pagination.

    Subclasses set ``queryset`` (with the ``select_related`` the rows need), ``filterset_class``,
    ``columns`` and ``default_ordering``; optionally ``filter_bar_fields``, the FilterSet fields
    offered in the filter bar (the others still apply when a link sets them).
    """

    filterset_class: type[django_filters.FilterSet]
    columns: Sequence[Column] = ()
    default_ordering: Sequence[str] = ("-pk",)
    filter_bar_fields: Sequence[str] | None = None
    paginate_by = 50

    # --- filtering and ordering -----------------------------------------------------------------

    def get_queryset(self) -> QuerySet:
        self.filterset = self.filterset_class(
            self.request.GET, queryset=super().get_queryset(), request=self.request
        )
        # Invalid values (an unknown status, a date that is not one) are left out of the filter
        # and shown beside their input, rather than answering an error page.
        return self.filterset.qs.order_by(*self.ordering_expressions())

    @property
    def sortable(self) -> set[str]:
        return {column.sort for column in self.columns if column.sort}

    def current_ordering(self) -> str:
        """``?ordering=`` when it names a sortable column, else the default (its first key)."""
        requested = self.request.GET.get(ORDERING_PARAM, "").strip()
        if requested.removeprefix("-") in self.sortable:
            return requested
        return self.default_ordering[0]

    def ordering_expressions(self) -> list[Any]:
        ordering = self.current_ordering()
        name = ordering.removeprefix("-")
        # Rows without a value (no SLA deadline yet) go last in both directions.
        first = (
            F(name).desc(nulls_last=True)
            if ordering.startswith("-")
            else F(name).asc(nulls_last=True)
        )
        # The primary key last: equal values would otherwise shuffle between pages.
        rest = [key for key in self.default_ordering if key.removeprefix("-") != name]
        if not any(key.removeprefix("-") in ("pk", "id") for key in [ordering, *rest]):
            rest.append("-pk")
        return [first, *rest]

    # --- pagination -----------------------------------------------------------------------------

    def paginate_queryset(self, queryset, page_size):
        paginator = self.get_paginator(
            queryset,
            page_size,
            orphans=self.get_paginate_orphans(),
            allow_empty_first_page=True,
        )
        page = paginator.page(
            clamp_page(self.request.GET.get(self.page_kwarg), paginator.num_pages)
        )
        return paginator, page, page.object_list, page.has_other_pages()

    # --- what the templates need ----------------------------------------------------------------

    def link_with(self, **changes: str | None) -> str:
        """``?...`` with the current query, ``changes`` applied (``None`` removes a key)."""
        query = self.request.GET.copy()
        for key, value in changes.items():
            if value is None:
                query.pop(key, None)
            else:
                query[key] = value
        return f"?{query.urlencode()}" if query else "?"

    def column_headers(self) -> list[ColumnHeader]:
        ordering = self.current_ordering()
        headers = []
        for column in self.columns:
            if not column.sort:
                headers.append(ColumnHeader(column.label, column.numeric, "", ""))
                continue
            direction = ""
            if ordering == column.sort:
                direction = "ascending"
            elif ordering == f"-{column.sort}":
                direction = "descending"
            # A click sorts the other way round; a new column starts ascending. Back to page 1.
            target = f"-{column.sort}" if direction == "ascending" else column.sort
            url = self.link_with(**{ORDERING_PARAM: target, self.page_kwarg: None})
            headers.append(ColumnHeader(column.label, column.numeric, url, direction))
        return headers

    def get_context_data(self, **kwargs) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = self.filterset.form
        shown = self.filter_bar_fields or list(form.fields)
        # Values set by a link for fields the bar does not show travel along as hidden inputs.
        kept = [
            (name, value)
            for name in form.fields
            if name not in shown
            for value in self.request.GET.getlist(name)
            if value
        ]
        if ORDERING_PARAM in self.request.GET:
            kept.append((ORDERING_PARAM, self.current_ordering()))
        context.update(
            {
                "filterset": self.filterset,
                "filter_fields": [form[name] for name in shown],
                "filter_kept": kept,
                "filtered": any(
                    value for name in form.fields for value in self.request.GET.getlist(name)
                ),
                "column_headers": self.column_headers(),
                "ordering": self.current_ordering(),
            }
        )
        return context
