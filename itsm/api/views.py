"""``/api/v1/tickets``: template metadata, create from template, preview, ticket records."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from itsm.api.serializers import (
    FromTemplateResultSerializer,
    FromTemplateSerializer,
    FromTemplateTicketSerializer,
    PreviewResultSerializer,
    PreviewSerializer,
    TemplateMetadataSerializer,
    TemplateQuerySerializer,
    TicketSerializer,
)
from itsm.filters import TicketFilterSet
from itsm.models import Ticket
from itsm.services import tickets as ticket_service
from itsm.templates import get_template, list_templates
from portal.api.permissions import IsOperator
from portal.api.schema import error_responses
from portal.api.views import PortalReadOnlyViewSet


class TicketViewSet(PortalReadOnlyViewSet):
    """Ticket records the portal created or is creating (newest first)."""

    queryset = Ticket.objects.select_related("created_by")
    serializer_class = TicketSerializer
    filterset_class = TicketFilterSet
    ordering_fields = ["created_at", "sla_due_at", "id"]


class TemplateListView(APIView):
    """Templates by platform: the file's and the admin's (a database row overrides a file one)."""

    permission_classes = [IsOperator]

    @extend_schema(
        parameters=[TemplateQuerySerializer], responses=TemplateMetadataSerializer(many=True)
    )
    def get(self, request):
        query = TemplateQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        templates = list_templates(query.validated_data.get("platform"))
        return Response(TemplateMetadataSerializer([asdict(t) for t in templates], many=True).data)


class PreviewView(APIView):
    """Renders and validates with the variables given so far (the page's live preview)."""

    permission_classes = [IsOperator]

    @extend_schema(
        request=PreviewSerializer,
        responses={200: PreviewResultSerializer},
        description="Never 422: problems (an unknown template, missing variables, fields the "
        "platform would refuse) are reported in the answer's `errors` and `missing`.",
    )
    def post(self, request):
        body = PreviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        result = ticket_service.preview(data["platform"], data["template_name"], data["variables"])
        return Response({**asdict(result), "ok": result.ok})


class FromTemplateView(APIView):
    """Seed 003's ``POST /api/v1/tickets/from-template``.

    201 with the new record and its ``Location`` (its delivery runs in the worker: poll
    ``GET /api/v1/tickets/{id}`` until ``status`` is ``created`` or ``failed``), 200 with the
    existing record when the same job, platform and template were sent before, 200 for a dry run
    (nothing stored or sent). 422 for invalid variables or fields, 503 when the platform is not
    configured. Nothing here waits for the platform: a web worker is never held.
    """

    permission_classes = [IsOperator]

    @extend_schema(
        request=FromTemplateSerializer,
        responses={
            200: FromTemplateResultSerializer,
            201: FromTemplateResultSerializer,
            **error_responses(
                {
                    422: "The template is unknown or invalid, variables are missing "
                    "(`template_error`), or the rendered fields break the platform's schema "
                    "(`validation_failed`).",
                    503: "The platform is not configured (`not_configured`): nothing was stored.",
                }
            ),
        },
        parameters=[
            OpenApiParameter(
                "Location",
                OpenApiTypes.URI,
                OpenApiParameter.HEADER,
                response=[201],
                description="The new ticket record: poll it for the delivery's outcome.",
            )
        ],
    )
    def post(self, request):
        body = FromTemplateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        template = get_template(data["platform"], data["template_name"])
        ticket, created = ticket_service.create_from_template(
            job_id=data["job_id"],
            platform=data["platform"],
            template_name=data["template_name"],
            variables=data["variables"],
            dry_run=data["dry_run"],
            user=request.user,
        )
        result = {
            "created": created,
            "dry_run": data["dry_run"],
            "template": TemplateMetadataSerializer(asdict(template)).data,
            "ticket": FromTemplateTicketSerializer(ticket).data,
        }
        if not created:
            return Response(result, status=status.HTTP_200_OK)
        location = reverse("api:ticket-detail", args=[ticket.pk], request=request)
        return Response(result, status=status.HTTP_201_CREATED, headers={"Location": location})
