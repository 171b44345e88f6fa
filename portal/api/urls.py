"""Everything under ``/api/v1/``: the portal's own routes, then each app's ``api/urls.py``."""

from django.conf import settings
from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from portal.api import views
from portal.api.errors import api_not_found

app_name = "api"

router = SimpleRouter()
router.register("heartbeats", views.HeartbeatViewSet, basename="heartbeat")

urlpatterns = [
    path("", views.ApiRootView.as_view(), name="root"),
    path("me/", views.MeView.as_view(), name="me"),
    path("leases/", views.LeaseListView.as_view(), name="lease-list"),
    path("leases/<str:name>/", views.LeaseDetailView.as_view(), name="lease-detail"),
    path("", include(router.urls)),
    # Each app's API routes, named in settings (the portal names no app).
    *(path("", include(module)) for module in settings.PORTAL_API_URLCONFS),
    # Anything else under /api/ is a JSON 404 in the error envelope, never an HTML page.
    re_path(r"^.*$", api_not_found),
]
