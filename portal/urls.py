from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal import views
from portal.api.errors import api_not_found

admin.site.site_header = "Operations portal administration"
admin.site.site_title = "Operations portal"
admin.site.index_title = "Configuration, overrides and audit"

handler403 = "portal.views.permission_denied"
handler404 = "portal.views.page_not_found"
handler500 = "portal.views.server_error"

urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="prometheus-django-metrics"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    # Each app's pages under its prefix, named in settings (the portal names no app).
    *(path(prefix, include(module)) for prefix, module in settings.PORTAL_PAGE_URLCONFS.items()),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        login_required(SpectacularSwaggerView.as_view(url_name="schema")),
        name="api-docs",
    ),
    path("api/v1/", include("portal.api.urls", namespace="api")),
    # Apps' API modules at a prefix of their own (the seed's /api/jira/), named in settings.
    *(
        path(prefix, include(module))
        for prefix, module in getattr(settings, "PORTAL_API_PREFIXED_URLCONFS", {}).items()
    ),
    re_path(r"^api/.*$", api_not_found),
]
