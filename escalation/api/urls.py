"""Routes under ``/api/v1/ci/``, ``/api/v1/webhooks/``, ``/api/v1/catalog/`` and
``/api/v1/requests`` (included by ``portal/api/urls.py``)."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from escalation.api import catalog, reports, views, webhooks

router = SimpleRouter()
router.trailing_slash = "/?"  # the issue writes the paths without one; accept both
router.register("ci/failures", views.FailureViewSet, basename="ci-failure")
router.register("ci/escalations", views.EscalationViewSet, basename="ci-escalation")
router.register("ci/overrides", views.OverrideViewSet, basename="ci-override")
# The service catalog (seed 000): /api/v1/catalog/items and /api/v1/requests[...].
router.register("catalog/items", catalog.CatalogItemViewSet, basename="catalog-item")
router.register("requests", catalog.CatalogRequestViewSet, basename="catalog-request")

urlpatterns = [
    path("ci/job-passed", views.JobPassedView.as_view(), name="ci-job-passed"),
    path("ci/flaky-tests", views.FlakyTestsView.as_view(), name="ci-flaky-tests"),
    path("ci/reports/daily", reports.DailyReportView.as_view(), name="ci-report-daily"),
    path("ci/reports/weekly", reports.WeeklyReportView.as_view(), name="ci-report-weekly"),
    *router.urls,
    # The URL a CI system is given; with or without the trailing slash.
    re_path(r"^webhooks/github/?$", webhooks.GitHubWebhookView.as_view(), name="webhook-github"),
    re_path(r"^webhooks/gitlab/?$", webhooks.GitLabWebhookView.as_view(), name="webhook-gitlab"),
]
