"""``POST /api/v1/webhooks/github`` and ``/gitlab``: CI systems tell the portal about jobs.

No token: GitHub and GitLab cannot send one. Each delivery is verified instead (a signature or a
shared token, :mod:`escalation.services.webhooks`) from the raw body, before anything parses it.
So these views read the body themselves: no parser, no throttle (a refused delivery is lost,
GitHub never redelivers on its own), and a body limit of GitHub's 25 MB rather than the API's.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from escalation.services import webhooks
from portal.api.renderers import SafeJSONRenderer
from portal.api.schema import error_responses
from portal.text import request_text_problems


class WebhookContentNegotiation(DefaultContentNegotiation):
    """The API's edge (``portal.api.negotiation``) with the webhook body limit: a declared body
    over it answers 413 before anything is read; the path and query string are checked."""

    def select_renderer(self, request, renderers, format_suffix=None):
        if _declared_length(request) > webhooks.MAX_PAYLOAD_BYTES:
            raise webhooks.PayloadTooLarge()
        if problems := request_text_problems(request, read_form=False):
            raise ValidationError(problems, code="invalid_text")
        return super().select_renderer(request, renderers, format_suffix)


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def raw_body(request) -> bytes:
    """The body as sent, at most ``MAX_PAYLOAD_BYTES`` (a chunked body has no length to refuse
    it by up front). Read from the underlying request, not ``request.body``, whose limit is the
    API's ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    body = request._request.read(webhooks.MAX_PAYLOAD_BYTES + 1)
    if len(body) > webhooks.MAX_PAYLOAD_BYTES:
        raise webhooks.PayloadTooLarge()
    return body


ANSWER = inline_serializer(
    "WebhookReceipt",
    {
        "status": serializers.ChoiceField(
            choices=["pong", "ignored", "queued", "processed", "duplicate"]
        ),
        "message": serializers.CharField(),
        "delivery": serializers.CharField(),
        "failure": serializers.IntegerField(allow_null=True),
    },
)
RESPONSES = {
    200: OpenApiResponse(ANSWER, description="Answered (ping), done, or a duplicate delivery"),
    202: OpenApiResponse(ANSWER, description="Queued (a failed job's log fetch) or ignored"),
    **error_responses(
        {
            400: "Malformed JSON (parse_error), or a field or header the portal needs (invalid).",
            401: "The signature or token is missing or wrong (invalid_signature).",
            413: "The body is over 25 MB.",
            503: "No secret configured (not_configured), or the worker queue is down.",
        }
    ),
}


class WebhookView(APIView):
    authentication_classes: list = []  # verified by signature instead (DESIGN.md)
    permission_classes = [AllowAny]
    throttle_classes: list = []
    parser_classes: list = []  # the raw body is verified before it is parsed
    renderer_classes = [SafeJSONRenderer]
    content_negotiation_class = WebhookContentNegotiation

    def answer(self, receipt: webhooks.Receipt) -> Response:
        return Response(receipt.as_dict(), status=receipt.http_status)


class GitHubWebhookView(WebhookView):
    @extend_schema(
        summary="GitHub webhook: workflow_job, workflow_run, ping",
        description=(
            "Verified by X-Hub-Signature-256 (HMAC-SHA256 of the raw body with "
            "GITHUB_WEBHOOK_SECRET), deduplicated on X-GitHub-Delivery. A completed job that "
            "failed is queued: its log is fetched by the worker, then it is classified and "
            "routed like POST /api/v1/ci/failures."
        ),
        auth=[],
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter("X-Hub-Signature-256", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-GitHub-Event", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-GitHub-Delivery", str, OpenApiParameter.HEADER, required=True),
        ],
        responses=RESPONSES,
    )
    def post(self, request):
        receipt = webhooks.receive_github(
            body=raw_body(request),
            signature=request.headers.get("X-Hub-Signature-256"),
            event=request.headers.get("X-GitHub-Event"),
            delivery=request.headers.get("X-GitHub-Delivery"),
            content_type=request.headers.get("Content-Type") or "application/json",
        )
        return self.answer(receipt)


class GitLabWebhookView(WebhookView):
    @extend_schema(
        summary="GitLab webhook: Job Hook, Pipeline Hook",
        description=(
            "Verified by X-Gitlab-Token (compared with GITLAB_WEBHOOK_TOKEN), deduplicated on "
            "Idempotency-Key, else X-Gitlab-Event-UUID. A failed job (not allowed to fail) is "
            "classified and routed at once, with GitLab's failure reason as its log."
        ),
        auth=[],
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter("X-Gitlab-Token", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-Gitlab-Event", str, OpenApiParameter.HEADER),
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER),
            OpenApiParameter("X-Gitlab-Event-UUID", str, OpenApiParameter.HEADER),
        ],
        responses=RESPONSES,
    )
    def post(self, request):
        receipt = webhooks.receive_gitlab(
            body=raw_body(request),
            token=request.headers.get("X-Gitlab-Token"),
            event=request.headers.get("X-Gitlab-Event"),
            idempotency_key=request.headers.get("Idempotency-Key"),
            event_uuid=request.headers.get("X-Gitlab-Event-UUID"),
        )
        return self.answer(receipt)
