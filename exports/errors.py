"""The exports app's errors; each carries its HTTP answer (``portal.errors.PortalError``).

The seed's error categories (``user_fixable``, ``admin_required``, ``temporary``) describe what a
user can do about a failed export; they live on the session (``ExportSession.ErrorCategory``).
The errors here are what the API answers when a request cannot be done now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from portal.errors import PortalError


class ExportError(PortalError):
    http_status = 400
    code = "export_error"


class InvalidSession(ExportError):
    """A session or ticket that breaks a business rule (the seed's 422)."""

    http_status = 422
    code = "invalid_session"


class DependencyCycle(InvalidSession):
    """Tickets that depend on each other in a circle cannot be put in order."""

    code = "dependency_cycle"

    def __init__(self, cycle: Sequence[int]) -> None:
        self.cycle = list(cycle)
        path = " -> ".join(f"#{order}" for order in [*self.cycle, self.cycle[0]])
        super().__init__(f"The tickets' dependencies form a cycle: {path}.")

    def fields(self) -> dict[str, Any]:
        return {"depends_on": [self.message]}


class UnknownDependency(InvalidSession):
    code = "unknown_dependency"

    def __init__(self, order: int, missing: int) -> None:
        super().__init__(f"Ticket #{order} depends on #{missing}, which is not in the session.")

    def fields(self) -> dict[str, Any]:
        return {"depends_on": [self.message]}


class ExportRunning(ExportError):
    """Timing: the session is exporting right now (the seed's 409)."""

    http_status = 409
    code = "export_running"


class InvalidTickets(InvalidSession):
    """Tickets that break a rule of the session as a whole (two with one order, a dependency on a
    ticket that is not there), each problem under its field's path (``tickets.2.order``)."""

    code = "invalid_tickets"

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        path, problem = next(iter(self.problems.items()))
        super().__init__(f"{path}: {problem}")

    def fields(self) -> dict[str, Any]:
        return dict(self.problems)


class SessionLocked(ExportError):
    """The session is exporting, or the ticket is already in Jira: an edit would not reach it."""

    http_status = 409
    code = "session_locked"


class AttachmentTooLarge(ExportError):
    """An upload over ``EXPORT_ATTACHMENT_MAX_BYTES``."""

    http_status = 413
    code = "attachment_too_large"

    def __init__(self, size: int | None, limit: int) -> None:
        shown = "" if size is None else f"{size:,} bytes, "
        super().__init__(f"The attachment is {shown}over the limit of {limit:,} bytes.")
        self.limit = limit

    def fields(self) -> dict[str, Any]:
        return {"file": [self.message]}


class SessionNotExportable(InvalidSession):
    """The session's state does not allow this action (the seed's 422 "invalid session state")."""

    code = "invalid_session_state"


class RetriesExhausted(InvalidSession):
    """A retry past the session's maximum: the seed's 422, whose body is its own (``seed_body``)."""

    code = "max_retries_exceeded"

    def __init__(self, *, max_retries: int, used: int, first_error_at: str | None) -> None:
        self.max_retries = max_retries
        self.used = used
        self.first_error_at = first_error_at
        super().__init__(
            f"Maximum retry attempts ({max_retries}) exceeded. Please contact administrator."
        )

    def seed_body(self) -> dict[str, Any]:
        return {
            "error_category": "admin_required",
            "user_message": self.message,
            "recovery_actions": ["Contact system administrator", "Session may need manual cleanup"],
            "retry_attempts_used": self.used,
            "first_error_at": self.first_error_at,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), **self.seed_body()}
