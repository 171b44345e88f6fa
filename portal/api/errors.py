"""One error envelope for every API failure: ``{"error": {"code", "message", "fields"}}``.

DRF's exceptions, Django's 404/permission errors, oversized bodies and unknown routes all end
here, so a client parses one shape. Apps raise subclasses of :class:`portal.errors.PortalError`,
which carry their own status, code, fields and headers; they answer with an extra ``detail``
(the error's ``as_dict()``). Any other exception is a 500 in the envelope, even under DEBUG.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from portal.errors import PortalError, RequestTooLarge
from portal.redaction import redact, redact_text

# The logger Django itself reports unhandled request errors to (alerts and log filters watch it).
logger = logging.getLogger("django.request")


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


def _portal_error_response(exc: PortalError) -> Response:
    """Any app's error, by its own status, code, fields and headers (a subclass keeps its parent's)."""
    body = envelope(exc.code, exc.message, exc.fields())
    body["error"]["detail"] = exc.as_dict()
    set_rollback()
    return Response(redact(body), status=exc.http_status, headers=exc.headers())


def _first_problem(fields: Any, path: str = "") -> str:
    """``"variables: details: at most 32,000 characters"``: the first field's path and message."""
    if isinstance(fields, dict) and fields:
        key, value = next(iter(fields.items()))
        if key in ("non_field_errors", "detail"):
            return _first_problem(value, path)
        return _first_problem(value, f"{path}.{key}" if path else str(key))
    if isinstance(fields, list) and fields:
        return _first_problem(fields[0], path)
    if isinstance(fields, str) and fields:
        return f"{path}: {fields}" if path else fields
    return "The request has invalid fields."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, PortalError):
        return _portal_error_response(exc)
    if isinstance(exc, RequestDataTooBig):
        return _portal_error_response(RequestTooLarge())
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        # Anything else is a server error: answered here in the envelope, logged with its stack,
        # and never Django's debug page (which would show settings and the request) on an API path.
        logger.error(
            "Internal Server Error: %s",
            getattr(context.get("request"), "path", ""),
            exc_info=exc,
            extra={"status_code": 500},
        )
        set_rollback()
        response = Response(_server_error_body(), status=status.HTTP_500_INTERNAL_SERVER_ERROR)
        response._has_been_logged = True  # Django's log_response would log it again, stackless
        return response
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        fields = _flatten(detail)
        response.data = envelope("invalid", _first_problem(fields), fields)
    else:
        response.data = envelope(_code_of(exc), _flatten(exc.detail) if exc.detail else "")
    # Callers' own text comes back in messages ("No lease named ...", "... is not a valid choice"):
    # a credential pasted into a request is not echoed.
    response.data = redact(response.data)
    return response


def _server_error_body() -> dict[str, Any]:
    return envelope("server_error", "The server failed; the request id names it in the logs.")


def api_not_found(request, *args, **kwargs) -> JsonResponse:
    return JsonResponse(
        envelope("not_found", f"No API route matches {redact_text(request.path)}."),
        status=status.HTTP_404_NOT_FOUND,
    )


def api_server_error(request) -> JsonResponse:
    return JsonResponse(_server_error_body(), status=status.HTTP_500_INTERNAL_SERVER_ERROR)
