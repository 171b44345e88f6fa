"""What an export looks like now, read from the database: the seed's WebSocket messages
(``export_progress``, ``export_complete``, ``export_failed``), the three status response shapes and
the results. The socket, the status endpoint and the results endpoint all read these, so they
always agree (progress is state, DESIGN.md).
"""

from __future__ import annotations

import math
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from exports.models import ExportEvent, ExportSession, ExportTicket, ManualFix, OrphanedIssue
from exports.services import lifecycle

Status = ExportSession.Status
TicketStatus = ExportTicket.ExportStatus


def _counts(session: ExportSession) -> dict[str, int]:
    counts = ExportTicket.objects.filter(session=session).aggregate(
        total=Count("id"),
        completed=Count("id", filter=Q(jira_export_status=TicketStatus.EXPORTED)),
        failed=Count("id", filter=Q(jira_export_status=TicketStatus.FAILED)),
        this_run=Count(
            "id",
            filter=Q(jira_export_status=TicketStatus.EXPORTED)
            & Q(exported_at__gte=session.export_started_at or timezone.now()),
        ),
    )
    return {key: int(value or 0) for key, value in counts.items()}


def _percentage(completed: int, total: int) -> float:
    return round(100.0 * completed / total, 1) if total else 0.0


def _remaining_minutes(session: ExportSession, counts: dict[str, int]) -> int | None:
    """Tickets left x this run's pace so far (the configured delay before the first one)."""
    left = counts["total"] - counts["completed"]
    if session.status != Status.EXPORTING:
        return None
    if left <= 0:
        return 0
    per_ticket = lifecycle.ticket_delay_seconds() + 0.5
    if counts["this_run"] and session.export_started_at:
        elapsed = (timezone.now() - session.export_started_at).total_seconds()
        per_ticket = max(elapsed / counts["this_run"], 0.0)
    return math.ceil(left * per_ticket / 60)


def _stage(session: ExportSession, counts: dict[str, int]) -> str:
    if session.status != Status.EXPORTING:
        return session.current_stage
    if session.current_ticket_title:
        number = min(counts["completed"] + 1, counts["total"])
        return f"Creating ticket {number} of {counts['total']}: {session.current_ticket_title}"
    if counts["total"] and counts["completed"] >= counts["total"]:
        return "Creating dependency links"
    return "Validating the Jira project"


def _retry_available(session: ExportSession) -> bool:
    return lifecycle.retries_used(session) < ExportSession.MAX_RETRIES


def _last_task_id(session: ExportSession) -> str | None:
    if session.export_task_id:
        return str(session.export_task_id)
    event = (
        ExportEvent.objects.filter(session=session, kind=lifecycle.COMPLETED)
        .order_by("-at", "-id")
        .values_list("data", flat=True)
        .first()
    )
    return (event or {}).get("task_id")


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 1)


# --- the WebSocket's messages ------------------------------------------------------------------
def socket_message(session: ExportSession) -> dict[str, Any]:
    """The message a socket receives for the session's current state."""
    if session.status == Status.COMPLETED:
        return {
            "type": "export_complete",
            "session_id": str(session.pk),
            "status": "completed",
            "tickets_created": session.tickets.exclude(jira_ticket_key="").count(),
            "dependencies_created": session.dependencies_created,
            "manual_fixes_needed": session.manual_fixes.count(),
            "total_processing_time_minutes": _minutes(session.processing_seconds),
        }
    if session.status == Status.EXPORT_FAILED:
        return {
            "type": "export_failed",
            "session_id": str(session.pk),
            "status": "failed",
            "failed_at_ticket": session.failed_at_ticket_order,
            "error_category": session.error_category,
            "retry_available": _retry_available(session),
            "error_message": session.error_message,
            "recovery_actions": session.recovery_actions,
        }
    counts = _counts(session)
    return {
        "type": "export_progress",
        "session_id": str(session.pk),
        "status": session.api_status,
        "progress_percentage": _percentage(counts["completed"], counts["total"]),
        "current_stage": _stage(session, counts),
        "tickets_completed": counts["completed"],
        "tickets_failed": counts["failed"],
        "total_tickets": counts["total"],
        "estimated_time_remaining_minutes": _remaining_minutes(session, counts),
        "current_jira_project": session.jira_project_key,
    }


# --- the status endpoint's three shapes -------------------------------------------------------
def status_response(session: ExportSession) -> dict[str, Any]:
    if session.status == Status.COMPLETED:
        return {
            "session_id": session.pk,
            "task_id": _last_task_id(session),
            "status": "completed",
            "jira_tickets_created": session.tickets.exclude(jira_ticket_key="").count(),
            "dependencies_created": session.dependencies_created,
            "manual_fixes_needed": session.manual_fixes.count(),
            "total_processing_time_minutes": _minutes(session.processing_seconds),
            "completed_at": session.completed_at,
        }
    if session.status == Status.EXPORT_FAILED:
        return {
            "session_id": session.pk,
            "task_id": _last_task_id(session),
            "status": "failed",
            "failed_at_ticket_order": session.failed_at_ticket_order,
            "error_category": session.error_category,
            "user_message": session.error_message,
            "recovery_actions": session.recovery_actions,
            "retry_available": _retry_available(session),
            "retry_attempts_used": lifecycle.retries_used(session),
        }
    counts = _counts(session)
    return {
        "session_id": session.pk,
        "task_id": _last_task_id(session),
        "status": session.api_status,  # "exporting" (or "draft" before the first export)
        "progress_percentage": _percentage(counts["completed"], counts["total"]),
        "tickets_completed": counts["completed"],
        "total_tickets": counts["total"],
        "current_ticket_title": session.current_ticket_title or None,
        "estimated_time_remaining_minutes": _remaining_minutes(session, counts),
    }


def already_running_response(session: ExportSession) -> dict[str, Any]:
    """The seed's ExportAlreadyRunningResponse."""
    counts = _counts(session)
    return {
        "task_id": session.export_task_id,
        "session_id": session.pk,
        "status": "exporting",
        "progress_percentage": _percentage(counts["completed"], counts["total"]),
        "current_ticket_title": session.current_ticket_title,
        "started_at": session.export_started_at,
    }


# --- the results ----------------------------------------------------------------------------------
def results_response(session: ExportSession) -> dict[str, Any]:
    tickets = list(
        session.tickets.exclude(jira_ticket_key="")
        .order_by("order")
        .only("id", "title", "jira_ticket_key", "jira_ticket_url")
    )
    fixes = ManualFix.objects.filter(session=session).select_related("ticket")
    orphans = OrphanedIssue.objects.filter(session=session).order_by("jira_key")
    return {
        "session_id": session.pk,
        "total_tickets_created": len(tickets),
        "jira_tickets": [
            {
                "ticket_id": ticket.pk,
                "jira_key": ticket.jira_ticket_key,
                "jira_url": ticket.jira_ticket_url,
                "title": ticket.title,
            }
            for ticket in tickets
        ],
        "dependencies_created": session.dependencies_created,
        "manual_fixes": [
            {
                "jira_key": fix.ticket.jira_ticket_key,
                "title": fix.ticket.title,
                "issue_type": fix.issue_type,
                "recommended_action": fix.recommended_action,
                "jira_url": fix.ticket.jira_ticket_url,
            }
            for fix in fixes
        ],
        "total_processing_time_minutes": _minutes(session.processing_seconds),
        # Beyond the seed: issues our marker found in Jira that no ticket owns (clean them up).
        "orphaned_issues": [
            {"jira_key": orphan.jira_key, "reason": orphan.reason} for orphan in orphans
        ],
    }
