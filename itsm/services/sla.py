"""SLA tracking on ticket records: deadlines at creation, a periodic check for breaches.

Targets (minutes to first response and to resolution, by priority) come from
``config/itsm_config.json``. The check runs on the leader only (beat), claims rows with
``SELECT ... FOR UPDATE SKIP LOCKED`` where the database has it, and refreshes open tickets'
response and resolution times from their platform before judging them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from itsm import metrics
from itsm.clients import client_for
from itsm.config import TICKET_PLATFORMS, get_config
from itsm.errors import ItsmError
from itsm.models import Ticket

logger = logging.getLogger("itsm.sla")

PRIORITY_BY_NAME = {"highest": "1", "high": "2", "medium": "3", "low": "4", "lowest": "5"}
DEFAULT_PRIORITY = "3"
REFRESH_BATCH = 50


def priority_rank(priority: str) -> str:
    value = str(priority or "").strip().lower()
    if value in PRIORITY_BY_NAME:
        return PRIORITY_BY_NAME[value]
    return value if value in {"1", "2", "3", "4", "5"} else DEFAULT_PRIORITY


def set_deadlines(ticket: Ticket, start: datetime) -> None:
    targets = get_config().sla
    rank = priority_rank(ticket.priority)
    response = targets.response_minutes_by_priority.get(rank)
    resolution = targets.resolution_minutes_by_priority.get(rank)
    ticket.created_at = start
    ticket.sla_response_due_at = start + timedelta(minutes=response) if response else None
    ticket.sla_due_at = start + timedelta(minutes=resolution) if resolution else None


def is_breached(ticket: Ticket, now: datetime) -> bool:
    if ticket.resolved_at is None and ticket.sla_due_at and ticket.sla_due_at <= now:
        return True
    responded = ticket.first_response_at
    due = ticket.sla_response_due_at
    return bool(due and ((responded is None and due <= now) or (responded and responded > due)))


def _open_tickets():
    return Ticket.objects.filter(platform__in=TICKET_PLATFORMS, resolved_at__isnull=True).exclude(
        status__in=[Ticket.Status.FAILED, Ticket.Status.DRY_RUN]
    )


def refresh_from_platform(ticket: Ticket, now: datetime) -> bool:
    """Fills ``first_response_at``/``resolved_at`` from the platform's view; True if changed."""
    if ticket.status != Ticket.Status.CREATED or not ticket.external_id:
        return False
    changed = False
    with client_for(ticket.platform) as client:
        if ticket.platform == "jira":
            fields = client.get_issue(ticket.external_key, ["status", "comment"]).get("fields", {})
            status = str((fields.get("status") or {}).get("name", "")).lower()
            comments = (fields.get("comment") or {}).get("comments") or []
            responded = bool(comments) or status not in ("", "to do", "open", "new")
            resolved = status in ("done", "closed", "resolved")
        else:
            record = client.get_incident(ticket.external_id)
            state = str(record.get("state", "1"))
            responded = state != "1" or bool(record.get("comments"))
            resolved = state in ("6", "7")  # Resolved, Closed
    if responded and ticket.first_response_at is None:
        ticket.first_response_at = now
        changed = True
    if resolved and ticket.resolved_at is None:
        ticket.resolved_at = now
        changed = True
    return changed


def check_slas(now: datetime | None = None, *, refresh: bool = True) -> dict[str, Any]:
    """The periodic SLA check: refresh, flag new breaches, publish the gauges."""
    now = now or timezone.now()
    refreshed = 0
    if refresh:
        for ticket in (
            _open_tickets()
            .filter(status=Ticket.Status.CREATED)
            .order_by("sla_due_at")[:REFRESH_BATCH]
        ):
            try:
                if refresh_from_platform(ticket, now):
                    ticket.save(update_fields=["first_response_at", "resolved_at", "updated_at"])
                    refreshed += 1
            except ItsmError as exc:
                logger.warning(
                    "itsm.sla.refresh_failed",
                    extra={
                        "event": "itsm.sla.refresh_failed",
                        "ticket": ticket.pk,
                        "error": str(exc),
                    },
                )
    newly_breached = 0
    with transaction.atomic():
        candidates = (
            _open_tickets()
            .filter(sla_breached=False)
            .filter(
                Q(sla_due_at__lte=now)
                | Q(sla_response_due_at__lte=now, first_response_at__isnull=True)
            )
        )
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        for ticket in candidates:
            if is_breached(ticket, now):
                ticket.sla_breached = True
                ticket.sla_breached_at = now
                ticket.save(update_fields=["sla_breached", "sla_breached_at", "updated_at"])
                metrics.SLA_BREACHES_TOTAL.labels(platform=ticket.platform).inc()
                newly_breached += 1
                logger.warning(
                    "itsm.sla.breached",
                    extra={
                        "event": "itsm.sla.breached",
                        "ticket": ticket.pk,
                        "platform": ticket.platform,
                    },
                )
    return {"refreshed": refreshed, "newly_breached": newly_breached}


def open_and_breached_by_platform() -> dict[str, tuple[int, int]]:
    """(open, breached) counts of tracked tickets by platform; read by ``/metrics``."""
    rows = (
        _open_tickets()
        .values("platform")
        .annotate(open=Count("id"), breached=Count("id", filter=Q(sla_breached=True)))
    )
    seen = {row["platform"]: (row["open"], row["breached"]) for row in rows}
    return {platform: seen.get(platform, (0, 0)) for platform in TICKET_PLATFORMS}


def compliance(queryset=None) -> dict[str, Any]:
    """Share of tracked tickets within SLA (for the API and the dashboard)."""
    queryset = queryset if queryset is not None else Ticket.objects.exclude(sla_due_at=None)
    totals = queryset.aggregate(
        total=Count("id"), breached=Count("id", filter=Q(sla_breached=True))
    )
    total = totals["total"] or 0
    ratio = 1.0 if total == 0 else round(1 - totals["breached"] / total, 4)
    return {"tracked": total, "breached": totals["breached"], "compliance": ratio}
