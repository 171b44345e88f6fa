"""Sessions and their tickets before the export: created in one transaction, edited on the review
page, given attachments. The rules of what a session may hold live here, once, for the API, the
pages and the admin alike.

Field rules (a project key, a title, a label, any text) are functions that say what is wrong with
one value (``label_problem``...): the API's serializers and the forms call them per field, so a
bad field answers 400 naming its path. Rules of the tickets as a set (unique orders, dependencies
on orders that exist, no cycle) are checked by :func:`check_tickets`, which
:func:`create_session` runs inside its transaction: a violation is the seed's 422
(``InvalidTickets``, ``UnknownDependency``, ``DependencyCycle``, which names the cycle).

Edits are refused while the session exports and once a ticket is in Jira (``SessionLocked``,
409): an edit then would never reach Jira. Every change writes an ``ExportEvent``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from exports.errors import AttachmentTooLarge, InvalidTickets, SessionLocked
from exports.models import ExportSession, ExportTicket, TicketDependency
from exports.services import lifecycle
from exports.services.ordering import order_by_dependencies
from portal.text import check_text

# Limits: what a planning session needs, with room; beyond them a request is a mistake (or an
# attack) and answers 400 naming the field.
MAX_TICKETS = 1000
MAX_ORDER = 1_000_000
MAX_NAME = 200
MAX_TITLE = 255  # Jira's summary limit
MAX_DESCRIPTION_HTML = 200_000
MAX_ASSIGNEE = 128
MAX_SPRINT = 128
MAX_PRIORITY = 32
MAX_LABELS = 20
MAX_LABEL = 255  # Jira's label limit
MAX_DEPENDENCIES = 100
MAX_FILENAME = 255

# A Jira project key: a letter, then letters, digits or underscores (Jira's default rule is upper
# case; keys are compared without regard to case, so a key is stored upper-cased).
PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{1,31}$")
# The export marks each issue with a label of this prefix (itsm's idempotency label): a ticket
# carrying one itself would confuse the reconciliation that keeps creates exactly once.
RESERVED_LABEL_PREFIX = "portal-idem-"
_WHITESPACE = re.compile(r"\s")


# --- one value at a time ------------------------------------------------------------------------


def text_problem(value: str, *, max_length: int, single_line: bool = False) -> str | None:
    """What is wrong with ``value`` as user text (portal.text's rule, a length, one line)."""
    if problem := check_text(value):
        return f"This text {problem}."
    if len(value) > max_length:
        return f"At most {max_length:,} characters (this has {len(value):,})."
    if single_line and ("\n" in value or "\r" in value):
        return "One line only."
    return None


def normalize_project_key(value: str) -> str:
    return value.strip().upper()


def project_key_problem(value: str) -> str | None:
    """``value`` after :func:`normalize_project_key`."""
    if problem := check_text(value):
        return f"This text {problem}."
    if not PROJECT_KEY.fullmatch(value):
        return (
            "A Jira project key: 2 to 32 letters, digits or underscores, starting with a letter "
            "(e.g. OPS)."
        )
    return None


def title_problem(value: str) -> str | None:
    if not value.strip():
        return "A title is required."
    return text_problem(value, max_length=MAX_TITLE, single_line=True)


def label_problem(value: str) -> str | None:
    """Jira labels are single words: no spaces, 1 to 255 characters."""
    if problem := check_text(value):
        return f"This label {problem}."
    if not value:
        return "A label cannot be empty."
    if _WHITESPACE.search(value):
        return f"Jira labels cannot contain spaces: {value!r} (use - or _ instead)."
    if len(value) > MAX_LABEL:
        return f"A label has at most {MAX_LABEL} characters."
    if value.lower().startswith(RESERVED_LABEL_PREFIX):
        return f"Labels starting with {RESERVED_LABEL_PREFIX!r} are reserved for the export."
    return None


def labels_problem(values: Sequence[str]) -> str | None:
    if len(values) > MAX_LABELS:
        return f"At most {MAX_LABELS} labels."
    for value in values:
        if problem := label_problem(value):
            return problem
    return None


def filename_problem(name: str) -> str | None:
    """A file name Jira accepts as an attachment's name (and a page can show)."""
    if problem := check_text(name):
        return f"The file name {problem}."
    if not name.strip() or name.strip() in (".", ".."):
        return "The file needs a name."
    if len(name) > MAX_FILENAME:
        return f"The file name has at most {MAX_FILENAME} characters."
    return None


def base_name(name: str) -> str:
    """A browser may send a path (``C:\\Users\\me\\plan.pdf``): only its last part is a name."""
    return PureWindowsPath(PurePosixPath(name).name).name


# --- what a session is made of ------------------------------------------------------------------


@dataclass(frozen=True)
class TicketInput:
    """One ticket as a caller gives it (fields already checked one by one)."""

    order: int
    title: str
    description_html: str = ""
    assignee: str = ""
    sprint: str = ""
    priority: str = ""
    labels: tuple[str, ...] = ()
    depends_on: tuple[int, ...] = ()


@dataclass(frozen=True)
class SessionInput:
    jira_project_key: str
    tickets: tuple[TicketInput, ...]
    name: str = ""
    export_mode: str = ExportSession.Mode.SEQUENTIAL


def check_tickets(tickets: Sequence[TicketInput]) -> list[int]:
    """The rules of tickets as a set; returns the orders in dependency order.

    Raises ``InvalidTickets`` (no ticket, too many, an order used twice), ``UnknownDependency``
    (a ``depends_on`` naming an order that is not in the session) or ``DependencyCycle``.
    """
    if not tickets:
        raise InvalidTickets({"tickets": "A session needs at least one ticket."})
    # The most a session may hold: what one export takes (EXPORT_MAX_TICKETS sets its time
    # limits), never more than the API's own cap.
    limit = min(MAX_TICKETS, lifecycle.max_tickets())
    if len(tickets) > limit:
        raise InvalidTickets({"tickets": f"At most {limit} tickets in a session."})
    problems: dict[str, str] = {}
    seen: dict[int, int] = {}
    for index, ticket in enumerate(tickets):
        if ticket.order in seen:
            problems[f"tickets.{index}.order"] = (
                f"Order {ticket.order} is already used by tickets.{seen[ticket.order]}."
            )
        else:
            seen[ticket.order] = index
        if ticket.order in ticket.depends_on:
            problems[f"tickets.{index}.depends_on"] = "A ticket cannot depend on itself."
    if problems:
        raise InvalidTickets(problems)
    return order_by_dependencies(
        [ticket.order for ticket in tickets],
        {ticket.order: ticket.depends_on for ticket in tickets},
    )


def default_name(project_key: str) -> str:
    return f"{project_key} planning session {timezone.localdate():%Y-%m-%d}"


@transaction.atomic
def create_session(data: SessionInput, actor: Any = None) -> ExportSession:
    """A session and all its tickets and dependencies, in one transaction (all or nothing)."""
    key = normalize_project_key(data.jira_project_key)
    if problem := project_key_problem(key):
        raise InvalidTickets({"jira_project_key": problem})
    check_tickets(data.tickets)
    session = ExportSession.objects.create(
        name=data.name.strip() or default_name(key),
        jira_project_key=key,
        export_mode=data.export_mode,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    created = ExportTicket.objects.bulk_create(
        [
            ExportTicket(
                session=session,
                order=ticket.order,
                title=ticket.title.strip(),
                description_html=ticket.description_html,
                assignee=ticket.assignee.strip(),
                sprint=ticket.sprint.strip(),
                priority=ticket.priority.strip(),
                labels=list(dict.fromkeys(ticket.labels)),
            )
            for ticket in data.tickets
        ]
    )
    by_order = {ticket.order: ticket for ticket in created}
    TicketDependency.objects.bulk_create(
        [
            TicketDependency(blocker=by_order[blocker], blocked=by_order[ticket.order])
            for ticket in data.tickets
            for blocker in dict.fromkeys(ticket.depends_on)
        ]
    )
    lifecycle.record(
        session,
        "session_created",
        f"Created with {len(created)} tickets for project {key}.",
        actor=actor,
        data={"tickets": len(created)},
    )
    return session


def dependencies_of(session: ExportSession) -> dict[int, list[int]]:
    """``{order: [orders it depends on]}`` for the session's tickets, in one query."""
    result: dict[int, list[int]] = {}
    pairs = TicketDependency.objects.filter(blocked__session=session).values_list(
        "blocked__order", "blocker__order"
    )
    for blocked, blocker in pairs.order_by("blocked__order", "blocker__order"):
        result.setdefault(blocked, []).append(blocker)
    return result


# --- edits on the review page ------------------------------------------------------------------

EDITABLE_FIELDS = ("title", "description_html", "assignee", "sprint", "priority", "labels")


def check_editable(ticket: ExportTicket) -> None:
    """``SessionLocked`` while the session exports, or when the ticket is already in Jira."""
    if ticket.session.status == ExportSession.Status.EXPORTING:
        raise SessionLocked(
            "The session is exporting; tickets can be edited again when it has finished."
        )
    if ticket.jira_export_status == ExportTicket.ExportStatus.EXPORTED:
        raise SessionLocked(
            f"Ticket #{ticket.order} is already in Jira as {ticket.jira_ticket_key}; edit it there."
        )


def field_problems(changes: Mapping[str, Any]) -> dict[str, str]:
    """Per-field problems of ticket ``changes`` (the rules above, for the admin and the forms)."""
    problems: dict[str, str] = {}
    limits = {
        "description_html": (MAX_DESCRIPTION_HTML, False),
        "assignee": (MAX_ASSIGNEE, True),
        "sprint": (MAX_SPRINT, True),
        "priority": (MAX_PRIORITY, True),
    }
    for name, value in changes.items():
        if name not in EDITABLE_FIELDS:
            problems[name] = "This field cannot be edited."
        elif name == "title":
            problem = title_problem(value)
        elif name == "labels":
            is_list = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
            problem = labels_problem(list(value)) if is_list else "A list of labels (text)."
        else:
            max_length, single_line = limits[name]
            problem = text_problem(value, max_length=max_length, single_line=single_line)
        if name in EDITABLE_FIELDS and problem:
            problems[name] = problem
    return problems


@transaction.atomic
def update_ticket(
    ticket: ExportTicket, changes: Mapping[str, Any], actor: Any = None
) -> ExportTicket:
    """Applies ``changes`` (any of ``EDITABLE_FIELDS``) to the ticket, checked and audited.

    The session row is locked first, so an edit and an export starting at the same moment are
    serialized: either the edit lands before the export reads the ticket, or it is refused.
    """
    session = ExportSession.objects.select_for_update().get(pk=ticket.session_id)
    ticket = ExportTicket.objects.select_for_update().get(pk=ticket.pk)
    ticket.session = session
    check_editable(ticket)
    if problems := field_problems(changes):
        raise InvalidTickets(problems)
    changed = []
    for name, value in changes.items():
        if name == "labels":
            value = list(dict.fromkeys(value))
        elif name != "description_html":
            value = value.strip()
        if getattr(ticket, name) != value:
            setattr(ticket, name, value)
            changed.append(name)
    if changed:
        ticket.save(update_fields=[*changed, "updated_at"])
        lifecycle.record(
            session,
            "ticket_edited",
            f"Ticket #{ticket.order} edited: {', '.join(changed)}.",
            ticket=ticket,
            actor=actor,
            data={"fields": changed},
        )
    return ticket


def update_ticket_html(ticket: ExportTicket, html: str, actor: Any = None) -> ExportTicket:
    """The review page's edit: the ticket's HTML description."""
    return update_ticket(ticket, {"description_html": html}, actor)


# --- attachments --------------------------------------------------------------------------------


def attachment_limit() -> int:
    return int(settings.EXPORT_ATTACHMENT_MAX_BYTES)


def check_attachment_size(size: int | None) -> None:
    """``AttachmentTooLarge`` (413) when ``size`` is over ``EXPORT_ATTACHMENT_MAX_BYTES``; also
    for a request whose declared length alone says so, before its body is read."""
    limit = attachment_limit()
    if size is not None and size > limit:
        raise AttachmentTooLarge(size, limit)


# Multipart framing around the file: a request declaring more than the limit plus this is refused
# before its body is read.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def check_declared_upload(content_length: str | None) -> None:
    """``AttachmentTooLarge`` when an upload's declared ``Content-Length`` alone is far over the
    limit (checked before the body is read); a missing or malformed header is left to the parser."""
    try:
        declared = int(content_length or 0)
    except ValueError:
        return
    if declared > attachment_limit() + MULTIPART_OVERHEAD_BYTES:
        check_attachment_size(declared)


@transaction.atomic
def attach_file(ticket: ExportTicket, upload: UploadedFile, actor: Any = None) -> ExportTicket:
    """Stores ``upload`` as the ticket's attachment (replacing an earlier one), within the size
    limit; uploaded to Jira by the export."""
    check_attachment_size(upload.size)
    name = base_name(upload.name or "")
    if problem := filename_problem(name):
        raise InvalidTickets({"file": problem})
    session = ExportSession.objects.select_for_update().get(pk=ticket.session_id)
    ticket = ExportTicket.objects.select_for_update().get(pk=ticket.pk)
    ticket.session = session
    check_editable(ticket)
    previous = ticket.attachment.name if ticket.attachment else ""
    ticket.attachment.save(name, upload, save=False)
    ticket.attachment_uploaded = False
    ticket.save(update_fields=["attachment", "attachment_uploaded", "updated_at"])
    if previous:
        storage = ticket.attachment.storage
        transaction.on_commit(lambda: storage.delete(previous))
    lifecycle.record(
        session,
        "attachment_added",
        f"Ticket #{ticket.order}: attachment {name} ({upload.size:,} bytes).",
        ticket=ticket,
        actor=actor,
        data={"filename": name, "size": upload.size},
    )
    return ticket


def sessions_with_counts() -> QuerySet[ExportSession]:
    """Sessions with their ticket and exported counts (the list page and the API)."""
    return ExportSession.objects.select_related("created_by").annotate(
        ticket_count=Count("tickets", distinct=True),
        exported_count=Count(
            "tickets",
            filter=Q(tickets__jira_export_status=ExportTicket.ExportStatus.EXPORTED),
            distinct=True,
        ),
    )
