"""``/api/v1/catalog/items`` and ``/api/v1/requests``: the service catalog (seed 000).

Any signed-in user reads the catalog, submits requests and follows their own; operators (the
Orchestration team among them) see every request and the escalated ones. Thin adapters: the rules
are in ``services.catalog``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from escalation.api.catalog_serializers import (
    CatalogItemSerializer,
    EscalationDetailSerializer,
    RequestCreateSerializer,
    RequestDetailSerializer,
    RequestSerializer,
)
from escalation.filters import CatalogRequestFilterSet
from escalation.models import Request
from escalation.services import catalog
from portal.api.permissions import IsOperator

UUID_PATTERN = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


@extend_schema_view(
    list=extend_schema(summary="The active catalog items and bundles with their components"),
    retrieve=extend_schema(summary="One catalog item or bundle"),
)
class CatalogItemViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CatalogItemSerializer
    permission_classes = [IsAuthenticated]
    lookup_field = "name"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    filter_backends: list = []

    def get_queryset(self):
        return catalog.active_items()


@extend_schema_view(
    list=extend_schema(
        summary="Requests, newest first (yours; every request for operators)",
        description="Filter with ?status=escalated (pending, running, completed, escalated).",
    ),
    retrieve=extend_schema(
        summary="One request with its components' runs", responses=RequestDetailSerializer
    ),
)
class CatalogRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = RequestSerializer
    permission_classes = [IsAuthenticated]
    filterset_class = CatalogRequestFilterSet
    ordering_fields = ["created_at", "updated_at", "status"]
    lookup_url_kwarg = "request_id"
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self):
        requests = catalog.visible_requests(self.request.user)
        if self.action in ("retrieve", "escalation"):
            requests = requests.prefetch_related("executions").select_related(
                "fulfillment__outbox_message"
            )
        return requests.order_by("-created_at")

    def get_serializer_class(self):
        if self.action == "retrieve":
            return RequestDetailSerializer
        if self.action == "create":
            return RequestCreateSerializer
        return RequestSerializer

    @extend_schema(
        summary="Submit a catalog request; it is fulfilled in the background",
        request=RequestCreateSerializer,
        responses={
            201: RequestSerializer,
            400: OpenApiResponse(description="invalid request_data"),
            404: OpenApiResponse(description="no such active catalog item"),
        },
    )
    def create(self, request, *args, **kwargs):
        serializer = RequestCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = catalog.submit(
            request.user,
            serializer.validated_data["catalog_item_id"],
            serializer.validated_data["request_data"],
        )
        return Response(RequestSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Escalated requests, most recent escalation first (operators)",
        responses=RequestSerializer(many=True),  # a page of requests, as the list answers
    )
    @action(detail=False, methods=["get"], permission_classes=[IsOperator])
    def escalated(self, request):
        requests = self.filter_queryset(self.get_queryset()).filter(status=Request.Status.ESCALATED)
        requests = requests.order_by("-escalation_timestamp", "-created_at")
        page = self.paginate_queryset(requests)
        return self.get_paginated_response(RequestSerializer(page, many=True).data)

    @extend_schema(
        summary="Escalation details: partial state, error, ticket and cleanup guidance",
        responses={200: EscalationDetailSerializer, 404: OpenApiResponse(description="unknown")},
    )
    @action(detail=True, methods=["get"])
    def escalation(self, request, request_id=None):
        found = self.get_object()
        return Response(EscalationDetailSerializer(catalog.escalation_details(found)).data)
