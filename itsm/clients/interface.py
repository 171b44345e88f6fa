"""The one platform-client interface every client implements (``itsm.public`` exposes it).

Business code and the itsm services talk to a platform only through these methods, so no
service writes ``if platform == "jira"``: what differs between Jira, ServiceNow and Linear lives in
each client. A client that cannot do an operation says so in ``capabilities`` and raises
``NotImplementedError`` (asking for it is a programming error, not a platform failure).

- ``create(fields, idempotency_key=...)``: the portal's logical ticket fields (as templates write
  them) to one external object, exactly once per key.
- ``read_status(ref)``: what the platform says now (responded, resolved, when), for the SLA check.
- ``comment(ref, text)``, ``transition(ref, preferred)``, ``link(blocker, blocked)``.
- ``issue_type_of(fields)`` and ``wire_fields(fields)`` are class-level: they need no endpoint, so
  validation and pages can use them on a machine where the platform is not configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from itsm.types import CallLog, CreatedTicket, PlatformView, TicketRef

# A ticket as the caller knows it: a TicketRef, or the string the platform addresses it by
# (Jira's key, ServiceNow's sys_id, Linear's id).
Ref = TicketRef | str


def address_of(ref: Ref, *, by_key: bool = False) -> str:
    """The string a platform's API addresses ``ref`` by: its key (Jira) or its id."""
    if isinstance(ref, str):
        return ref
    return (ref.key or ref.id) if by_key else (ref.id or ref.key)


CREATE = "create"
READ_STATUS = "read_status"
COMMENT = "comment"
TRANSITION = "transition"
LINK = "link"


class PlatformClient:
    """What every ITSM client offers; subclasses override what their platform supports."""

    platform: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def supports(cls, operation: str) -> bool:
        return operation in cls.capabilities

    @classmethod
    def issue_type_of(cls, fields: Mapping[str, Any]) -> str | None:
        """The issue type the fields are validated against (Jira's field rules differ by type)."""
        return None

    @classmethod
    def wire_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The fields as the platform receives them (names and shapes), without the portal's
        idempotency marker: what a page shows under "Fields sent"."""
        return {key: value for key, value in fields.items() if value not in (None, "")}

    def create(
        self,
        fields: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        log: CallLog | None = None,
        reconcile_first: bool = False,
    ) -> CreatedTicket:
        raise NotImplementedError(f"{self.platform} clients do not create tickets")

    def read_status(self, ref: Ref) -> PlatformView:
        raise NotImplementedError(f"{self.platform} clients do not read ticket status")

    def comment(
        self, ref: Ref, body: str | dict[str, Any], *, reconcile_first: bool = False
    ) -> dict[str, Any]:
        raise NotImplementedError(f"{self.platform} clients do not comment")

    def transition(self, ref: Ref, preferred: list[str]) -> str | None:
        raise NotImplementedError(f"{self.platform} clients do not transition")

    def link(self, blocker: Ref, blocked: Ref, link_type: str = "Blocks") -> None:
        raise NotImplementedError(f"{self.platform} clients do not link")
