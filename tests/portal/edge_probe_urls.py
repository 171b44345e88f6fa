"""A test-only URLconf for the API edge: views that echo a body, raise, or raise a chosen error.

Mounted with ``@pytest.mark.urls("tests.portal.edge_probe_urls")`` so the tests go through the
real middleware, parsers, negotiation, authentication, exception handler and renderer.
"""

from __future__ import annotations

from django.urls import path, re_path
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.errors import api_not_found


class EchoView(APIView):
    """Answers the parsed body and the query parameters as received."""

    def get(self, request):
        return Response({"query": dict(request.query_params)})

    def post(self, request):
        return Response({"data": request.data})


class UploadView(APIView):
    """Takes a file upload (like a CI log): answers the sizes it received."""

    parser_classes = [MultiPartParser]

    def post(self, request):
        return Response(
            {
                "files": {name: upload.size for name, upload in request.FILES.items()},
                "fields": {name: len(value) for name, value in request.data.items()},
            }
        )


class BrokenView(APIView):
    """A bug: an exception no handler knows."""

    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("an unexpected failure with a stack")


class RaisingView(APIView):
    """Raises ``error``; tests build it with ``RaisingView.as_view(error=...)``."""

    permission_classes = [AllowAny]
    error: Exception | None = None

    def get(self, request):
        assert self.error is not None
        raise self.error


urlpatterns = [
    path("api/v1/echo/", EchoView.as_view()),
    path("api/v1/upload/", UploadView.as_view()),
    path("api/v1/broken/", BrokenView.as_view()),
    re_path(r"^api/.*$", api_not_found),
]
