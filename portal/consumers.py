"""WebSocket consumer for the dashboard: sends the current status on connect, then pushes.

Progress is state, pushes are hints (DESIGN.md): the snapshot on connect is always complete, so a
client that missed a push loses nothing by reconnecting.
"""

from __future__ import annotations

import contextlib
import logging

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from redis.exceptions import RedisError

from portal.services.status import STATUS_GROUP, status_snapshot

logger = logging.getLogger(__name__)

# "Try again later": the page reconnects and receives a fresh snapshot.
CLOSE_TRY_AGAIN_LATER = 1013


class StatusConsumer(AsyncJsonWebsocketConsumer):
    async def __call__(self, scope, receive, send):
        # A channel layer that loses Redis (a restart, a dropped connection) ends this socket only:
        # closed with a code the page answers by reconnecting, logged once as a warning instead of
        # a traceback from the ASGI server for every open dashboard.
        try:
            await super().__call__(scope, receive, send)
        except RedisError as error:
            logger.warning("dashboard socket closed: the channel layer lost Redis (%s)", error)
            with contextlib.suppress(Exception):  # the client may be gone already
                await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER})

    async def connect(self):
        if not self.scope["user"].is_authenticated:
            await self.close(code=4401)
            return
        await self.channel_layer.group_add(STATUS_GROUP, self.channel_name)
        await self.accept()
        await self.send_json({"type": "snapshot", "status": await sync_to_async(status_snapshot)()})

    async def disconnect(self, code):
        await self.channel_layer.group_discard(STATUS_GROUP, self.channel_name)

    async def status_changed(self, event):
        await self.send_json({"type": "snapshot", "status": event["status"]})
