"""Routes under ``/api/v1/`` (included by ``portal/api/urls.py`` through PORTAL_API_URLCONFS)."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from exports.api import sessions

router = SimpleRouter()
router.trailing_slash = "/?"  # the issue writes the paths without one; accept both
router.register("sessions", sessions.SessionViewSet, basename="export-session")

TICKET = (
    rf"^sessions/(?P<pk>{sessions.UUID_PATTERN})/tickets/(?P<ticket_id>{sessions.UUID_PATTERN})"
)

urlpatterns = [
    *router.urls,
    re_path(rf"{TICKET}/?$", sessions.TicketView.as_view(), name="export-ticket"),
    re_path(
        rf"{TICKET}/attachment/?$",
        sessions.TicketAttachmentView.as_view(),
        name="export-ticket-attachment",
    ),
]
