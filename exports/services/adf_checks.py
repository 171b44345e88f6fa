"""Will a ticket go to Jira as it stands? Its HTML converted to ADF, fresh every time (the user
may have just edited it), and its attachment checked for upload without uploading it.

Used by ``POST /api/jira/test-adf-conversion/{session_id}`` (the seed's AdfTestResponse) and by
the review page, which shows the same result beside the editor. No call to Jira: the checks use
what the portal knows (Jira's description limit, ``EXPORT_JIRA_ATTACHMENT_MAX_BYTES``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from exports import adf
from exports.models import ExportSession, ExportTicket
from exports.services.sessions import base_name, filename_problem

# Jira Cloud refuses a description longer than this ("It exceeds the allowed limit of 32,767
# characters"); the limit counts the ADF document's JSON.
JIRA_DESCRIPTION_MAX_CHARS = 32_767

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"


@dataclass
class AttachmentCheck:
    tested: bool
    status: str | None  # passed, failed, skipped
    message: str = ""
    suggested_fix: str = ""


@dataclass
class AdfTestResult:
    ticket: ExportTicket
    status: str
    doc: dict[str, Any] | None
    adf_size_bytes: int | None
    character_reduction: float | None
    error_message: str | None
    suggested_fix: str | None
    attachment: AttachmentCheck
    warnings: list[str] = field(default_factory=list)

    @property
    def pretty_json(self) -> str:
        return json.dumps(self.doc, indent=2, ensure_ascii=False) if self.doc is not None else ""

    def as_seed(self) -> dict[str, Any]:
        """The seed's ``AdfTestResult``."""
        return {
            "ticket_id": self.ticket.pk,
            "ticket_title": self.ticket.title,
            "status": self.status,
            "adf_size_bytes": self.adf_size_bytes,
            "character_reduction": self.character_reduction,
            "error_message": self.error_message,
            "suggested_fix": self.suggested_fix,
            "attachment_upload_tested": self.attachment.tested,
            "attachment_upload_status": self.attachment.status,
        }


def jira_attachment_limit() -> int:
    return min(
        int(settings.EXPORT_ATTACHMENT_MAX_BYTES), int(settings.EXPORT_JIRA_ATTACHMENT_MAX_BYTES)
    )


def check_attachment(ticket: ExportTicket, *, include: bool = True) -> AttachmentCheck:
    """Could the ticket's attachment be uploaded? Readable, within Jira's limit, a usable name.
    Nothing is sent."""
    if not include or not ticket.attachment:
        return AttachmentCheck(tested=False, status=SKIPPED)
    name = base_name(ticket.attachment.name)
    if problem := filename_problem(name):
        return AttachmentCheck(True, FAILED, problem, "Upload the file again under a plain name.")
    try:
        size = ticket.attachment.size
        with ticket.attachment.open("rb") as handle:
            handle.read(1)
    except OSError:
        return AttachmentCheck(
            True, FAILED, f"The attachment {name} cannot be read (the stored file is missing).",
            "Upload the file again.",
        )  # fmt: skip
    limit = jira_attachment_limit()
    if size > limit:
        return AttachmentCheck(
            True, FAILED, f"The attachment {name} is {size:,} bytes; Jira accepts {limit:,}.",
            "Compress or split the file, or link to it from the description.",
        )  # fmt: skip
    return AttachmentCheck(True, PASSED)


def check_ticket_conversion(
    ticket: ExportTicket, *, include_attachments: bool = True
) -> AdfTestResult:
    attachment = check_attachment(ticket, include=include_attachments)
    try:
        conversion = adf.convert_html(ticket.description_html or "")
    except Exception as exc:  # the converter promises a document for any input; say so if not
        return AdfTestResult(
            ticket, FAILED, None, None, None,
            f"The HTML could not be converted: {type(exc).__name__}.",
            "Simplify the description's HTML (paste it as plain text) and test again.",
            attachment,
        )  # fmt: skip
    error = suggestion = None
    if len(conversion.json) > JIRA_DESCRIPTION_MAX_CHARS:
        error = (
            f"The description is {len(conversion.json):,} characters as ADF; Jira accepts "
            f"{JIRA_DESCRIPTION_MAX_CHARS:,}."
        )
        suggestion = "Shorten the description, or move the detail into an attachment."
    elif attachment.status == FAILED:
        error, suggestion = attachment.message, attachment.suggested_fix
    return AdfTestResult(
        ticket=ticket,
        status=FAILED if error else PASSED,
        doc=conversion.doc,
        adf_size_bytes=conversion.size_bytes,
        character_reduction=conversion.character_reduction,
        error_message=error,
        suggested_fix=suggestion,
        attachment=attachment,
        warnings=list(conversion.warnings),
    )


def check_session_conversion(
    session: ExportSession, ticket_ids: Iterable[Any] = (), *, include_attachments: bool = True
) -> list[AdfTestResult]:
    """The seed's AdfTest: the given tickets of the session (all of them when none is given),
    in order. A ticket id of another session is not tested (``UnknownTickets`` from the caller)."""
    tickets = session.tickets.order_by("order")
    wanted = list(ticket_ids)
    if wanted:
        tickets = tickets.filter(pk__in=wanted)
    return [
        check_ticket_conversion(ticket, include_attachments=include_attachments)
        for ticket in tickets
    ]
