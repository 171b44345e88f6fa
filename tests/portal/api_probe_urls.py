"""A test-only URLconf: one DRF endpoint that accepts a JSON body, for the error-envelope tests.

The portal's own API is read-only so far; this endpoint lets the tests send malformed JSON and
invalid fields through the real parsers, authentication and exception handler.
"""

from __future__ import annotations

from django.urls import path, re_path
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.errors import api_not_found


class ProbeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=20)
    priority = serializers.IntegerField(min_value=1, max_value=5)


class ProbeView(APIView):
    def post(self, request):
        serializer = ProbeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("api/v1/probe/", ProbeView.as_view()),
    re_path(r"^api/.*$", api_not_found),
]
