"""drf-spectacular hooks: document the error envelope on every operation, as the server answers.

Every operation documents 400/401/403/429 (and 413 with a body, 404 with a path parameter or a
page) with the one envelope; an endpoint adds the statuses only it answers with
:func:`error_responses` (``{422: "...", 503: "..."}``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "example": "not_authenticated"},
                "message": {
                    "type": "string",
                    "description": "For invalid fields: the first field's path and its message.",
                },
                "fields": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "Per-field messages for validation errors; empty otherwise.",
                },
                "detail": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "An app's error as it describes itself (422, 502, 503 ...).",
                },
            },
        }
    },
}

# A placeholder with the component's name: the hook below replaces it with ERROR_SCHEMA.
_ENVELOPE = inline_serializer("ErrorEnvelope", fields={"error": serializers.DictField()})

_COMMON = {
    "400": "Malformed request: bad JSON, invalid fields or parameters, invalid text.",
    "401": "Not authenticated.",
    "403": "Authenticated, but the role or the webhook signature does not allow it.",
    "429": "Throttled; retry after the Retry-After header.",
}
_WITH_BODY = {"413": "The request body is over the size limit."}
_WITH_OBJECT = {"404": "No such object."}
_WITH_PAGE = {"404": "No such page: past the last one."}


def error_responses(descriptions: dict[int, str]) -> dict[int, OpenApiResponse]:
    """``{status: description}`` as documented envelope responses, for ``extend_schema``."""
    return {
        code: OpenApiResponse(response=_ENVELOPE, description=description)
        for code, description in descriptions.items()
    }


def _extra_codes(operation: dict[str, Any]) -> dict[str, str]:
    parameters = operation.get("parameters", [])
    codes: dict[str, str] = {}
    if "requestBody" in operation:
        codes |= _WITH_BODY
    if any(parameter.get("name") == "page" for parameter in parameters):
        codes |= _WITH_PAGE
    if any(parameter.get("in") == "path" for parameter in parameters):
        codes |= _WITH_OBJECT
    return codes


def add_error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorEnvelope"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in {**_COMMON, **_extra_codes(operation)}.items():
                responses.setdefault(
                    code,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    return result
