"""Pages of the portal itself: the dashboard shell, liveness and readiness."""

from __future__ import annotations

import logging
import os

from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import DatabaseError, connections
from django.http import HttpResponse, HttpResponseServerError, JsonResponse
from django.template import loader
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from portal.api.errors import api_not_found, api_server_error, envelope
from portal.celery import app as celery_app
from portal.overview import overview_sections
from portal.roles import user_roles
from portal.services.status import status_snapshot

logger = logging.getLogger(__name__)


class DashboardView(LoginRequiredMixin, TemplateView):
    template_name = "portal/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["status"] = status_snapshot()
        context["roles"] = sorted(user_roles(self.request.user))
        context["overview_sections"] = overview_sections(self.request.user)
        return context


@never_cache
def healthz(request) -> JsonResponse:
    """Liveness: the process answers. Touches nothing else, so a slow database never kills it."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"{type(exc).__name__}"
    return None


def _check_broker(timeout: float = 2.0) -> str | None:
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        return f"{type(exc).__name__}"
    return None


@never_cache
def readyz(request) -> JsonResponse:
    """Readiness: the database and the broker answer; 503 with the failing checks otherwise."""
    checks = {}
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        error = check()
        checks[name] = {"ok": error is None, **({"error": error} if error else {})}
        if error:
            logger.warning("readiness check %s failed: %s", name, error)
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


# --- error pages ------------------------------------------------------------------------------
# Pages get the portal's own 403/404/500 (templates/403.html, ...); paths under /api/ keep the JSON
# envelope, so an API client never has to parse HTML.


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def permission_denied(request, exception=None):
    """403 handler: the envelope for the API; elsewhere the styled page, naming the role needed."""
    if _is_api(request):
        return JsonResponse(
            envelope("permission_denied", "You do not have permission to perform this action."),
            status=403,
        )
    return defaults.permission_denied(request, exception, template_name="403.html")


def page_not_found(request, exception=None):
    """404 handler: the envelope for the API, the styled page elsewhere."""
    if _is_api(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception, template_name="404.html")


# What a visitor still gets when even the styled 500 page cannot render (a missing static file
# under the manifest storage, a broken template): no database, no context processor, no template.
PLAIN_SERVER_ERROR = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Server error</title>'
    "</head><body><h1>Server error</h1><p>The portal failed to answer this request; it has "
    "been logged. Try again in a moment.</p></body></html>"
)


def server_error(request):
    """500 handler: the envelope for the API, the styled page elsewhere.

    Rendered without the request, so no context processor (the navigation reads the database)
    runs: the database may be what failed.
    """
    if _is_api(request):
        return api_server_error(request)
    try:
        body = loader.render_to_string("500.html", {"request_id": getattr(request, "id", "")})
    except Exception:
        logger.exception("the 500 page could not be rendered; answering the plain one")
        body = PLAIN_SERVER_ERROR
    return HttpResponseServerError(body)


@never_cache
def metrics(request) -> HttpResponse:
    """``/metrics``: every process's metrics (multiprocess files when configured), plus the
    collectors that apps registered to read current state at scrape time (``portal.metrics``)."""
    import prometheus_client
    from prometheus_client import multiprocess

    from portal.metrics import scrape_collectors

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY
    state = prometheus_client.CollectorRegistry()
    for collector in scrape_collectors():
        state.register(collector)
    try:
        extra = prometheus_client.generate_latest(state)
    except DatabaseError:
        logger.exception("metrics: the state collectors could not be read")
        extra = b""
    body = prometheus_client.generate_latest(registry) + extra
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
