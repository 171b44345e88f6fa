"""Routes under ``/api/v1/`` (included by ``portal/api/urls.py`` through PORTAL_API_URLCONFS)."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from exports.api import sessions

router = SimpleRouter()
router.trailing_slash = "/?"  # the issue writes the paths without one; accept both
router.register("sessions", sessions.SessionViewSet, basename="export-session")

urlpatterns = [
    *router.urls,
    re_path(
        rf"^sessions/(?P<pk>{sessions.UUID_PATTERN})/tickets/(?P<ticket_id>{sessions.UUID_PATTERN})"
        r"/attachment/?$",
        sessions.TicketAttachmentView.as_view(),
        name="export-ticket-attachment",
    ),
]
