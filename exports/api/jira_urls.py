"""The seed's ``/api/jira/`` routes (mounted by ``settings.PORTAL_API_PREFIXED_URLCONFS``).

A malformed session id matches no route and answers the /api/ 404 envelope. validate-project and
test-adf-conversion are appended here by their own module.
"""

from django.urls import path

from exports.api import jira_views, validation

urlpatterns = [
    path(
        "export-session/<uuid:session_id>",
        jira_views.ExportSessionView.as_view(),
        name="jira-export-session",
    ),
    path(
        "export-status/<uuid:session_id>",
        jira_views.ExportStatusView.as_view(),
        name="jira-export-status",
    ),
    path(
        "retry-failed/<uuid:session_id>",
        jira_views.RetryFailedView.as_view(),
        name="jira-retry-failed",
    ),
    path(
        "export-results/<uuid:session_id>",
        jira_views.ExportResultsView.as_view(),
        name="jira-export-results",
    ),
    path(
        "validate-project", validation.ValidateProjectView.as_view(), name="jira-validate-project"
    ),
    path(
        "test-adf-conversion/<uuid:session_id>",
        validation.AdfConversionTestView.as_view(),
        name="jira-test-adf-conversion",
    ),
]
