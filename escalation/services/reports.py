"""Figures about escalations, read by /metrics and the pages."""

from __future__ import annotations

from django.db.models import Count, Q
from django.utils import timezone

from escalation.models import Escalation, SlaRecord


def open_by_type() -> dict[str, tuple[int, int]]:
    """{failure type: (open escalations, of which past their SLA)} for ``/metrics``."""
    rows = (
        Escalation.objects.filter(status=Escalation.Status.OPEN)
        .values("failure_type")
        .annotate(
            open=Count("id"),
            overdue=Count(
                "id",
                filter=Q(sla__status=SlaRecord.Status.SLA_EXCEEDED)
                | Q(sla__status=SlaRecord.Status.ACTIVE, sla__deadline__lte=timezone.now()),
            ),
        )
    )
    return {row["failure_type"]: (row["open"], row["overdue"]) for row in rows}
