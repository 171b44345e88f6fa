"""The itsm app's one exception hierarchy; each error carries its HTTP answer (DESIGN.md).

``ValidationFailed``/``TemplateError`` → 422, ``UpstreamRejected`` → 502, ``RetryableError`` and
``NotConfigured`` → 503, any other ``ItsmError`` → 502. The API layer maps them through their
base, :class:`portal.errors.PortalError`. Messages and fields are safe to show: they never carry
credentials (upstream texts pass through :func:`portal.redaction.redact_text` before they are
kept). ``status_code`` on ``RetryableError``/``UpstreamRejected`` is the *platform's* answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from portal.errors import PortalError


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str  # required | max_length | enum | pattern | type | single_line | missing_variable ...
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class ItsmError(PortalError):
    http_status = 502
    code = "itsm_error"

    def __init__(self, message: str, *, platform: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.platform = platform

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "platform": self.platform}


class NotConfigured(ItsmError):
    """No base URL (or credentials) for the platform: nothing was sent."""

    http_status = 503
    code = "not_configured"


class ValidationFailed(ItsmError):
    """A payload broke its platform's field schema; nothing was sent (US-2)."""

    http_status = 422
    code = "validation_failed"

    def __init__(self, errors: list[FieldError], *, platform: str = "") -> None:
        fields = ", ".join(sorted({error.field for error in errors}))
        super().__init__(f"invalid fields: {fields}", platform=platform)
        self.errors = errors

    def fields(self) -> dict[str, Any]:
        messages: dict[str, str] = {}
        for error in self.errors:
            messages.setdefault(error.field, error.message)
        return messages

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "errors": [error.as_dict() for error in self.errors]}


class TemplateError(ItsmError):
    """A template could not be rendered: unknown, missing variables, or unsafe/invalid syntax."""

    http_status = 422
    code = "template_error"

    def __init__(
        self,
        message: str,
        *,
        template_name: str = "",
        missing: list[str] | None = None,
        platform: str = "",
    ) -> None:
        super().__init__(message, platform=platform)
        self.template_name = template_name
        self.missing = sorted(missing or [])

    def fields(self) -> dict[str, Any]:
        if self.missing:
            return {"variables": f"missing variables: {', '.join(self.missing)}"}
        return {}

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "template_name": self.template_name, "missing": self.missing}


class RetryableError(ItsmError):
    """A transient failure (429, 5xx, timeout, dropped connection) that outlived the retries.

    ``sent`` says whether the request may have reached the server: then the outcome is ambiguous
    and the caller must reconcile by idempotency marker before creating again.
    """

    http_status = 503
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

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(int(self.retry_after))} if self.retry_after else {}

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

    def fields(self) -> dict[str, Any]:
        return dict(self.field_errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "status_code": self.status_code,
            "error_messages": self.error_messages,
            "field_errors": self.field_errors,
        }
