"""The export engine: a session's tickets become Jira issues, exactly once each (seed 001).

Run by the Celery task ``exports.run_export`` (one per start or retry, its task id the session's
``export_task_id``):

1. Final validation: tickets in dependency order (a cycle fails the export naming it), the project
   reachable and the portal allowed to create issues in it; the project's priorities, assignable
   users and sprints fetched once for the graceful fallbacks.
2. Each ticket in dependency order (``sequential``) or 50 a call (``bulk``): fresh HTML -> ADF,
   the create with fallbacks (an assignee Jira does not know: unassigned; a sprint it does not
   have: none; a priority it does not offer: its default; each a ``ManualFix`` with guidance), the
   key and URL stored at once in their own transaction, the attachment, then the delay.
3. The ``Blocks`` links, each once (``TicketDependency.jira_link_created``).
4. A sweep for orphans (issues with our marker that no ticket owns), then completion.

Hard stops (authentication, network, critical errors) fail the export with the seed's category,
message and recovery actions; a retry resumes at the failed ticket and reuses every stored key.

Exactly once: every create carries the ticket's idempotency key as a Jira label. Before a ticket's
first create an ``ticket_attempt`` event is committed; a ticket with such an event (a retry, a
redelivered task, a crash between Jira's answer and our commit) is looked up by its label before it
is created again (``reconcile_first``), so its issue is found instead of duplicated.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from exports.errors import DependencyCycle, InvalidSession
from exports.models import (
    ExportEvent,
    ExportSession,
    ExportTicket,
    ManualFix,
    OrphanedIssue,
    TicketDependency,
)
from exports.services import jira_project, lifecycle
from exports.services.lifecycle import ExportFailure
from exports.services.ordering import dependency_order
from exports.services.pacing import HEARTBEAT_SECONDS, Pacer, Superseded
from itsm.public import (
    CreatedTicket,
    ItsmError,
    NotConfigured,
    RetryableError,
    UpstreamRejected,
    ValidationFailed,
    client_for,
)

logger = logging.getLogger("exports.engine")

Category = ExportSession.ErrorCategory
TicketStatus = ExportTicket.ExportStatus
FixType = ManualFix.IssueType

ATTEMPT = "ticket_attempt"
EXPORTED = "ticket_exported"
ATTACHMENT_ATTEMPT = "attachment_attempt"
IDEMPOTENCY_LABEL_PREFIX = "portal-idem-"  # itsm's marker label (``portal-idem-<key>``)
BULK_SIZE = 50
LINK_BATCH = 25  # links whose bookkeeping is committed together
AUTH = (401, 403)  # a link refused for these stops the export; any other refusal is a manual fix


def link_concurrency() -> int:
    """Links posted at a time (``EXPORT_LINK_CONCURRENCY``, default 4; 1: one after the other)."""
    return max(1, int(getattr(settings, "EXPORT_LINK_CONCURRENCY", 4)))


def session_label(session_id: Any) -> str:
    """A label on every issue of the session: the orphan sweep searches by it."""
    return f"portal-export-{session_id}"


def sprint_field() -> str:
    return getattr(settings, "EXPORT_JIRA_SPRINT_FIELD", "customfield_10020")


class StopExport(Exception):
    """A hard stop: the export fails with ``failure`` at ``ticket_order``."""

    def __init__(self, failure: ExportFailure, ticket_order: int | None) -> None:
        super().__init__(failure.user_message)
        self.failure = failure
        self.ticket_order = ticket_order


# --- what a failure means to the user ----------------------------------------------------------
RETRY_LATER = ["Retry the export in a few minutes", "Check Jira's status page if it keeps failing"]
ASK_ADMIN_TOKEN = [
    "Ask an administrator to renew the portal's Jira API token",
    "Retry the export once it is fixed",
]
ASK_ADMIN_PERMISSION = [
    "Ask a Jira administrator to grant the portal's account Browse and Create issues in the project",
    "Retry the export once it is fixed",
]
EDIT_TICKET = ["Edit the ticket on the session's review page", "Retry the export"]


def classify(
    exc: Exception, *, ticket: ExportTicket | None = None, project: str = ""
) -> ExportFailure:
    """The seed's error categories for an exception met during the export."""
    where = f"ticket #{ticket.order} \u201c{ticket.title}\u201d" if ticket else "the export"
    if isinstance(exc, DependencyCycle | InvalidSession):
        return ExportFailure(
            Category.USER_FIXABLE, exc.message,
            ["Remove one of the dependencies of the cycle on the review page", "Retry the export"],
            kind="validation",
        )  # fmt: skip
    if isinstance(exc, NotConfigured):
        return ExportFailure(
            Category.ADMIN_REQUIRED, "Jira is not configured for the portal (JIRA_BASE_URL).",
            ["Ask an administrator to configure the Jira connection", "Retry the export"],
            kind="critical",
        )  # fmt: skip
    if isinstance(exc, RetryableError):
        limited = " (rate limited)" if exc.status_code == 429 else ""
        return ExportFailure(
            Category.TEMPORARY,
            f"Jira could not be reached{limited} while exporting {where}: network timeout or "
            "service unavailable. Nothing was lost; a retry resumes here.",
            RETRY_LATER, kind="network",
        )  # fmt: skip
    if isinstance(exc, UpstreamRejected):
        if exc.status_code == 401:
            return ExportFailure(
                Category.ADMIN_REQUIRED,
                "Jira rejected the portal's credentials: the API token expired or was revoked.",
                ASK_ADMIN_TOKEN, kind="auth",
            )  # fmt: skip
        if exc.status_code == 403:
            return ExportFailure(
                Category.ADMIN_REQUIRED,
                f"Jira refused permission in project {project}: the portal's account may not "
                "create issues there (permissions revoked?).",
                ASK_ADMIN_PERMISSION, kind="auth",
            )  # fmt: skip
        fields = set(exc.field_errors)
        if exc.status_code == 404 or "project" in fields:
            return ExportFailure(
                Category.USER_FIXABLE,
                f"Jira project {project} does not exist any more (deleted or renamed).",
                ["Check the session's Jira project key", "Ask a Jira administrator whether the "
                 "project was deleted", "Retry the export"],
                kind="critical",
            )  # fmt: skip
        if "issuetype" in fields:
            return _issue_type_unavailable(ticket, project)
        return ExportFailure(
            Category.USER_FIXABLE,
            f"Jira refused {where}: {exc.message}",
            EDIT_TICKET,
            kind="ticket",
        )
    if isinstance(exc, ValidationFailed):
        if any(error.field == "issue_type" for error in exc.errors):
            return _issue_type_unavailable(ticket, project)
        problems = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
        return ExportFailure(
            Category.USER_FIXABLE, f"{where.capitalize()} is not valid for Jira: {problems}",
            EDIT_TICKET, kind="ticket",
        )  # fmt: skip
    if isinstance(exc, ItsmError):
        return ExportFailure(
            Category.TEMPORARY, f"Jira failed while exporting {where}: {exc.message}",
            RETRY_LATER, kind="network",
        )  # fmt: skip
    if isinstance(exc, SoftTimeLimitExceeded):
        return ExportFailure(
            Category.TEMPORARY,
            "The export ran out of its time limit. A retry resumes where it stopped.",
            ["Retry the export", "Ask an administrator to raise EXPORT_MAX_TICKETS' time budget"],
            kind="network",
        )  # fmt: skip
    return ExportFailure(
        Category.TEMPORARY, f"The export failed unexpectedly at {where} ({type(exc).__name__}).",
        ["Retry the export", "Contact an administrator if it fails again"], kind="critical",
    )  # fmt: skip


