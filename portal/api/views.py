"""The API's own endpoints: the index, the caller's identity, leases and heartbeats."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from portal.api.permissions import IsOperator
from portal.api.serializers import HeartbeatSerializer, LeaseSerializer, MeSerializer
from portal.leader import backend_from_settings
from portal.models import Heartbeat
from portal.pages import MomentFilter


class PortalReadOnlyViewSet(viewsets.ReadOnlyModelViewSet):
    """The base of every read-only API collection: operators' role; filters, ordering and
    pagination come from settings, a FilterSet per model from the subclass."""

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
            "heartbeats": reverse("api:heartbeat-list", request=request),
            "tickets": reverse("api:ticket-list", request=request),
            "ticket_templates": reverse("api:ticket-templates", request=request),
            "schema": reverse("schema", request=request),
            "docs": reverse("api-docs", request=request),
        }
        return Response({"links": links})


class MeView(APIView):
    """Who the token or session belongs to, and which roles it holds."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)


class LeaseListView(APIView):
    """Leader-election leases as the configured backend (database or Redis) holds them now."""

    permission_classes = [IsOperator]

    @extend_schema(responses=LeaseSerializer(many=True))
    def get(self, request):
        # One read for the whole list: a query (or a pipeline) per lease would grow with them.
        records = backend_from_settings().records()
        return Response(LeaseSerializer(records, many=True).data)


class LeaseDetailView(APIView):
    """One lease: who holds it, until when, and its fencing token."""

    permission_classes = [IsOperator]

    @extend_schema(responses=LeaseSerializer)
    def get(self, request, name: str):
        record = backend_from_settings().get(name)
        if record is None:
            raise NotFound(f"No lease named {name!r}.")
        return Response(LeaseSerializer(record).data)


class HeartbeatFilter(django_filters.FilterSet):
    worker = django_filters.CharFilter(lookup_expr="icontains")
    ran_after = MomentFilter(field_name="ran_at", lookup_expr="gte")
    ran_before = MomentFilter(field_name="ran_at", lookup_expr="lt")

    class Meta:
        model = Heartbeat
        fields = ["worker", "fencing_token"]


class HeartbeatViewSet(PortalReadOnlyViewSet):
    """Runs of the periodic heartbeat task: which worker ran it, sent by which beat leader."""

    queryset = Heartbeat.objects.all()
    serializer_class = HeartbeatSerializer
    filterset_class = HeartbeatFilter
    ordering_fields = ["ran_at", "worker"]
