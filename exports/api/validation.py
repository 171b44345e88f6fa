"""The seed's two validation endpoints under ``/api/jira/``: ``validate-project`` (asked of Jira,
within a short budget; 503 when Jira cannot answer) and ``test-adf-conversion/{session_id}``
(fresh conversions of the session's tickets and an upload check of their attachments, without
calling Jira). Operators and QA may call both: they change nothing."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from exports.api.jira_views import CanReadExports
from exports.api.validation_serializers import (
    AdfTestRequestSerializer,
    AdfTestResponseSerializer,
    ProjectValidationRequestSerializer,
    ProjectValidationResponseSerializer,
)
from exports.models import ExportSession
from exports.services import adf_checks, jira_project
from portal.api.schema import error_responses

TAG = ["jira export"]


class ValidateProjectView(APIView):
    permission_classes = [CanReadExports]

    @extend_schema(
        tags=TAG,
        summary="Can sessions be exported to this Jira project?",
        description=(
            "Asks Jira now (EXPORT_VALIDATION_TIMEOUT_SECONDS, no retries): the project, the "
            "portal account's permissions, active and future sprints, assignable people and "
            "priorities. A project Jira does not know answers 200 with validation_status "
            "'invalid' and its blocking_issues; a Jira that is down, slow or not configured "
            "answers 503."
        ),
        request=ProjectValidationRequestSerializer,
        responses={
            200: ProjectValidationResponseSerializer,
            **error_responses(
                {503: "Jira is unreachable, too slow, or not configured (upstream_unavailable)"}
            ),
        },
    )
    def post(self, request):
        body = ProjectValidationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        needs = body.validated_data["user_requirements"]
        result = jira_project.validate_project(
            body.validated_data["project_key"], jira_project.ProjectRequirements(**needs)
        )
        return Response(ProjectValidationResponseSerializer(result.as_dict()).data)


class AdfConversionTestView(APIView):
    permission_classes = [CanReadExports]

    @extend_schema(
        tags=TAG,
        summary="Test the ADF conversion of a session's tickets (nothing is sent to Jira)",
        description=(
            "Converts each ticket's current HTML afresh and reports the ADF size, the character "
            "reduction and what to fix; with include_attachments, checks each attachment could "
            "be uploaded (readable, within Jira's size limit, a usable name) without uploading."
        ),
        request=AdfTestRequestSerializer,
        responses={
            200: AdfTestResponseSerializer,
            **error_responses({404: "No such session"}),
        },
    )
    def post(self, request, session_id):
        session = get_object_or_404(ExportSession, pk=session_id)
        body = AdfTestRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wanted = set(body.validated_data["ticket_ids"])
        if wanted:
            known = set(session.tickets.filter(pk__in=wanted).values_list("pk", flat=True))
            if missing := sorted(str(pk) for pk in wanted - known):
                raise serializers.ValidationError(
                    {"ticket_ids": f"Not tickets of this session: {', '.join(missing)}."}
                )
        results = adf_checks.check_session_conversion(
            session, wanted, include_attachments=body.validated_data["include_attachments"]
        )
        passed = sum(1 for result in results if result.status == adf_checks.PASSED)
        answer = {
            "session_id": session.pk,
            "tickets_tested": len(results),
            "all_passed": passed == len(results),
            "passed": passed,
            "failed": len(results) - passed,
            "results": [result.as_seed() for result in results],
        }
        return Response(AdfTestResponseSerializer(answer).data)
