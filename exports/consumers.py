"""The export progress socket, ``/api/jira/export/progress/{session_id}`` (seed 001).

On connect it sends the session's current state (``export_progress``, ``export_complete`` or
``export_failed``), then the state again on every hint the export pushes. Progress is state,
pushes are hints (DESIGN.md): each message is read from the database, so a client that connects
mid-export, or missed a push, is never behind. Idle sockets are never closed by the portal: the
ASGI server's protocol pings (uvicorn, every 20 s) keep them and the proxies between alive.
"""

from __future__ import annotations

import contextlib
import logging
import uuid

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from redis.exceptions import RedisError

from exports.models import ExportSession
from exports.services.lifecycle import group_name
from exports.services.progress import socket_message
from portal.roles import OPERATORS, QA, user_has_any_role

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TRY_AGAIN_LATER = 1013


def _current_message(session_id: uuid.UUID) -> dict | None:
    session = ExportSession.objects.filter(pk=session_id).first()
    return socket_message(session) if session else None


class ExportProgressConsumer(AsyncJsonWebsocketConsumer):
    async def __call__(self, scope, receive, send):
        # A channel layer that loses Redis ends this socket only, with a code the page answers
        # by reconnecting (and polling the status endpoint meanwhile).
        try:
            await super().__call__(scope, receive, send)
        except RedisError as error:
            logger.warning("export socket closed: the channel layer lost Redis (%s)", error)
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER})

    async def connect(self):
        self.group = None
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await sync_to_async(user_has_any_role)(user, (OPERATORS, QA)):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.session_id = self.scope["url_route"]["kwargs"]["session_id"]
        message = await sync_to_async(_current_message)(self.session_id)
        if message is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = group_name(self.session_id)
        # Join before reading again: a change between the first read and the join is not missed.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(await sync_to_async(_current_message)(self.session_id) or message)

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """Any frame from the client asks for the current state again. Its content is never
        read: text that is not JSON, or a binary frame, must not end the socket with an error."""
        await self.export_changed({})

    async def export_changed(self, event):
        message = await sync_to_async(_current_message)(self.session_id)
        if message is not None:
            await self.send_json(message)
