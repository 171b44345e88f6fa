"""Pages of the exports app under ``/exports/`` (included through settings.PORTAL_PAGE_URLCONFS)."""

from django.urls import path

from exports import views

app_name = "exports"

urlpatterns = [
    path("", views.SessionListView.as_view(), name="session-list"),
    path("new/", views.NewSessionView.as_view(), name="session-new"),
    path("<uuid:pk>/", views.SessionDetailView.as_view(), name="session-detail"),
    path("<uuid:pk>/export/", views.ExportPageView.as_view(), name="session-export"),
    path(
        "<uuid:pk>/tickets/<uuid:ticket_pk>/",
        views.TicketReviewView.as_view(),
        name="ticket-review",
    ),
    path(
        "<uuid:pk>/tickets/<uuid:ticket_pk>/attachment",
        views.TicketAttachmentView.as_view(),
        name="ticket-attachment",
    ),
]