def _issue_type_unavailable(ticket: ExportTicket | None, project: str) -> ExportFailure:
    issue_type = ticket.issue_type if ticket else "the issue type"
    return ExportFailure(
        Category.ADMIN_REQUIRED,
        f"The issue type \u201c{issue_type}\u201d is not available in Jira project {project}.",
        ["Ask a Jira administrator to add the issue type to the project's scheme",
         "Or change the ticket's issue type, then retry"],
        kind="critical",
    )  # fmt: skip


# --- the project's data, for the fallbacks -------------------------------------------------------
@dataclass
class ProjectData:
    """What Jira offers in the project; None where it could not be read (Jira then decides)."""

    priorities: list[dict[str, Any]] | None = None
    users: list[dict[str, Any]] | None = None
    sprints: list[dict[str, Any]] | None = None

    def priority(self, wanted: str) -> str | bool | None:
        """The priority's name; False when Jira does not offer it; None when unknown."""
        if self.priorities is None:
            return None
        for priority in self.priorities:
            if wanted.strip().lower() in (
                str(priority.get("name", "")).lower(),
                str(priority.get("id")),
            ):
                return str(priority["name"])
        return False

    def account(self, wanted: str) -> str | bool | None:
        if self.users is None:
            return None
        needle = wanted.strip().lower()
        for user in self.users:
            names = (user.get("accountId"), user.get("emailAddress"), user.get("displayName"))
            if needle in {str(name).lower() for name in names if name}:
                return str(user["accountId"])
        return False

    def sprint(self, wanted: str) -> int | bool | None:
        if self.sprints is None:
            return None
        needle = wanted.strip().lower()
        for sprint in self.sprints:
            if needle in (str(sprint.get("id")), str(sprint.get("name", "")).lower()):
                return int(sprint["id"])
        return False


FIX_GUIDANCE = {
    FixType.ASSIGNEE_INVALID: (
        "assignee",
        "Assignee \u201c{value}\u201d cannot be assigned issues in {project}; the issue was "
        "created unassigned. Assign it in Jira once the person has access to the project.",
    ),
    FixType.SPRINT_NOT_FOUND: (
        "sprint",
        "Sprint \u201c{value}\u201d was not found (or is closed) in {project}; the issue was "
        "created without a sprint. Move it to the right sprint in Jira.",
    ),
    FixType.PRIORITY_UNAVAILABLE: (
        "priority",
        "Priority \u201c{value}\u201d is not available in {project}; the issue got Jira's default "
        "priority. Set the priority in Jira.",
    ),
}


