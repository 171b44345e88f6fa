"""The dashboard's live status: a snapshot on connect, a push on each heartbeat, and the heartbeat
task that a worker runs. Consumers go through the real ASGI application (origin check, session
authentication, routing) and the configured channel layer (in memory, or Redis in CI)."""

from __future__ import annotations

import json
import logging
import socket
import uuid

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from portal.asgi import application
from portal.consumers import CLOSE_TRY_AGAIN_LATER
from portal.models import Heartbeat
from portal.services.heartbeat import record_heartbeat
from portal.services.status import STATUS_GROUP
from portal.tasks import record_heartbeat_task
from tests.factories import HeartbeatFactory, UserFactory

RECEIVE_TIMEOUT = 5  # seconds; a push arrives in milliseconds, the bound only ends a failing test
ORIGIN = (b"origin", b"http://localhost")


def session_cookie_for(user) -> bytes:
    """A logged-in session for ``user``, as the login view would store it."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()


class WebsocketClient(ApplicationCommunicator):
    """The few calls of ``channels.testing.WebsocketCommunicator`` the tests need.

    ``channels.testing`` cannot be imported here: its package imports daphne, which the portal
    does not install (uvicorn serves it).
    """

    def __init__(self, path: str, headers: list[tuple[bytes, bytes]]):
        scope = {
            "type": "websocket",
            "path": path,
            "query_string": b"",
            "headers": headers,
            "subprotocols": [],
        }
        super().__init__(application, scope)

    async def connect(self) -> tuple[bool, int | None]:
        """``(True, None)`` when accepted, ``(False, close code)`` when refused."""
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(RECEIVE_TIMEOUT)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        assert response["type"] == "websocket.accept", response
        return True, None

    async def receive_json_from(self, timeout: float = RECEIVE_TIMEOUT) -> dict:
        response = await self.receive_output(timeout)
        assert response["type"] == "websocket.send", response
        return json.loads(response["text"])

    async def disconnect(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(RECEIVE_TIMEOUT)


def communicator(cookie: bytes | None = None, origin: tuple[bytes, bytes] = ORIGIN):
    headers = [origin] + ([(b"cookie", cookie)] if cookie else [])
    return WebsocketClient("/ws/status/", headers)


async def receive_snapshot_where(client, predicate) -> dict:
    """The next snapshot for which ``predicate(status)`` holds, skipping other pushes.

    Other processes sharing the channel layer (in the Redis profile) may push to the same group.
    """
    while True:
        message = await client.receive_json_from(timeout=RECEIVE_TIMEOUT)
        assert message["type"] == "snapshot"
        if predicate(message["status"]):
            return message["status"]


@pytest.fixture
def session_cookie(transactional_db) -> bytes:
    return session_cookie_for(UserFactory(roles=["operators"]))


def test_logged_in_client_receives_a_snapshot_on_connect(session_cookie):
    HeartbeatFactory(worker="celery@snapshot")

    async def scenario():
        client = communicator(session_cookie)
        connected, _ = await client.connect()
        message = await client.receive_json_from(timeout=RECEIVE_TIMEOUT)
        await client.disconnect()
        return connected, message

    connected, message = async_to_sync(scenario)()

    assert connected
    assert message["type"] == "snapshot"
    assert set(message["status"]) == {
        "beat_leader",
        "beat_fencing_token",
        "last_heartbeat",
        "last_heartbeat_worker",
    }
    assert message["status"]["last_heartbeat_worker"] == "celery@snapshot"


def test_anonymous_client_is_closed_without_a_snapshot(transactional_db):
    async def scenario():
        client = communicator()
        connected, code = await client.connect()
        nothing = await client.receive_nothing()
        return connected, code, nothing

    connected, code, nothing = async_to_sync(scenario)()

    assert not connected
    assert code == 4401
    assert nothing


def test_connection_from_a_foreign_origin_is_refused(session_cookie):
    async def scenario():
        client = communicator(session_cookie, origin=(b"origin", b"https://evil.example.com"))
        connected, _ = await client.connect()
        return connected

    assert not async_to_sync(scenario)()


def test_recording_a_heartbeat_pushes_a_new_snapshot_to_connected_clients(session_cookie):
    worker = f"celery@push-{uuid.uuid4().hex[:8]}"

    async def scenario():
        client = communicator(session_cookie)
        assert (await client.connect())[0]
        before = await client.receive_json_from(timeout=RECEIVE_TIMEOUT)
        # Autocommit (transactional_db): the heartbeat commits, and on_commit publishes.
        await database_sync_to_async(record_heartbeat)(worker, beat_identity="beat@test")
        pushed = await receive_snapshot_where(
            client, lambda status: status["last_heartbeat_worker"] == worker
        )
        await client.disconnect()
        return before["status"], pushed

    before, pushed = async_to_sync(scenario)()

    assert before["last_heartbeat_worker"] != worker
    assert pushed["last_heartbeat"] == Heartbeat.objects.get(worker=worker).ran_at.isoformat()


def test_heartbeat_is_pushed_only_after_its_transaction_commits(
    db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        record_heartbeat("celery@pending")

    assert [callback.__name__ for callback in callbacks] == ["publish_status"]


def test_heartbeat_task_run_in_process_writes_a_heartbeat(db):
    before = Heartbeat.objects.count()

    result = record_heartbeat_task.apply()

    assert result.successful()
    heartbeat = Heartbeat.objects.get(pk=result.result)
    assert Heartbeat.objects.count() == before + 1
    assert heartbeat.worker  # the worker's hostname, or this machine's outside a worker


def test_heartbeat_task_records_the_beat_leader_and_fencing_token_it_was_sent_with(db):
    result = record_heartbeat_task.apply(
        headers={"portal_beat_identity": "beat@host-a", "portal_fencing_token": 7}
    )

    heartbeat = Heartbeat.objects.get(pk=result.result)
    assert heartbeat.beat_identity == "beat@host-a"
    assert heartbeat.fencing_token == 7


class QuickPopChannelLayer(RedisChannelLayer):
    """The production layer with a shorter blocking pop, so a test sees many pops in seconds."""

    brpop_timeout = 0.5


@pytest.mark.redis
def test_an_open_dashboard_socket_outlives_many_blocking_pops_without_an_error(
    session_cookie, settings, caplog
):
    # The configured read timeout, scaled with the pop timeout: the ratio is what keeps a read
    # from timing out while Redis still holds the pop (redis-py's default equals the pop's 5 s).
    configured = settings.CHANNEL_LAYERS["default"]
    host = configured["CONFIG"]["hosts"][0]
    ratio = host["socket_timeout"] / RedisChannelLayer.brpop_timeout
    socket_timeout = QuickPopChannelLayer.brpop_timeout * ratio
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": f"{__name__}.QuickPopChannelLayer",
            "CONFIG": {
                **configured["CONFIG"],
                "hosts": [{**host, "socket_timeout": socket_timeout}],
                # Its own prefix: no other test run's heartbeat reaches this group.
                "prefix": f"portal:test-{uuid.uuid4().hex[:8]}",
            },
        }
    }
    hold = 2 * socket_timeout + QuickPopChannelLayer.brpop_timeout
    caplog.set_level(logging.WARNING)

    async def scenario():
        client = communicator(session_cookie)
        assert (await client.connect())[0]
        await client.receive_json_from()
        quiet = await client.receive_nothing(timeout=hold, interval=0.1)
        crashed = client.future.done()
        await get_channel_layer().group_send(
            STATUS_GROUP, {"type": "status.changed", "status": {"after": "the hold"}}
        )
        pushed = await client.receive_json_from()
        await client.disconnect()
        return quiet, crashed, pushed

    quiet, crashed, pushed = async_to_sync(scenario)()

    assert quiet
    assert not crashed
    assert pushed == {"type": "snapshot", "status": {"after": "the hold"}}
    assert [
        record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR
    ] == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_channel_layer_without_redis_closes_the_socket_for_a_retry_with_a_warning(
    session_cookie, settings, caplog
):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": f"redis://127.0.0.1:{closed_port()}/0", "socket_timeout": 2}]
            },
        }
    }
    caplog.set_level(logging.WARNING, logger="portal.consumers")

    async def scenario():
        client = communicator(session_cookie)
        connected, code = await client.connect()
        await client.wait(RECEIVE_TIMEOUT)  # raises if the application failed
        return connected, code

    connected, code = async_to_sync(scenario)()

    assert not connected
    assert code == CLOSE_TRY_AGAIN_LATER
    assert "the channel layer lost Redis" in caplog.text
