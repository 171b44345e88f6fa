"""Pages of the escalation app under ``/ci/`` (included through settings.PORTAL_PAGE_URLCONFS)."""

from django.urls import path, re_path

from escalation import views

app_name = "escalation"

urlpatterns = [
    path("", views.CiHealthView.as_view(), name="ci-health"),
    path("failures/", views.FailureListView.as_view(), name="failure-list"),
    path("failures/<int:pk>/", views.FailureDetailView.as_view(), name="failure-detail"),
    path("failures/<int:pk>/reclassify", views.ReclassifyView.as_view(), name="failure-reclassify"),
    path(
        "failures/<int:pk>/override", views.OverrideRequestView.as_view(), name="failure-override"
    ),
    path(
        "overrides/<int:pk>/approve",
        views.OverrideDecisionView.as_view(decision="approve"),
        name="override-approve",
    ),
    path(
        "overrides/<int:pk>/deny",
        views.OverrideDecisionView.as_view(decision="deny"),
        name="override-deny",
    ),
    path("escalations/", views.EscalationListView.as_view(), name="escalation-list"),
    path("escalations/<int:pk>/", views.EscalationDetailView.as_view(), name="escalation-detail"),
    path("escalations/<int:pk>/resolve", views.ResolveView.as_view(), name="escalation-resolve"),
    path("flaky/", views.FlakyTestsView.as_view(), name="flaky-tests"),
    path("help/", views.HelpView.as_view(), name="help"),
    # The service catalog (seed 000): requests, a request's timeline, a new request.
    path("requests/", views.CatalogRequestListView.as_view(), name="request-list"),
    path("requests/new/", views.CatalogRequestNewView.as_view(), name="request-new"),
    path("requests/<uuid:pk>/", views.CatalogRequestDetailView.as_view(), name="request-detail"),
    path("reports/", views.ReportsIndexView.as_view(), name="reports"),
    re_path(
        r"^reports/daily/(?P<day>\d{4}-\d{2}-\d{2})/$",
        views.DailyReportPageView.as_view(),
        name="report-daily",
    ),
    re_path(
        r"^reports/weekly/(?P<day>\d{4}-\d{2}-\d{2})/$",
        views.WeeklyReportPageView.as_view(),
        name="report-weekly",
    ),
]
