"""The base of every app's exceptions, and how error reports keep credentials out of sight.

An app's error carries its own HTTP answer (``http_status``, ``code``, ``message``, per-field
messages and headers), so the API layer (``portal.api.errors``) maps any app's error, subclasses
included, without knowing the app: ``portal`` imports no app.

The HTTP status is ``http_status`` rather than ``status_code``: errors about a remote system
(itsm's ``UpstreamRejected``, ``RetryableError``) already use ``status_code`` for the *remote*
answer, which must never leak into ours (a 400 from Jira is our 502).
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.views.debug import SafeExceptionReporterFilter

from portal.redaction import redact_text


class PortalError(Exception):
    """An error that knows how the API answers it: ``{"error": {code, message, fields, detail}}``.

    Subclasses set ``http_status`` and ``code``; a subclass of a subclass keeps its parent's.
    """

    http_status: int = 500
    code: str = "error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message or self.code.replace("_", " ")

    def fields(self) -> dict[str, Any]:
        """Per-field messages for the envelope's ``fields`` (empty when the error is not a field's)."""
        return {}

    def headers(self) -> dict[str, str]:
        """Extra response headers, e.g. ``Retry-After``."""
        return {}

    def as_dict(self) -> dict[str, Any]:
        """The error's detail for the envelope (and logs): JSON-like, safe to show."""
        return {"code": self.code, "message": self.message}


class RequestTooLarge(PortalError):
    """The request body is over ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""

    http_status = 413
    code = "request_too_large"

    def __init__(self) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(f"The request body is larger than {limit:,} bytes.")


# --- error reports (Django's debug page, mailed reports) ----------------------------------------

# Django's own list (API, AUTH, TOKEN, KEY, SECRET, PASS, SIGNATURE, HTTP_COOKIE) and the names the
# portal's credentials go by: webhook URLs, connection URLs that may carry a password, DSNs.
HIDDEN_SETTINGS = re.compile(
    r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|WEBHOOK|CREDENTIAL|PRIVATE|DSN|"
    r"DATABASE_URL|REDIS_URL|BROKER_URL|CONNECTION|LOCATION",
    flags=re.IGNORECASE,
)

# Settings whose every value is masked, whatever its key: endpoint maps mix URLs and credentials.
MASKED_SETTINGS = frozenset({"ITSM_ENDPOINTS"})


class PortalExceptionReporterFilter(SafeExceptionReporterFilter):
    """Masks the portal's credentials on Django's debug page and in error reports.

    Keys are matched by :data:`HIDDEN_SETTINGS` (settings, ``request.META`` (where a development
    server copies the environment) and nested dicts alike); every value of
    ``settings.ITSM_ENDPOINTS`` is masked; and any other text passes through
    :func:`portal.redaction.redact_text`, which knows credentials by their shape (a password in
    ``redis://:pw@host`` under a key that says nothing) and every secret the config registered.
    """

    hidden_settings = HIDDEN_SETTINGS

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        if isinstance(key, str) and key in MASKED_SETTINGS and isinstance(value, dict):
            return {name: self.cleansed_substitute for name in value}
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return _mask_endpoint_values(redact_text(cleansed))
        return cleansed


def _mask_endpoint_values(text: str) -> str:
    """Configured endpoint values (URLs, users) wherever they appear in a shown text."""
    endpoints = getattr(settings, "ITSM_ENDPOINTS", None) or {}
    for value in endpoints.values():
        if isinstance(value, str) and len(value) >= 6 and value in text:
            text = text.replace(value, SafeExceptionReporterFilter.cleansed_substitute)
    return text
