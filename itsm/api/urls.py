"""Routes under ``/api/v1/tickets/`` (included by ``portal/api/urls.py``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from itsm.api import views

router = SimpleRouter()
router.trailing_slash = "/?"  # seed 003 writes the paths without one; accept both
router.register("tickets", views.TicketViewSet, basename="ticket")

urlpatterns = [
    path("tickets/templates", views.TemplateListView.as_view(), name="ticket-templates"),
    path("tickets/from-template", views.FromTemplateView.as_view(), name="ticket-from-template"),
    path("tickets/preview", views.PreviewView.as_view(), name="ticket-preview"),
    *router.urls,
]
