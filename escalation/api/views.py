"""``/api/v1/ci/``: CI systems report failures; on-call engineers and QA read and act on them.

Thin adapters (DESIGN.md): validate in, call a service, serialize out.
"""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from escalation.api.serializers import (
    EscalationSerializer,
    FailureReportSerializer,
    FailureSerializer,
    FlakyTestSerializer,
    GateSerializer,
    JobPassedSerializer,
    OverrideDecisionSerializer,
    OverrideRequestCreateSerializer,
    OverrideRequestSerializer,
    ReclassifySerializer,
    ResolveSerializer,
    SlaCorrectionSerializer,
)
from escalation.errors import LogTooLarge
from escalation.filters import EscalationFilterSet, FailureFilterSet
from escalation.models import Escalation, FailureEvent, OverrideRequest
from escalation.services import ingest, overrides, routing, sla
from portal.api.permissions import IsOperator, IsOperatorOrQA, IsQA
from portal.pages import IdFilter


def log_source(request, inline: str):
    """The uploaded log file (streamed from its temporary file), or the inline text as bytes."""
    upload = request.FILES.get("log")
    if upload is not None:
        limit = settings.ESCALATION_MAX_LOG_BYTES
        if upload.size > limit:
            raise LogTooLarge(upload.size, limit)
        return upload.chunks(), upload.size
    data = inline.encode("utf-8", errors="replace")
    return [data], len(data)


