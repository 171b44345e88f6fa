"""The CI pages' WebSocket: a hint on every change (failure reported, grouped, routed, SLA missed,
resolved). Progress is state, pushes are hints (DESIGN.md): the page reloads its live region on a
hint and on connect, and polls every 30 s when the socket is down, so a lost push costs nothing."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from escalation.services.audit import CI_GROUP
from portal.roles import OPERATORS, QA, user_has_role


class CiConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=4401)
            return
        from asgiref.sync import sync_to_async

        allowed = await sync_to_async(
            lambda: user_has_role(user, OPERATORS) or user_has_role(user, QA)
        )()
        if not allowed:
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(CI_GROUP, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello"})

    async def disconnect(self, code):
        await self.channel_layer.group_discard(CI_GROUP, self.channel_name)

    async def ci_changed(self, event):
        await self.send_json(
            {
                "type": "changed",
                "kind": event.get("kind"),
                "escalation": event.get("escalation"),
                "failure": event.get("failure"),
            }
        )
