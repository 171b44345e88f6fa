"""WebSocket routes of the exports app (gathered by portal/routing.py through settings)."""

from django.urls import path

from exports.consumers import ExportProgressConsumer

websocket_urlpatterns = [
    path("api/jira/export/progress/<uuid:session_id>", ExportProgressConsumer.as_asgi()),
]