@extend_schema_view(
    list=extend_schema(summary="CI failures, newest first"),
    retrieve=extend_schema(summary="One CI failure with its evidence"),
)
class FailureViewSet(viewsets.ReadOnlyModelViewSet):
    """Failed CI jobs as reported, classified and grouped."""

    queryset = FailureEvent.objects.select_related("escalation")
    serializer_class = FailureSerializer
    lookup_value_regex = r"[0-9]+"  # anything else is a JSON 404, never a failed int() (500)
    filterset_class = FailureFilterSet
    ordering_fields = ["created_at", "repository", "failure_type", "id"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_permissions(self):
        if self.action == "create":
            return [IsOperator()]
        return [IsOperatorOrQA()]

    @extend_schema(
        request={
            "application/json": FailureReportSerializer,
            "multipart/form-data": FailureReportSerializer,
        },
        responses={
            201: FailureSerializer,
            200: OpenApiResponse(
                FailureSerializer, description="Reported before: the same failure"
            ),
            413: OpenApiResponse(description="The log is over ESCALATION_MAX_LOG_BYTES"),
        },
        summary="Report a failed CI job",
    )
    def create(self, request):
        data = request.data
        upload = request.FILES.get("log")
        if upload is not None:
            data = data.copy()
            data.pop("log", None)
        body = FailureReportSerializer(data=data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        inline = fields.pop("log", "")
        source, _size = log_source(request, inline)
        report = ingest.FailureReport(**fields)
        failure, created = ingest.report_failure(report, source, user=request.user)
        answer = FailureSerializer(failure, context={"request": request}).data
        return Response(answer, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        request=ReclassifySerializer,
        responses={
            200: EscalationSerializer,
            409: OpenApiResponse(description="The same type, or a flaky or resolved failure"),
        },
    )
    @action(detail=True, methods=["post"])
    def reclassify(self, request, pk=None):
        """The seed's reclassify_failure: a new type with a justification; re-routed, audited."""
        failure = get_object_or_404(FailureEvent.objects.select_related("escalation"), pk=pk)
        body = ReclassifySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        escalation = routing.reclassify_failure(
            failure,
            body.validated_data["failure_type"],
            body.validated_data["justification"],
            actor=request.user,
        )
        return Response(EscalationSerializer(escalation, context={"request": request}).data)

    @extend_schema(
        request=OverrideRequestCreateSerializer,
        responses={
            201: OverrideRequestSerializer,
            403: OpenApiResponse(
                description="Refused by the override policy: security_secrets, generator_drift "
                "and security_critical are zero tolerance, for every user (code override_denied, "
                "the policy's reason in message)"
            ),
            409: OpenApiResponse(description="A request for this failure is already waiting"),
        },
        summary="Request an override of a failure (hotfix or infrastructure)",
    )
    @action(detail=True, methods=["post"], url_path="overrides")
    def request_override(self, request, pk=None):
        failure = get_object_or_404(FailureEvent.objects.select_related("escalation"), pk=pk)
        body = OverrideRequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        created = overrides.request_override(
            failure,
            body.validated_data["kind"],
            body.validated_data["justification"],
            request.user,
        )
        created.refresh_from_db()
        return Response(OverrideRequestSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses=GateSerializer,
        summary="May the pipeline proceed past this failure?",
        description="allowed is true when the failure's escalation is resolved, the job passed "
        "on a re-run (flaky), or an override is approved; never for a zero-tolerance type.",
    )
    @action(detail=True, methods=["get"])
    def gate(self, request, pk=None):
        failure = get_object_or_404(FailureEvent.objects.select_related("escalation"), pk=pk)
        decision = overrides.gate(failure)
        return Response(
            GateSerializer(
                {
                    "failure": failure.pk,
                    "failure_type": failure.failure_type,
                    "allowed": decision.allowed,
                    "reason": decision.reason,
                    "policy": overrides.policy_of(failure),
                    "override": decision.override,
                }
            ).data
        )


class EscalationViewSet(viewsets.ReadOnlyModelViewSet):
    """Open and resolved escalations: grouped failures with their routing, ticket and SLA."""

    queryset = Escalation.objects.select_related("sla").prefetch_related("teams")
    serializer_class = EscalationSerializer
    lookup_value_regex = r"[0-9]+"
    filterset_class = EscalationFilterSet
    ordering_fields = ["last_seen_at", "first_seen_at", "occurrences", "id"]
    permission_classes = [IsOperatorOrQA]

    @extend_schema(request=ResolveSerializer, responses=EscalationSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        escalation = get_object_or_404(Escalation, pk=pk)
        body = ResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        sla.resolve(escalation, body.validated_data["reason"], actor=request.user)
        escalation = self.get_queryset().get(pk=escalation.pk)
        return Response(EscalationSerializer(escalation, context={"request": request}).data)

    @extend_schema(request=SlaCorrectionSerializer, responses=EscalationSerializer)
    @action(detail=True, methods=["post"], url_path="sla-correction")
    def sla_correction(self, request, pk=None):
        """The seed's correct_sla_timer: a corrected start; the deadline is recomputed."""
        escalation = get_object_or_404(Escalation, pk=pk)
        body = SlaCorrectionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with transaction.atomic():
            sla.correct_sla_timer(
                escalation,
                body.validated_data["started_at"],
                body.validated_data["reason"],
                actor=request.user,
            )
        escalation = self.get_queryset().get(pk=escalation.pk)
        return Response(EscalationSerializer(escalation, context={"request": request}).data)


class JobPassedView(APIView):
    """A job passed: failed attempts of it on the same commit are marked flaky."""

    permission_classes = [IsOperator]

    @extend_schema(request=JobPassedSerializer, responses=FailureSerializer(many=True))
    def post(self, request):
        body = JobPassedSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        marked = ingest.record_job_passed(
            data["repository"], data["commit"], data["job"], data["run_attempt"]
        )
        return Response(FailureSerializer(marked, many=True, context={"request": request}).data)


class FlakyTestsView(APIView):
    """Tests (or jobs) that failed and passed on a re-run, per repository."""

    permission_classes = [IsOperatorOrQA]

    @extend_schema(responses=FlakyTestSerializer(many=True))
    def get(self, request):
        repository = request.query_params.get("repository") or None
        return Response(FlakyTestSerializer(ingest.flaky_tests(repository), many=True).data)


class OverrideFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=OverrideRequest.Status.choices)
    kind = django_filters.ChoiceFilter(choices=OverrideRequest.Kind.choices)
    failure = IdFilter()
    repository = django_filters.CharFilter(field_name="failure__repository")

    class Meta:
        model = OverrideRequest
        fields = ["status", "kind", "failure", "repository"]


DECISION_RESPONSES = {
    200: OverrideRequestSerializer,
    403: OpenApiResponse(
        description="Not the qa role, the requester's own request (no one approves their own), "
        "or a zero-tolerance type"
    ),
    409: OpenApiResponse(description="Already approved or denied"),
}


class OverrideViewSet(viewsets.ReadOnlyModelViewSet):
    """Override requests; QA approves or denies them (never their own); on call or QA confirm
    the infrastructure issue of an infrastructure override."""

    queryset = OverrideRequest.objects.select_related("failure", "requested_by", "decided_by")
    serializer_class = OverrideRequestSerializer
    lookup_value_regex = r"[0-9]+"
    filterset_class = OverrideFilterSet
    ordering_fields = ["created_at", "id"]

    def get_permissions(self):
        if self.action in ("approve", "deny"):
            return [IsQA()]
        return [IsOperatorOrQA()]

    def _decide(self, request, pk, decide):
        override = get_object_or_404(self.get_queryset(), pk=pk)
        body = OverrideDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        decide(override, request.user, body.validated_data["reason"])
        override = self.get_queryset().get(pk=override.pk)
        return Response(OverrideRequestSerializer(override).data)

    @extend_schema(request=OverrideDecisionSerializer, responses=DECISION_RESPONSES)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve: audited, a follow-up ticket, the scrum master and QA told, the gate opens."""
        return self._decide(request, pk, overrides.approve)

    @extend_schema(request=OverrideDecisionSerializer, responses=DECISION_RESPONSES)
    @action(detail=True, methods=["post"])
    def deny(self, request, pk=None):
        return self._decide(request, pk, overrides.deny)

    @extend_schema(
        request=OverrideDecisionSerializer,
        responses={
            200: OverrideRequestSerializer,
            400: OpenApiResponse(
                description="Not an infrastructure override of an infrastructure failure, or no "
                "reason"
            ),
            403: OpenApiResponse(
                description="Not the operators or qa role, the requester's own request "
                "(override_not_allowed), or a zero-tolerance type (override_denied)"
            ),
            404: OpenApiResponse(description="No such override request"),
            409: OpenApiResponse(description="Already decided, or already confirmed"),
        },
        summary="Confirm the infrastructure issue of an infrastructure override",
        description="An on-call engineer (operators) or QA confirms the infrastructure issue "
        "behind a pending infrastructure override (reason: what confirms it); the override is "
        "then approved automatically by its policy, with the audit record. Zero-tolerance types "
        "are never approved.",
    )
    @action(detail=True, methods=["post"], url_path="confirm-infrastructure")
    def confirm_infrastructure(self, request, pk=None):
        return self._decide(request, pk, overrides.confirm_infrastructure)
