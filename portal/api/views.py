"""The API's own endpoints: the index, the caller's identity, and the leader-election leases."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from portal.api.permissions import IsOperator
from portal.api.serializers import LeaseSerializer, MeSerializer
from portal.models import Lease


class PortalReadOnlyViewSet(viewsets.ReadOnlyModelViewSet):
    """The base of every read-only API list: operators' role, filters and ordering from settings."""

    permission_classes = [IsOperator]


class ApiRootView(APIView):
    """Links to every collection of the API, for people and for clients discovering it."""

    @extend_schema(
        responses=inline_serializer(
            "ApiRoot", fields={"links": serializers.DictField(child=serializers.URLField())}
        )
    )
    def get(self, request):
        links = {
            "me": reverse("api:me", request=request),
            "leases": reverse("api:lease-list", request=request),
            "schema": reverse("schema", request=request),
            "docs": reverse("api-docs", request=request),
        }
        return Response({"links": links})


class MeView(APIView):
    """Who the token or session belongs to, and which roles it holds."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)


class LeaseFilter(django_filters.FilterSet):
    holder_identity = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Lease
        fields = ["name", "holder_identity"]


class LeaseViewSet(PortalReadOnlyViewSet):
    """Leader-election leases: who holds each one, since when, and its fencing token."""

    queryset = Lease.objects.all()
    serializer_class = LeaseSerializer
    filterset_class = LeaseFilter
    ordering_fields = ["name", "renew_time", "lease_transitions"]
    lookup_field = "name"
