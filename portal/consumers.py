"""WebSocket consumer for the dashboard: sends the current status on connect, then pushes.

Progress is state, pushes are hints (DESIGN.md): the snapshot on connect is always complete, so a
client that missed a push loses nothing by reconnecting.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from portal.services.status import STATUS_GROUP, status_snapshot


class StatusConsumer(AsyncJsonWebsocketConsumer):
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
