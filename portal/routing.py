"""WebSocket routes of every app, gathered in one list for asgi.py.

Apps name their own routing module in ``settings.PORTAL_WEBSOCKET_URLCONFS`` (each has a
``websocket_urlpatterns`` list): the portal imports no app.
"""

from django.conf import settings
from django.urls import path
from django.utils.module_loading import import_string

from portal.consumers import StatusConsumer

websocket_urlpatterns = [
    path("ws/status/", StatusConsumer.as_asgi()),
    *(
        route
        for module in settings.PORTAL_WEBSOCKET_URLCONFS
        for route in import_string(f"{module}.websocket_urlpatterns")
    ),
]
