"""drf-spectacular hooks: document the error envelope on every operation."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "example": "not_authenticated"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "Per-field messages for validation errors; empty otherwise.",
                },
            },
        }
    },
}

_COMMON = {
    "400": "Malformed request (bad JSON, invalid fields).",
    "401": "Not authenticated.",
    "403": "Authenticated, but the role or the webhook signature does not allow it.",
    "429": "Throttled; retry after the Retry-After header.",
}


def add_error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorEnvelope"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            codes = dict(_COMMON)
            if "{" in str(operation.get("operationId", "")) or any(
                parameter.get("in") == "path" for parameter in operation.get("parameters", [])
            ):
                codes["404"] = "No such object."
            for code, description in codes.items():
                responses.setdefault(
                    code,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    return result
