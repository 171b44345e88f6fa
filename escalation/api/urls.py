"""Routes under ``/api/v1/ci/`` (included by ``portal/api/urls.py``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from escalation.api import views

router = SimpleRouter()
router.trailing_slash = "/?"  # the issue writes the paths without one; accept both
router.register("ci/failures", views.FailureViewSet, basename="ci-failure")
router.register("ci/escalations", views.EscalationViewSet, basename="ci-escalation")

urlpatterns = [
    path("ci/job-passed", views.JobPassedView.as_view(), name="ci-job-passed"),
    path("ci/flaky-tests", views.FlakyTestsView.as_view(), name="ci-flaky-tests"),
    *router.urls,
]