def convert_description(html: str) -> dict[str, Any] | None:
    """Fresh HTML -> ADF conversion of the ticket's latest edit (exports.adf)."""
    if not html.strip():
        return None
    from exports.adf import html_to_adf

    return html_to_adf(html)


# --- one export run -------------------------------------------------------------------------------
class ExportRun:
    def __init__(
        self,
        session: ExportSession,
        task_id: str,
        client: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        redelivered: bool = False,
    ) -> None:
        self.session = session
        self.session_id = session.pk
        self.task_id = task_id
        self.client = client
        self.project = session.jira_project_key
        self.redelivered = redelivered
        self.pacer = Pacer(lifecycle.ticket_delay_seconds(), sleep=sleep, beat=self.beat)
        self.data = ProjectData()
        self.attempted: set[Any] = set()
        self.beaten_at = time.monotonic()  # the last heartbeat
        # The export's own deadline: Celery enforces time limits only in the prefork pool, and a
        # run must end before the broker's visibility timeout hands its message to another worker.
        self.deadline = time.monotonic() + float(
            getattr(settings, "EXPORT_TASK_SOFT_TIME_LIMIT", 4150)
        )

    # --- state ---------------------------------------------------------------------------
    def beat(self, **fields: Any) -> bool:
        self.beaten_at = time.monotonic()
        return lifecycle.heartbeat(self.session_id, self.task_id, **fields)

    def ensure_ours(self, **fields: Any) -> None:
        """A heartbeat before each step: stops when the export is not this task's any more, or
        when its time is up (a retry resumes)."""
        if not self.beat(**fields):
            raise Superseded
        self.check_deadline()

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            order = (
                ExportTicket.objects.filter(session_id=self.session_id, jira_ticket_key="")
                .order_by("order").values_list("order", flat=True).first()
            )  # fmt: skip
            raise StopExport(classify(SoftTimeLimitExceeded()), order)

    def rate_limit_hint(self) -> Any:
        take = getattr(self.client, "take_rate_limit", None)
        return take() if take else None

    def stop(self, exc: Exception, ticket: ExportTicket | None) -> StopExport:
        failure = classify(exc, ticket=ticket, project=self.project)
        return StopExport(failure, ticket.order if ticket else None)

    # --- the run ---------------------------------------------------------------------------
    def execute(self) -> str:
        tickets = self.validate()
        pending = [t for t in tickets if not t.jira_ticket_key]
        if self.session.export_mode == ExportSession.Mode.BULK:
            self.export_bulk(tickets, pending)
        else:
            self.export_sequential(tickets)
        self.ensure_ours(current_ticket_title="")
        lifecycle.publish(self.session_id)
        self.create_links()
        self.sweep_orphans()
        return "completed" if lifecycle.complete_export(self.session_id, self.task_id) else "stale"

    def validate(self) -> list[ExportTicket]:
        tickets = list(self.session.tickets.order_by("order"))
        depends_on: dict[int, list[int]] = {}
        for blocked, blocker in TicketDependency.objects.filter(
            blocked__session=self.session
        ).values_list("blocked__order", "blocker__order"):
            depends_on.setdefault(blocked, []).append(blocker)
        try:
            ordered = dependency_order(tickets, depends_on)
        except InvalidSession as exc:
            cycle = getattr(exc, "cycle", None)
            raise StopExport(classify(exc), cycle[0] if cycle else None) from exc
        first = ordered[0] if ordered else None
        try:
            granted = self.client.my_permissions(self.project, ["BROWSE_PROJECTS", "CREATE_ISSUES"])
        except ItsmError as exc:
            raise self.stop(exc, None) from exc
        if not all(granted.values()):
            missing = ", ".join(name for name, ok in granted.items() if not ok)
            raise StopExport(
                ExportFailure(
                    Category.ADMIN_REQUIRED,
                    f"The portal's Jira account lacks {missing} in project {self.project}.",
                    ASK_ADMIN_PERMISSION, kind="auth",
                ),
                first.order if first else None,
            )  # fmt: skip
        self.data = self.prefetch(tickets)
        attempted = ExportEvent.objects.filter(
            session=self.session, kind=ATTEMPT, ticket__isnull=False
        ).values_list("ticket_id", flat=True)
        self.attempted = set(attempted)
        return ordered

    def prefetch(self, tickets: list[ExportTicket]) -> ProjectData:
        data = ProjectData()

        def read(call: Callable[[], Any]) -> Any:
            try:
                return call()
            except RetryableError as exc:
                raise self.stop(exc, None) from exc
            except UpstreamRejected as exc:
                if exc.status_code == 401:
                    raise self.stop(exc, None) from exc
                return None  # not readable: Jira's answer to the create decides

        if any(t.priority for t in tickets):
            data.priorities = read(self.client.priorities)
        if any(t.assignee for t in tickets):
            data.users = read(lambda: self.client.assignable_users(self.project))
        if any(t.sprint for t in tickets):
            # The sprints validate-project offered (one rule: jira_project.project_sprints);
            # none found (no board): numeric sprint ids go to Jira as they are.
            found = read(lambda: jira_project.project_sprints(self.client, self.project))
            data.sprints = (found[0] or None) if found else None
        return data

    # --- one ticket after the other -----------------------------------------------------------
    def export_sequential(self, tickets: list[ExportTicket]) -> None:
        """Each ticket's create, then its attachment, then the delay.

        One commit between two creates where nothing comes between them (no attachment, no
        delay): the key Jira just gave, the heartbeat and the next ticket's attempt marker. The
        marker is still committed before its create is sent, the key before anything else is
        sent; otherwise the key is committed on its own (with the heartbeat) the moment Jira
        answered, and the next marker with the next heartbeat."""
        answered: tuple[ExportTicket, CreatedTicket] | None = None
        for index, ticket in enumerate(tickets):
            if ticket.jira_ticket_key:
                if ticket.attachment and not ticket.attachment_uploaded:
                    self.upload_attachment(ticket)
                continue
            reconcile_first = self.step(answered, ticket)
            answered = None
            try:
                result = self.create_with_fallbacks(ticket, reconcile_first)
            except (ItsmError, InvalidSession, ValueError) as exc:
                raise self.fail_ticket(ticket, exc) from exc
            self.pacer.observe(result.log, self.rate_limit_hint())
            following = tickets[index + 1] if index + 1 < len(tickets) else None
            uploads = bool(ticket.attachment) and not ticket.attachment_uploaded
            if following is None or following.jira_ticket_key or uploads or self.pacer.delay > 0:
                self.step((ticket, result), None)
                if uploads:
                    self.upload_attachment(ticket)
                if following is not None:
                    self.pacer.pause()
            else:
                answered = (ticket, result)

    def step(
        self, answered: tuple[ExportTicket, CreatedTicket] | None, upcoming: ExportTicket | None
    ) -> bool:
        """One transaction between two creates: the ``answered`` ticket's key, the heartbeat (the
        upcoming ticket's title for the progress) and the ``upcoming`` ticket's attempt marker.
        Returns whether the upcoming ticket may have been sent before (look it up first).

        The key is committed whatever became of the export; the marker only while the export is
        still this task's and within its time (else Superseded or the time-limit stop)."""
        now = timezone.now()
        fields = {"current_ticket_title": upcoming.title[:255]} if upcoming is not None else {}
        in_time = time.monotonic() <= self.deadline
        marked = before = False
        with transaction.atomic():
            if answered is not None:
                self.write_key(*answered, now=now)
            ours = self.beat(**fields)
            if ours and in_time and upcoming is not None:
                before, marked = self.write_attempt(upcoming)
            if answered is not None or marked:
                transaction.on_commit(lambda: lifecycle.publish(self.session_id), robust=True)
        if answered is not None:
            self.key_stored(*answered, now=now)
        if marked:
            self.attempted.add(upcoming.pk)
        if not ours:
            raise Superseded
        if not in_time:
            self.check_deadline()
        return before

    def fail_ticket(self, ticket: ExportTicket, exc: Exception) -> StopExport:
        stop = self.stop(exc, ticket)
        with transaction.atomic():
            ExportTicket.objects.filter(pk=ticket.pk).update(
                jira_export_status=TicketStatus.FAILED, error_message=stop.failure.user_message
            )
            lifecycle.record(
                self.session_id, "ticket_failed", stop.failure.user_message, ticket=ticket,
                from_status=ticket.jira_export_status, to_status=TicketStatus.FAILED,
                data=stop.failure.as_dict(),
            )  # fmt: skip
        return stop

    def plan_fields(self, ticket: ExportTicket) -> dict[str, Any]:
        """The create's extra fields, with the fallbacks the project's data already decides."""
        extra: dict[str, Any] = {"labels": [*ticket.labels, session_label(self.session_id)]}
        if ticket.priority:
            name = self.data.priority(ticket.priority)
            if name is False:
                self.manual_fix(ticket, FixType.PRIORITY_UNAVAILABLE)
            else:
                extra["priority"] = {"name": name or ticket.priority}
        if ticket.assignee:
            account = self.data.account(ticket.assignee)
            if account is False:
                self.manual_fix(ticket, FixType.ASSIGNEE_INVALID)
            else:
                extra["assignee"] = account or ticket.assignee
        if ticket.sprint:
            sprint = self.data.sprint(ticket.sprint)
            if sprint is False:
                self.manual_fix(ticket, FixType.SPRINT_NOT_FOUND)
            elif sprint is not None:
                extra[sprint_field()] = sprint
            elif ticket.sprint.isdigit():
                extra[sprint_field()] = int(ticket.sprint)
            else:
                self.manual_fix(ticket, FixType.SPRINT_NOT_FOUND)
        return extra

    def fall_back(
        self, ticket: ExportTicket, extra: dict[str, Any], rejected: Iterable[str]
    ) -> bool:
        """Drops the fields Jira refused that have a graceful fallback; True when any was."""
        dropped = False
        for name in set(rejected):
            if name in ("assignee",) and "assignee" in extra:
                del extra["assignee"]
                self.manual_fix(ticket, FixType.ASSIGNEE_INVALID)
                dropped = True
            elif name == "priority" and "priority" in extra:
                del extra["priority"]
                self.manual_fix(ticket, FixType.PRIORITY_UNAVAILABLE)
                dropped = True
            elif name in (sprint_field(), "sprint") and sprint_field() in extra:
                del extra[sprint_field()]
                self.manual_fix(ticket, FixType.SPRINT_NOT_FOUND)
                dropped = True
        return dropped

    def mark_attempt(self, ticket: ExportTicket) -> bool:
        """Commits that the ticket's create is about to be sent; True when it may have been sent
        before (its issue must then be looked up by its marker first)."""
        before = self.redelivered or ticket.pk in self.attempted
        if ticket.pk not in self.attempted:
            lifecycle.record(self.session_id, *self.attempt_event(ticket))
            self.attempted.add(ticket.pk)
        return before

    def attempt_event(self, ticket: ExportTicket) -> tuple[str, str, dict[str, Any]]:
        return (
            ATTEMPT, f"Creating #{ticket.order} in {self.project}.",
            {"ticket": ticket, "data": {"idempotency_key": ticket.idempotency_key}},
        )  # fmt: skip

    def write_attempt(self, ticket: ExportTicket) -> tuple[bool, bool]:
        """The attempt marker inside the caller's transaction, without its hint: (may have been
        sent before, marker written now)."""
        before = self.redelivered or ticket.pk in self.attempted
        if ticket.pk in self.attempted:
            return before, False
        kind, message, extra = self.attempt_event(ticket)
        lifecycle.audit_row(self.session_id, kind, message, **extra).save(force_insert=True)
        return before, True

    def create_with_fallbacks(
        self, ticket: ExportTicket, reconcile_first: bool | None = None
    ) -> CreatedTicket:
        """The create with its fallbacks; marks the attempt first unless the caller did
        (``reconcile_first`` then says whether it may have been sent before)."""
        description = convert_description(ticket.description_html)
        extra = self.plan_fields(ticket)
        if reconcile_first is None:
            reconcile_first = self.mark_attempt(ticket)
        while True:
            try:
                return self.client.create_ticket(
                    self.project, ticket.title, description, ticket.issue_type or "Task", extra,
                    idempotency_key=ticket.idempotency_key, reconcile_first=reconcile_first,
                )  # fmt: skip
            except ValidationFailed as exc:
                if not self.fall_back(ticket, extra, (e.field for e in exc.errors)):
                    raise
            except UpstreamRejected as exc:
                if exc.status_code != 400 or not self.fall_back(ticket, extra, exc.field_errors):
                    raise
            except RetryableError as exc:
                reconcile_first = reconcile_first or exc.sent
                if exc.status_code != 429 or not self.pacer.may_wait_for_limit(exc.retry_after):
                    raise
                self.pacer.wait_for_limit(exc.retry_after)

    def store_key(self, ticket: ExportTicket, created: CreatedTicket) -> None:
        """The key and URL, committed the moment Jira answered (whatever became of the session)."""
        now = timezone.now()
        with transaction.atomic():
            self.write_key(ticket, created, now=now)
            transaction.on_commit(lambda: lifecycle.publish(self.session_id), robust=True)
        self.key_stored(ticket, created, now=now)

    def write_key(self, ticket: ExportTicket, created: CreatedTicket, *, now: Any) -> None:
        """The key's UPDATE and audit row, inside the caller's transaction (no hint)."""
        ExportTicket.objects.filter(pk=ticket.pk).update(
            jira_issue_id=created.id,
            jira_ticket_key=created.key,
            jira_ticket_url=created.url,
            jira_export_status=TicketStatus.EXPORTED,
            exported_at=now,
            error_message="",
            updated_at=now,
        )
        self.exported_event(ticket, created).save(force_insert=True)

    def exported_event(self, ticket: ExportTicket, created: CreatedTicket) -> ExportEvent:
        return lifecycle.audit_row(
            self.session_id, EXPORTED, f"#{ticket.order} is {created.key}.", ticket=ticket,
            from_status=ticket.jira_export_status, to_status=TicketStatus.EXPORTED,
            data={"jira_key": created.key, "reconciled": created.reconciled,
                  "attempts": created.log.as_list() if created.log else []},
        )  # fmt: skip

    @staticmethod
    def key_stored(ticket: ExportTicket, created: CreatedTicket, *, now: Any) -> None:
        """The committed key on the in-memory ticket."""
        ticket.jira_issue_id, ticket.jira_ticket_key = created.id, created.key
        ticket.jira_ticket_url, ticket.jira_export_status = created.url, TicketStatus.EXPORTED
        ticket.exported_at = ticket.updated_at = now

    def manual_fix(self, ticket: ExportTicket, issue_type: str) -> None:
        attribute, text = FIX_GUIDANCE[issue_type]
        action = text.format(value=getattr(ticket, attribute), project=self.project)
        self.record_fix(ticket, issue_type, action)

    def record_fix(self, ticket: ExportTicket, issue_type: str, action: str) -> None:
        _, created = ManualFix.objects.get_or_create(
            ticket=ticket, issue_type=issue_type,
            defaults={"session_id": self.session_id, "recommended_action": action},
        )  # fmt: skip
        if created:
            lifecycle.record(
                self.session_id, "manual_fix", action, ticket=ticket,
                data={"issue_type": issue_type},
            )  # fmt: skip

    # --- attachments ---------------------------------------------------------------------------
    def upload_attachment(self, ticket: ExportTicket) -> None:
        """Uploads the ticket's attachment once: an upload that may have been sent before (an
        earlier run, a redelivery) first looks for the file on the issue."""
        filename = os.path.basename(ticket.attachment.name)
        key = ticket.jira_ticket_key
        try:
            again = self.redelivered or (
                ExportEvent.objects.filter(ticket=ticket, kind=ATTACHMENT_ATTEMPT).exists()
            )
            with ticket.attachment.open("rb") as handle:
                content = handle.read()
            if not again:
                lifecycle.record(self.session_id, ATTACHMENT_ATTEMPT, filename, ticket=ticket)
            mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            self.client.add_attachment(key, filename, content, mime, reconcile_first=again)
        except OSError as exc:
            self.record_fix(
                ticket, FixType.ATTACHMENT_FAILED,
                f"The attachment {filename} could not be read ({type(exc).__name__}); attach it "
                f"to {key} in Jira by hand.",
            )  # fmt: skip
            return
        except UpstreamRejected as exc:
            if exc.status_code == 401:
                raise self.fail_ticket(ticket, exc) from exc
            self.record_fix(
                ticket, FixType.ATTACHMENT_FAILED,
                f"Jira refused the attachment {filename} ({exc.message}); attach it to {key} in "
                "Jira by hand.",
            )  # fmt: skip
            return
        except ItsmError as exc:
            raise self.fail_ticket(ticket, exc) from exc
        self.mark_uploaded(ticket, filename)

    def mark_uploaded(self, ticket: ExportTicket, filename: str) -> None:
        with transaction.atomic():
            ExportTicket.objects.filter(pk=ticket.pk).update(attachment_uploaded=True)
            lifecycle.record(self.session_id, "attachment_uploaded", filename, ticket=ticket)
        ticket.attachment_uploaded = True

    # --- bulk mode -------------------------------------------------------------------------------
    def export_bulk(self, tickets: list[ExportTicket], pending: list[ExportTicket]) -> None:
        """Up to 50 creates a call, with the same per-ticket status, fallbacks and resume."""
        pending_ids = {t.pk for t in pending}
        queue = [t for t in tickets if t.pk in pending_ids]
        for offset in range(0, len(queue), BULK_SIZE):
            chunk = queue[offset : offset + BULK_SIZE]
            sent_before = self.mark_chunk(chunk)
            to_send: list[tuple[ExportTicket, dict[str, Any]]] = []
            for ticket in chunk:
                try:
                    if ticket.pk in sent_before and self.reconcile(ticket):
                        continue
                    fields = self.client.issue_fields(
                        self.project, ticket.title, convert_description(ticket.description_html),
                        ticket.issue_type or "Task", self.plan_fields(ticket),
                        ticket.idempotency_key,
                    )  # fmt: skip
                except (ItsmError, ValueError) as exc:
                    raise self.fail_ticket(ticket, exc) from exc
                to_send.append((ticket, {"fields": fields}))
            if to_send:
                self.send_bulk(to_send)
            for ticket in chunk:
                if ticket.attachment and not ticket.attachment_uploaded:
                    self.upload_attachment(ticket)
            if offset + BULK_SIZE < len(queue):
                self.pacer.pause()
        # Tickets created before (an earlier run) may still lack their attachment.
        for ticket in tickets:
            if (
                ticket.pk not in pending_ids
                and ticket.attachment
                and not ticket.attachment_uploaded
            ):
                self.upload_attachment(ticket)

    def mark_chunk(self, chunk: list[ExportTicket]) -> set[Any]:
        """One transaction before a bulk call: the heartbeat and every attempt marker of the
        chunk, one hint. Returns the tickets that may have been sent before (looked up first)."""
        self.check_deadline()
        sent_before = {t.pk for t in chunk if self.redelivered or t.pk in self.attempted}
        new = [t for t in chunk if t.pk not in self.attempted]
        with transaction.atomic():
            if not self.beat(current_ticket_title=chunk[0].title[:255]):
                raise Superseded
            rows = []
            for ticket in new:
                kind, message, extra = self.attempt_event(ticket)
                rows.append(lifecycle.audit_row(self.session_id, kind, message, **extra))
            lifecycle.record_many(self.session_id, rows)
        self.attempted.update(t.pk for t in new)
        return sent_before

    def store_keys(self, answered: list[tuple[ExportTicket, CreatedTicket]]) -> None:
        """The keys of one bulk call in one transaction the moment Jira answered (one UPDATE, one
        INSERT of audit rows, one hint), whatever became of the export."""
        if not answered:
            return
        now = timezone.now()
        rows = [self.exported_event(ticket, created) for ticket, created in answered]
        with transaction.atomic():
            update_keys(answered, now)
            lifecycle.record_many(self.session_id, rows)
            self.beat()
        for ticket, created in answered:
            self.key_stored(ticket, created, now=now)

    def reconcile(self, ticket: ExportTicket) -> bool:
        """A ticket that may have been created before: found by its marker and stored."""
        found = self.client.find_by_idempotency_key(ticket.idempotency_key)
        if not found:
            return False
        key = str(found["key"])
        self.store_key(
            ticket, CreatedTicket("jira", str(found["id"]), key, self.client.browse_url(key), True)
        )
        return True

    def send_bulk(self, to_send: list[tuple[ExportTicket, dict[str, Any]]]) -> None:
        while True:
            try:
                result = self.client.bulk_create([payload for _, payload in to_send])
                break
            except RetryableError as exc:
                # Bulk create is not retried ambiguously by the client; a 429 says nothing was
                # done, so it is waited out here like a sequential create's.
                if (
                    exc.status_code != 429
                    or exc.sent
                    or not self.pacer.may_wait_for_limit(exc.retry_after)
                ):
                    raise self.fail_ticket(to_send[0][0], exc) from exc
                self.pacer.wait_for_limit(exc.retry_after)
            except ItsmError as exc:
                raise self.fail_ticket(to_send[0][0], exc) from exc
        self.store_keys(
            [(to_send[index][0], created) for index, created in sorted(result.created.items())]
        )
        self.pacer.observe(None, self.rate_limit_hint())
        # Refused elements go through the sequential create, which takes the fallbacks (a
        # refused element was not created, so nothing can be duplicated).
        for failure in sorted(result.failed, key=lambda f: f.index):
            ticket = to_send[failure.index][0]
            self.ensure_ours(current_ticket_title=ticket.title[:255])
            try:
                created = self.create_with_fallbacks(ticket)
            except (ItsmError, InvalidSession, ValueError) as exc:
                raise self.fail_ticket(ticket, exc) from exc
            self.store_key(ticket, created)

    # --- links and orphans ----------------------------------------------------------------------
    def create_links(self) -> None:
        """Each ``Blocks`` link once. Jira keeps one link per pair and type (posting it again is
        harmless, and it has no bulk link call), so up to ``EXPORT_LINK_CONCURRENCY`` links are
        posted at a time while Jira has not pushed back (one at a time once it has), and their
        bookkeeping is committed per ``LINK_BATCH`` links, with the heartbeat before each batch
        (and every 20 s within one), and for the links made so far when the export stops."""
        links = list(
            TicketDependency.objects.filter(
                blocked__session_id=self.session_id, jira_link_created=False
            )
            .select_related("blocker", "blocked")
            .order_by("blocked__order", "blocker__order")
        )
        if not links:
            return
        workers = link_concurrency()
        pacer = self.pacer
        if pacer.rate_limited_calls or pacer.near_limit_calls or pacer.delay > pacer.base_delay:
            workers = 1  # Jira pushed back during this export: one call at a time
        pool = ThreadPoolExecutor(workers, "export-links") if workers > 1 else None
        made: list[TicketDependency] = []
        try:
            for offset in range(0, len(links), LINK_BATCH):
                batch = links[offset : offset + LINK_BATCH]
                self.ensure_ours()
                answers = pool.map(self.post_link, batch) if pool else map(self.post_link, batch)
                for link, error in zip(batch, answers, strict=False):
                    if error is None:
                        made.append(link)
                    elif isinstance(error, UpstreamRejected) and error.status_code not in AUTH:
                        self.record_fix(
                            link.blocked, FixType.LINK_FAILED,
                            f"Jira refused the link {link.blocker.jira_ticket_key} blocks "
                            f"{link.blocked.jira_ticket_key} ({error.message}); add it in Jira.",
                        )  # fmt: skip
                    else:
                        raise self.stop(error, link.blocked) from error
                    if time.monotonic() - self.beaten_at > HEARTBEAT_SECONDS:
                        self.ensure_ours()  # slow links: the reaper must not take us for dead
                self.links_created(made)
                made = []
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            self.links_created(made)

    def post_link(self, link: TicketDependency) -> ItsmError | None:
        """One link (in a pool thread: HTTP only, no database); its error, or None."""
        try:
            self.client.link_issues(link.blocker.jira_ticket_key, link.blocked.jira_ticket_key)
        except ItsmError as exc:
            return exc
        return None

    def links_created(self, made: list[TicketDependency]) -> None:
        if not made:
            return
        with transaction.atomic():
            TicketDependency.objects.filter(pk__in=[link.pk for link in made]).update(
                jira_link_created=True
            )
            count = TicketDependency.objects.filter(
                blocked__session_id=self.session_id, jira_link_created=True
            ).count()
            ExportSession.objects.filter(pk=self.session_id).update(dependencies_created=count)
            rows = [
                lifecycle.audit_row(
                    self.session_id,
                    "link_created",
                    f"{link.blocker.jira_ticket_key} blocks {link.blocked.jira_ticket_key}",
                    ticket=link.blocked,
                )
                for link in made
            ]
            lifecycle.record_many(self.session_id, rows)

    def sweep_orphans(self) -> None:
        """Issues carrying the session's label that no ticket owns are listed for cleanup.

        Best effort: Jira's search lags its writes, and a failed sweep never fails an export."""
        tickets = {str(t.pk): t for t in self.session.tickets.all()}
        owned = {t.jira_ticket_key for t in tickets.values() if t.jira_ticket_key}
        try:
            issues = list(
                self.client.search(
                    f'labels = "{session_label(self.session_id)}"', fields=["labels"]
                )
            )
        except ItsmError:
            logger.warning("exports.orphan_sweep_failed", extra={"session": str(self.session_id)})
            return
        for issue in issues:
            key = str(issue.get("key", ""))
            if not key or key in owned:
                continue
            labels = (issue.get("fields") or {}).get("labels") or []
            ticket = None
            for label in labels:
                if label.startswith(f"{IDEMPOTENCY_LABEL_PREFIX}export-"):
                    ticket = tickets.get(label.removeprefix(f"{IDEMPOTENCY_LABEL_PREFIX}export-"))
            reason = (
                f"A second issue for ticket #{ticket.order} (its issue is {ticket.jira_ticket_key})."
                if ticket
                else "No ticket of the session owns this issue (the ticket was deleted?)."
            )
            _, created = OrphanedIssue.objects.get_or_create(
                session_id=self.session_id, jira_key=key,
                defaults={"ticket": ticket, "reason": reason},
            )  # fmt: skip
            if created:
                lifecycle.record(self.session_id, "orphan_found", f"{key}: {reason}", ticket=ticket)


