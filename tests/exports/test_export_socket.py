"""The export progress socket, /api/jira/export/progress/{session_id}, through the real ASGI
application: the current state first (a client connecting mid-export is never behind), then the
state again on every change; the seed's three message types; authentication and roles."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.utils import timezone

from exports.models import ExportSession
from exports.services import lifecycle
from tests.exports import export_support
from tests.exports.export_support import make_session, start
from tests.factories import UserFactory
from tests.portal.test_live_status import ORIGIN, WebsocketClient, session_cookie_for

dispatched = export_support.dispatched


def socket(session_id, cookie: bytes | None) -> WebsocketClient:
    headers = [ORIGIN] + ([(b"cookie", cookie)] if cookie else [])
    return WebsocketClient(f"/api/jira/export/progress/{session_id}", headers)


def connect_and_receive(session_id, user, steps=()):
    """Connects and receives the first message, then after each step (run in a thread) the
    next one."""
    cookie = session_cookie_for(user) if user is not None else None

    async def scenario():
        client = socket(session_id, cookie)
        connected, code = await client.connect()
        messages = []
        if connected:
            messages.append(await client.receive_json_from())
            for step in steps:
                await database_sync_to_async(step)()
                messages.append(await client.receive_json_from())
            await client.disconnect()
        return connected, code, messages

    return async_to_sync(scenario)()


@pytest.fixture
def operator(transactional_db):
    return UserFactory(roles=["operators"])


def test_a_client_connecting_mid_export_first_receives_the_current_progress(operator, dispatched):
    session = make_session(4)
    start(session)
    ExportSession.objects.filter(pk=session.pk).update(current_ticket_title="Ticket 3")
    session.tickets.filter(order__in=[1, 2]).update(
        jira_export_status="exported", jira_ticket_key="OPS-9", exported_at=timezone.now()
    )

    connected, _, (message,) = connect_and_receive(session.pk, operator)

    assert connected
    assert message == {
        "type": "export_progress",
        "session_id": str(session.pk),
        "status": "exporting",
        "progress_percentage": 50.0,
        "current_stage": "Creating ticket 3 of 4: Ticket 3",
        "tickets_completed": 2,
        "tickets_failed": 0,
        "total_tickets": 4,
        "estimated_time_remaining_minutes": message["estimated_time_remaining_minutes"],
        "current_jira_project": "OPS",
    }
    assert isinstance(message["estimated_time_remaining_minutes"], int)


def test_each_change_pushes_the_new_state(operator, dispatched):
    session = make_session(2)
    task_id = start(session)

    def first_ticket_exported():
        ticket = session.tickets.get(order=1)
        session.tickets.filter(pk=ticket.pk).update(
            jira_export_status="exported", jira_ticket_key="OPS-1", exported_at=timezone.now()
        )
        lifecycle.record(session.pk, "ticket_exported", "#1 is OPS-1", ticket=ticket)

    def then_it_fails():
        lifecycle.fail_export(
            session.pk, task_id,
            lifecycle.ExportFailure("temporary", "Network timeout connecting to Jira", ["Retry"]),
            2,
        )  # fmt: skip

    _, _, messages = connect_and_receive(
        session.pk, operator, steps=[first_ticket_exported, then_it_fails]
    )

    assert [m["type"] for m in messages[:2]] == ["export_progress", "export_progress"]
    assert messages[1]["tickets_completed"] == 1 and messages[1]["progress_percentage"] == 50.0
    assert messages[2] == {
        "type": "export_failed",
        "session_id": str(session.pk),
        "status": "failed",
        "failed_at_ticket": 2,
        "error_category": "temporary",
        "retry_available": True,
        "error_message": "Network timeout connecting to Jira",
        "recovery_actions": ["Retry"],
    }


def test_a_completed_export_sends_the_completion_message(operator, dispatched):
    session = make_session(2)
    task_id = start(session)
    session.tickets.update(jira_export_status="exported", jira_ticket_key="OPS-1")
    lifecycle.complete_export(session.pk, task_id)

    _, _, (message,) = connect_and_receive(session.pk, operator)

    assert message["type"] == "export_complete" and message["status"] == "completed"
    assert message["tickets_created"] == 2 and message["manual_fixes_needed"] == 0
    assert {"dependencies_created", "total_processing_time_minutes"} <= set(message)


def test_qa_may_watch_an_export(transactional_db, dispatched):
    session = make_session(1)
    connected, _, _ = connect_and_receive(session.pk, UserFactory(roles=["qa"]))
    assert connected


@pytest.mark.parametrize(
    ("who", "code"), [("anonymous", 4401), ("no role", 4403), ("unknown session", 4404)]
)
def test_the_socket_refuses_who_may_not_watch(transactional_db, who, code):
    session = make_session(1)
    user = {"anonymous": None, "no role": UserFactory()}.get(who, UserFactory(roles=["operators"]))
    session_id = uuid.uuid4() if who == "unknown session" else session.pk

    connected, close_code, _ = connect_and_receive(session_id, user)

    assert not connected and close_code == code


@pytest.mark.parametrize(
    "frame", [{"text": "not json"}, {"text": "\x00"}, {"bytes": b"\xff\x00"}, {"text": "[]"}]
)
def test_any_frame_from_the_client_asks_for_the_state_again_never_an_error(operator, frame):
    session = make_session(1)
    cookie = session_cookie_for(operator)

    async def scenario():
        client = socket(session.pk, cookie)
        assert await client.connect() == (True, None)
        first = await client.receive_json_from()
        await client.send_input({"type": "websocket.receive", **frame})
        again = await client.receive_json_from()
        await client.disconnect()
        return first, again

    first, again = async_to_sync(scenario)()

    assert again == first and again["type"] == "export_progress"
