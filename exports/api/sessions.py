"""``/api/v1/sessions``: planning sessions and their tickets, before and after the export.

Roles: operators create sessions, edit tickets and upload attachments (they run the exports);
operators and QA read them. Thin adapters (DESIGN.md): validate in, call
``exports.services.sessions``, serialize out.
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from exports.api.jira_views import CanReadExports
from exports.api.sessions_serializers import (
    ExportTicketSerializer,
    SessionCreateSerializer,
    SessionDetailSerializer,
    SessionSummarySerializer,
    TicketUpdateSerializer,
)
from exports.filters import SessionFilterSet
from exports.models import ExportSession, ExportTicket
from exports.services import sessions
from portal.api.permissions import IsOperator
from portal.api.schema import error_responses

UUID_PATTERN = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def session_with_tickets(pk) -> ExportSession:
    tickets = ExportTicket.objects.prefetch_related("depends_on").order_by("order")
    return get_object_or_404(
        sessions.sessions_with_counts().prefetch_related(Prefetch("tickets", queryset=tickets)),
        pk=pk,
    )


@extend_schema_view(
    list=extend_schema(summary="Sessions, newest first (filters as on the sessions page)"),
    retrieve=extend_schema(summary="One session with its tickets, their export status and keys"),
)
class SessionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):  # fmt: skip
    lookup_value_regex = UUID_PATTERN
    filterset_class = SessionFilterSet
    ordering_fields = ["created_at", "name", "jira_project_key"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return sessions.sessions_with_counts().order_by("-created_at", "-pk")

    def get_serializer_class(self):
        return SessionDetailSerializer if self.action == "retrieve" else SessionSummarySerializer

    def get_permissions(self):
        if self.action == "create":
            return [IsOperator()]
        return [CanReadExports()]

    def retrieve(self, request, pk=None):
        session = session_with_tickets(pk)
        return Response(SessionDetailSerializer(session, context={"request": request}).data)

    @extend_schema(
        request=SessionCreateSerializer,
        responses={
            201: SessionDetailSerializer,
            **error_responses(
                {
                    422: "The tickets break a rule of the session: an order used twice "
                    "(invalid_tickets), a dependency on an order not in the session "
                    "(unknown_dependency), or a cycle, named in the message (dependency_cycle)"
                }
            ),
        },
        summary="Create a session and its tickets in one call",
    )
    def create(self, request):
        body = SessionCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        created = sessions.create_session(body.to_session(), actor=request.user)
        answer = SessionDetailSerializer(session_with_tickets(created.pk)).data
        return Response(answer, status=status.HTTP_201_CREATED)


class TicketView(APIView):
    """``PATCH /api/v1/sessions/{id}/tickets/{ticket_id}``: edit a ticket before the export (the
    review page's edit, for API clients), checked and audited by the sessions service."""

    permission_classes = [IsOperator]

    @extend_schema(
        request=TicketUpdateSerializer,
        responses={
            200: ExportTicketSerializer,
            **error_responses({409: "The session is exporting, or the ticket is already in Jira"}),
        },
        summary="Edit a ticket (title, HTML, assignee, sprint, priority, labels)",
    )
    def patch(self, request, pk, ticket_id):
        ticket = get_object_or_404(
            ExportTicket.objects.select_related("session"), pk=ticket_id, session_id=pk
        )
        body = TicketUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        sessions.update_ticket(ticket, dict(body.validated_data), actor=request.user)
        ticket = ExportTicket.objects.prefetch_related("depends_on").get(pk=ticket.pk)
        return Response(ExportTicketSerializer(ticket).data)


class TicketAttachmentView(APIView):
    """``POST /api/v1/sessions/{id}/tickets/{ticket_id}/attachment``: the ticket's attachment,
    as a multipart field named ``file`` (replaces an earlier one); uploaded to Jira by the export."""

    permission_classes = [IsOperator]
    parser_classes = [MultiPartParser]

    def initial(self, request, *args, **kwargs):
        # Before the body is parsed: a declared length far over the limit is refused unread.
        super().initial(request, *args, **kwargs)
        sessions.check_declared_upload(request.META.get("CONTENT_LENGTH"))

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                "TicketAttachmentUpload", fields={"file": serializers.FileField()}
            )
        },
        responses={
            200: ExportTicketSerializer,
            **error_responses(
                {
                    409: "The session is exporting, or the ticket is already in Jira",
                    413: "The file is over EXPORT_ATTACHMENT_MAX_BYTES (10 MB by default)",
                    422: "The file name is not usable",
                }
            ),
        },
        summary="Attach a file to a ticket",
    )
    def post(self, request, pk, ticket_id):
        ticket = get_object_or_404(
            ExportTicket.objects.select_related("session"), pk=ticket_id, session_id=pk
        )
        upload = request.FILES.get("file")
        unknown = sorted(set(request.data) - {"file"})
        if upload is None or unknown:
            problems = {name: "Unknown field." for name in unknown}
            if upload is None:
                problems["file"] = "Send the file as a multipart field named file."
            raise serializers.ValidationError(problems)
        ticket = sessions.attach_file(ticket, upload, actor=request.user)
        ticket = ExportTicket.objects.prefetch_related("depends_on").get(pk=ticket.pk)
        return Response(ExportTicketSerializer(ticket).data)


__all__ = ["SessionViewSet", "TicketAttachmentView", "TicketView"]
