"""The escalation app's errors; each carries its HTTP answer (``portal.errors.PortalError``)."""

from __future__ import annotations

from portal.errors import PortalError


class EscalationError(PortalError):
    http_status = 400
    code = "escalation_error"


class LogTooLarge(EscalationError):
    http_status = 413
    code = "request_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"The log is {size:,} bytes; at most {limit:,} are accepted.")


class NotConfigured(EscalationError):
    http_status = 503
    code = "not_configured"


class InvalidSignature(EscalationError):
    http_status = 401
    code = "invalid_signature"


class NotReclassifiable(EscalationError):
    """A reclassification that would change nothing or reopen settled work."""

    http_status = 409
    code = "not_reclassifiable"


class OverrideDenied(EscalationError):
    """An override the policy refuses: zero tolerance, whoever asks (superusers included)."""

    http_status = 403
    code = "override_denied"


class OverrideNotAllowed(EscalationError):
    """An override decision the rules forbid: approving one's own request, or without QA's role."""

    http_status = 403
    code = "override_not_allowed"


class OverrideConflict(EscalationError):
    """A request already waiting for the failure, or a decision on a decided request."""

    http_status = 409
    code = "override_conflict"


class ReportDateInvalid(EscalationError):
    """A report asked for a day it cannot have: in the future, or (stored) not over yet."""

    http_status = 400
    code = "invalid_date"
