"""WebSocket routes of every app, gathered in one list for asgi.py."""

from django.urls import path

from portal.consumers import StatusConsumer

websocket_urlpatterns = [
    path("ws/status/", StatusConsumer.as_asgi()),
]