KEY_COLUMNS = (
    "jira_issue_id", "jira_ticket_key", "jira_ticket_url", "jira_export_status", "exported_at",
    "error_message", "updated_at",
)  # fmt: skip


def update_keys(answered: list[tuple[ExportTicket, CreatedTicket]], now: Any) -> None:
    """The keys of many tickets in one ``executemany`` (the ORM's ``bulk_update`` builds a CASE
    per column and row: 50 rows took longer than the bulk call itself). Values go through the
    fields' own database preparation, so the rows are what ``update()`` would write."""
    meta = ExportTicket._meta
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in KEY_COLUMNS)
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"  # noqa: S608 (names are ours)
    stamp = meta.get_field("exported_at").get_db_prep_value(now, connection)
    params = [
        (created.id, created.key, created.url, TicketStatus.EXPORTED.value, stamp, "", stamp,
         meta.pk.get_db_prep_value(ticket.pk, connection))
        for ticket, created in answered
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def run_export(
    session_id: Any,
    task_id: Any,
    *,
    redelivered: bool = False,
    client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Runs (or resumes) the session's export if ``task_id`` is its export; returns the outcome:
    ``completed``, ``failed`` or ``stale`` (not this task's: nothing was done)."""
    session = ExportSession.objects.filter(pk=session_id).first()
    if (
        session is None
        or session.status != ExportSession.Status.EXPORTING
        or str(session.export_task_id) != str(task_id)
    ):
        return "stale"
    own_client = client is None
    try:
        if client is None:
            client = client_for("jira")
        run = ExportRun(session, str(task_id), client, sleep=sleep, redelivered=redelivered)
        return run.execute()
    except Superseded:
        return "stale"
    except StopExport as stop:
        lifecycle.fail_export(session_id, task_id, stop.failure, stop.ticket_order)
        return "failed"
    except (NotConfigured, SoftTimeLimitExceeded) as exc:
        order = (
            ExportTicket.objects.filter(session_id=session_id, jira_ticket_key="")
            .order_by("order").values_list("order", flat=True).first()
        )  # fmt: skip
        lifecycle.fail_export(session_id, task_id, classify(exc), order)
        return "failed"
    except Exception as exc:
        # A bug fails this export alone, with its reason stored; the worker logs the stack.
        logger.exception("exports.export_crashed", extra={"session": str(session_id)})
        lifecycle.fail_export(session_id, task_id, classify(exc), None)
        return "failed"
    finally:
        if own_client and client is not None:
            client.close()
