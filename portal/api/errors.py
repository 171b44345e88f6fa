"""One error envelope for every API failure: ``{"error": {"code", "message", "fields"}}``.

DRF's exceptions, Django's 404/permission errors and unknown routes all end here, so a client
parses one shape. Apps raise their own exceptions; each app's hierarchy maps to HTTP below,
once (``_itsm_response`` for the itsm app).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


def envelope(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any) -> Any:
    """DRF's ErrorDetail lists, turned into plain strings (one message per field, or a list)."""
    if isinstance(detail, list):
        items = [_flatten(item) for item in detail]
        return items[0] if len(items) == 1 and isinstance(items[0], str) else items
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    return str(detail)


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return getattr(exc, "default_code", "error")


def _itsm_response(exc: Exception) -> Response | None:
    """The itsm hierarchy (DESIGN.md): 422 invalid input, 502 rejected upstream, 503 unavailable."""
    from itsm import errors as itsm_errors

    if not isinstance(exc, itsm_errors.ItsmError):
        return None
    status_code = {
        itsm_errors.ValidationFailed: 422,
        itsm_errors.TemplateError: 422,
        itsm_errors.UpstreamRejected: 502,
        itsm_errors.RetryableError: 503,
        itsm_errors.NotConfigured: 503,
    }.get(type(exc), 502)
    detail = exc.as_dict()
    fields: dict[str, Any] = {}
    if isinstance(exc, itsm_errors.ValidationFailed):
        for error in exc.errors:
            fields.setdefault(error.field, error.message)
    elif isinstance(exc, itsm_errors.TemplateError) and exc.missing:
        fields = {"variables": f"missing variables: {', '.join(exc.missing)}"}
    elif isinstance(exc, itsm_errors.UpstreamRejected):
        fields = dict(exc.field_errors)
    body = envelope(exc.code, exc.message, fields)
    body["error"]["detail"] = detail
    response = Response(body, status=status_code)
    if isinstance(exc, itsm_errors.RetryableError) and exc.retry_after:
        response["Retry-After"] = str(int(exc.retry_after))
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if (itsm_response := _itsm_response(exc)) is not None:
        return itsm_response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a 500: Django's handler500 answers in the envelope for /api/
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        fields = _flatten(detail)
        response.data = envelope("invalid", "The request has invalid fields.", fields)
    else:
        response.data = envelope(_code_of(exc), _flatten(exc.detail) if exc.detail else "")
    return response


def api_not_found(request, *args, **kwargs) -> JsonResponse:
    return JsonResponse(
        envelope("not_found", f"No API route matches {request.path}."),
        status=status.HTTP_404_NOT_FOUND,
    )


def api_server_error(request) -> JsonResponse:
    return JsonResponse(
        envelope("server_error", "The server failed; the request id names it in the logs."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
