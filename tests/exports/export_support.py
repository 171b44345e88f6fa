"""What the export tests share: Jira pointed at the fakes with no delay, sessions built with
dependencies, the export run inline, and the fake's issues counted per ticket marker."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.core.files.base import ContentFile

from exports.models import ExportSession, ExportTicket, TicketDependency
from exports.services import engine, lifecycle
from tests.factories import ExportSessionFactory, ExportTicketFactory

IDEM = "portal-idem-export-"


@pytest.fixture
def jira(itsm_endpoints, fast_itsm_config, fakes, settings, tmp_path):
    """The fake Jira, no delay between tickets, board 1's sprints, media in a temporary dir."""
    settings.EXPORT_TICKET_DELAY_SECONDS = 0
    settings.EXPORT_JIRA_BOARD_ID = "1"
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return fakes


@pytest.fixture
def dispatched():
    """Records the export tasks the services queue (the tests run them inline)."""
    calls: list[tuple[str, str]] = []
    lifecycle.set_dispatcher(lambda session_id, task_id: calls.append((session_id, task_id)))
    yield calls
    lifecycle.set_dispatcher(None)


def make_session(
    count: int = 3,
    *,
    depends: dict[int, list[int]] | None = None,
    mode: str = ExportSession.Mode.SEQUENTIAL,
    **ticket_fields: dict[int, dict[str, Any]],
) -> ExportSession:
    """A session of ``count`` tickets (orders 1..count); ``depends`` maps an order to the orders
    it depends on; ``fields={order: {...}}`` sets a ticket's fields."""
    session = ExportSessionFactory(jira_project_key="OPS", export_mode=mode)
    per_ticket = ticket_fields.get("fields", {})
    tickets = {}
    for order in range(1, count + 1):
        tickets[order] = ExportTicketFactory(
            session=session,
            order=order,
            title=f"Ticket {order}",
            description_html=f"<h2>Step {order}</h2><p>Do <strong>step {order}</strong>.</p>",
            **per_ticket.get(order, {}),
        )
    for blocked, blockers in (depends or {}).items():
        for blocker in blockers:
            TicketDependency.objects.create(blocker=tickets[blocker], blocked=tickets[blocked])
    return session


def attach(ticket: ExportTicket, name: str = "design.txt", content: bytes = b"spec v1\n") -> None:
    ticket.attachment.save(name, ContentFile(content), save=True)


def start(session: ExportSession) -> str:
    return str(lifecycle.start_export(session.pk).session.export_task_id)


def run(session: ExportSession, task_id: str | None = None, **kwargs: Any) -> str:
    session.refresh_from_db()
    return engine.run_export(session.pk, task_id or str(session.export_task_id), **kwargs)


def export(session: ExportSession, **kwargs: Any) -> str:
    """Starts the session's export and runs it inline."""
    return run(session, start(session), **kwargs)


def issues_by_ticket(fakes) -> Counter:
    """How many issues the fake Jira holds per ticket marker."""
    counts: Counter = Counter()
    for issue in fakes.state("jira")["issues"]:
        for label in issue["labels"]:
            if label.startswith(IDEM):
                counts[label.removeprefix(IDEM)] += 1
    return counts


def assert_exactly_once(fakes, session: ExportSession) -> None:
    counts = issues_by_ticket(fakes)
    tickets = list(session.tickets.all())
    assert {str(t.pk): counts[str(t.pk)] for t in tickets} == {str(t.pk): 1 for t in tickets}
    assert sum(counts.values()) == len(tickets)
    keys = {issue["key"] for issue in fakes.state("jira")["issues"]}
    assert {t.jira_ticket_key for t in tickets} == keys
