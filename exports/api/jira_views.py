"""The seed's export endpoints under ``/api/jira/`` (mounted by PORTAL_API_PREFIXED_URLCONFS).

Thin adapters (DESIGN.md): find the session, call a lifecycle service, render the seed's shape.
Operators start and retry exports; operators and QA read their status and results. Unknown
sessions answer the 404 envelope; a malformed id never matches the route (the /api/ 404).
"""

from __future__ import annotations

import math

import redis
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from exports.api import jira_serializers as shapes
from exports.errors import RetriesExhausted
from exports.models import ExportSession
from exports.services import lifecycle, progress
from portal.api.permissions import IsOperator, IsOperatorOrQA
from portal.api.throttling import AtomicUserRateThrottle, counter_from_settings

TAG = ["jira export"]


# Operators run exports; QA follows them too.
CanReadExports = IsOperatorOrQA


class ExportStatusThrottle(BaseThrottle):
    """The seed's limit on status polling: 1 request per 2 s per session, whoever asks.

    Each allowed poll holds the session's key for 2 s (Redis ``SET NX PX``, or the cache's
    ``add``): atomic, so two racing polls never both pass, and with no window boundary for two
    polls a moment apart to slip through. The 429 carries ``Retry-After`` (the seconds left).
    """

    seconds = 2

    def allow_request(self, request, view) -> bool:
        key = f"export-status:{view.kwargs.get('session_id')}"
        try:
            self.left = counter_from_settings().reserve(key, self.seconds)
        except redis.RedisError:
            return True  # the limit protects the service, it guards no data
        return self.left == 0.0

    def wait(self) -> float:
        return max(1, math.ceil(self.left))


def _session(session_id) -> ExportSession:
    return get_object_or_404(ExportSession, pk=session_id)


class ExportSessionView(APIView):
    permission_classes = [IsOperator]

    @extend_schema(
        tags=TAG,
        summary="Start exporting a session to Jira",
        description=(
            "Empty body. 202 with the new task, or (idempotent) 202 with the running task when an "
            "export of the session runs already. 422 when the session cannot be exported (already "
            "exported, failed: use retry-failed, no tickets, too many)."
        ),
        request=None,
        responses={
            202: PolymorphicProxySerializer(
                component_name="ExportStartOrRunning",
                serializers=[
                    shapes.ExportStartResponseSerializer,
                    shapes.ExportAlreadyRunningResponseSerializer,
                ],
                resource_type_field_name=None,
            ),
            404: OpenApiResponse(description="No such session"),
        },
    )
    def post(self, request, session_id):
        _session(session_id)
        result = lifecycle.start_export(session_id, request.user)
        session = result.session
        if not result.started:
            body = progress.already_running_response(session)
            return Response(
                shapes.ExportAlreadyRunningResponseSerializer(body).data,
                status=status.HTTP_202_ACCEPTED,
            )
        body = {
            "task_id": session.export_task_id,
            "session_id": session.pk,
            "status": "exporting",
            "total_tickets": result.total_tickets,
            "estimated_duration_minutes": lifecycle.estimated_minutes(
                result.total_tickets, result.dependencies
            ),
            "jira_project_key": session.jira_project_key,
            "started_at": session.export_started_at,
        }
        return Response(
            shapes.ExportStartResponseSerializer(body).data, status=status.HTTP_202_ACCEPTED
        )


class ExportStatusView(APIView):
    permission_classes = [CanReadExports]
    throttle_classes = [AtomicUserRateThrottle, ExportStatusThrottle]

    @extend_schema(
        tags=TAG,
        summary="The export's status (REST fallback of the progress socket)",
        description="One of three shapes by `status`. At most 1 request per 2 s per session: "
        "429 with `Retry-After` beyond.",
        responses={
            200: PolymorphicProxySerializer(
                component_name="ExportStatus",
                serializers=[
                    shapes.ExportStatusResponseSerializer,
                    shapes.ExportCompletedResponseSerializer,
                    shapes.ExportFailedResponseSerializer,
                ],
                resource_type_field_name=None,  # the shapes differ by their fields
            ),
            404: OpenApiResponse(description="No such session"),
            429: OpenApiResponse(description="Polled faster than once per 2 s (Retry-After)"),
        },
    )
    def get(self, request, session_id):
        session = _session(session_id)
        body = progress.status_response(session)
        shape = {
            ExportSession.Status.COMPLETED: shapes.ExportCompletedResponseSerializer,
            ExportSession.Status.EXPORT_FAILED: shapes.ExportFailedResponseSerializer,
        }.get(session.status, shapes.ExportStatusResponseSerializer)
        return Response(shape(body).data)


class RetryFailedView(APIView):
    permission_classes = [IsOperator]

    @extend_schema(
        tags=TAG,
        summary="Retry a failed export from the ticket it failed on",
        description="Empty body. Created Jira issues are kept and reused. 409 while the export "
        "runs; 422 when the session did not fail, or with the seed's body past 3 retries.",
        request=None,
        responses={
            202: shapes.ExportRetryResponseSerializer,
            404: OpenApiResponse(description="No such session"),
            409: OpenApiResponse(description="The export is running"),
            422: OpenApiResponse(
                shapes.MaxRetriesExceededSerializer,
                description="Maximum retries exceeded (or the session did not fail: envelope)",
            ),
        },
    )
    def post(self, request, session_id):
        _session(session_id)
        try:
            result = lifecycle.retry_export(session_id, request.user)
        except RetriesExhausted as exc:
            return Response(exc.seed_body(), status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        body = {
            "task_id": result.session.export_task_id,
            "session_id": result.session.pk,
            "status": "exporting",
            "retry_attempt": result.retry_attempt,
            "remaining_retries": result.remaining_retries,
            "resuming_from_ticket_order": result.resuming_from_ticket_order,
            "preserved_successful_tickets": result.preserved_successful_tickets,
        }
        return Response(
            shapes.ExportRetryResponseSerializer(body).data, status=status.HTTP_202_ACCEPTED
        )


class ExportResultsView(APIView):
    permission_classes = [CanReadExports]

    @extend_schema(
        tags=TAG,
        summary="The export's results: Jira links, dependencies and manual fixes",
        responses={
            200: shapes.ExportResultsResponseSerializer,
            404: OpenApiResponse(description="No such session"),
        },
    )
    def get(self, request, session_id):
        session = _session(session_id)
        return Response(
            shapes.ExportResultsResponseSerializer(progress.results_response(session)).data
        )
