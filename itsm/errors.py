"""The itsm app's one exception hierarchy, mapped to HTTP once (``itsm/api``, DESIGN.md).

``ValidationFailed``/``TemplateError`` → 422, ``UpstreamRejected`` → 502, ``RetryableError`` and
``NotConfigured`` → 503. Messages and fields are safe to show: they never carry credentials
(upstream texts pass through :func:`portal.redaction.redact_text` before they are kept).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str  # required | max_length | enum | pattern | type | single_line | missing_variable ...
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class ItsmError(Exception):
    code = "itsm_error"

    def __init__(self, message: str, *, platform: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.platform = platform

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "platform": self.platform}


class NotConfigured(ItsmError):
    """No base URL (or credentials) for the platform: nothing was sent."""

    code = "not_configured"


class ValidationFailed(ItsmError):
    """A payload broke its platform's field schema; nothing was sent (US-2)."""

    code = "validation_failed"

    def __init__(self, errors: list[FieldError], *, platform: str = "") -> None:
        fields = ", ".join(sorted({error.field for error in errors}))
        super().__init__(f"invalid fields: {fields}", platform=platform)
        self.errors = errors

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "errors": [error.as_dict() for error in self.errors]}


class TemplateError(ItsmError):
    """A template could not be rendered: unknown, missing variables, or unsafe/invalid syntax."""

    code = "template_error"

    def __init__(
        self, message: str, *, template_name: str = "", missing: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.template_name = template_name
        self.missing = sorted(missing or [])

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "template_name": self.template_name, "missing": self.missing}


class RetryableError(ItsmError):
    """A transient failure (429, 5xx, timeout, dropped connection) that outlived the retries.

    ``sent`` says whether the request may have reached the server: then the outcome is ambiguous
    and the caller must reconcile by idempotency marker before creating again.
    """

    code = "upstream_unavailable"

    def __init__(
        self,
        message: str,
        *,
        platform: str = "",
        status_code: int | None = None,
        retry_after: float | None = None,
        sent: bool = True,
    ) -> None:
        super().__init__(message, platform=platform)
        self.status_code = status_code
        self.retry_after = retry_after
        self.sent = sent

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "status_code": self.status_code}


class UpstreamRejected(ItsmError):
    """The platform refused the request (a 4xx other than 429): retrying cannot help."""

    code = "upstream_rejected"

    def __init__(
        self,
        message: str,
        *,
        platform: str = "",
        status_code: int,
        error_messages: list[str] | None = None,
        field_errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, platform=platform)
        self.status_code = status_code
        self.error_messages = error_messages or []
        self.field_errors = field_errors or {}

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "status_code": self.status_code,
            "error_messages": self.error_messages,
            "field_errors": self.field_errors,
        }
