"""WebSocket routes of the escalation app (gathered by portal/routing.py through settings)."""

from django.urls import path

from escalation.consumers import CiConsumer

websocket_urlpatterns = [
    path("ws/ci/", CiConsumer.as_asgi()),
]
