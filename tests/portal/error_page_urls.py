"""A test-only URLconf: the portal's routes and error handlers, plus views that fail on purpose
(403/404/500 page tests) and one page per role mixin (role tests)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.urls import path
from django.views import View

from portal.roles import (
    ADMINS,
    QA,
    AdminRequiredMixin,
    OperatorRequiredMixin,
    QARequiredMixin,
    RoleRequiredMixin,
)
from portal.urls import handler403, handler404, handler500  # noqa: F401 - the handlers under test
from portal.urls import urlpatterns as portal_urlpatterns


def fails(request):
    raise RuntimeError("a bug in a view")


def refuses(request):
    raise PermissionDenied("This page needs the qa role.")


class Opened(View):
    def get(self, request):
        return HttpResponse(f"opened by {request.user.get_username()}")


class OperatorsPage(OperatorRequiredMixin, Opened):
    pass


class QAPage(QARequiredMixin, Opened):
    pass


class AdminsPage(AdminRequiredMixin, Opened):
    pass


class QAOrAdminsPage(RoleRequiredMixin, Opened):
    required_roles = (QA, ADMINS)


urlpatterns = [
    path("for/qa-or-admins/", QAOrAdminsPage.as_view()),
    path("for/operators/", OperatorsPage.as_view()),
    path("for/qa/", QAPage.as_view()),
    path("for/admins/", AdminsPage.as_view()),
    path("broken/", fails),
    path("refused/", refuses),
    path("api/v1/broken/", fails),
    path("api/v1/refused/", refuses),
    *portal_urlpatterns,
]
