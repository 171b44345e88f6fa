"""Pages of the itsm app, under ``/itsm/`` (included by ``portal/urls.py``)."""

from django.urls import path

from itsm import views

app_name = "itsm"

urlpatterns = [
    path("tickets/", views.TicketListView.as_view(), name="ticket-list"),
    path("tickets/new/", views.NewTicketView.as_view(), name="template-new-ticket"),
    path("tickets/<int:pk>/", views.TicketDetailView.as_view(), name="ticket-detail"),
]
