"""ServiceNow Table API: incidents (INTEGRATIONS.md §2).

Priority is computed by the instance from impact and urgency, so a requested priority is sent as
the impact/urgency pair that the default lookup table turns into it. The idempotency key travels
in ``correlation_id``; the Table API reads are consistent, so reconciliation is one query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from itsm.clients import interface
from itsm.clients.base import HttpClient, parse_platform_time
from itsm.clients.interface import Ref, address_of
from itsm.types import CallLog, CreatedTicket, PlatformView
from portal.redaction import redact_text

TABLE = "/api/now/table/incident"
# Priority -> (impact, urgency) under ServiceNow's default Priority Lookup Rules.
PRIORITY_TO_IMPACT_URGENCY = {
    "1": ("1", "1"),
    "2": ("1", "2"),
    "3": ("2", "2"),
    "4": ("2", "3"),
    "5": ("3", "3"),
}
CORRELATION_DISPLAY = "ops-portal"
NEW_STATE = "1"
RESOLVED_STATES = ("6", "7")  # Resolved, Closed


class ServiceNowClient(HttpClient):
    platform = "servicenow"
    capabilities = frozenset({interface.CREATE, interface.READ_STATUS, interface.COMMENT})

    # --- the platform-client interface ---------------------------------------------------------
    @classmethod
    def wire_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return cls.incident_body(fields)

    def create(
        self,
        fields: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        log: CallLog | None = None,
        reconcile_first: bool = False,
    ) -> CreatedTicket:
        return self.create_incident(
            dict(fields), idempotency_key=idempotency_key, log=log, reconcile_first=reconcile_first
        )

    def read_status(self, ref: Ref) -> PlatformView:
        record = self.get_incident(address_of(ref))
        state = str(record.get("state", NEW_STATE))
        resolved = state in RESOLVED_STATES
        resolved_at = None
        if resolved:
            resolved_at = parse_platform_time(record.get("resolved_at")) or parse_platform_time(
                record.get("sys_updated_on")
            )
        return PlatformView(
            responded=state != NEW_STATE or bool(record.get("comments")),
            resolved=resolved,
            resolved_at=resolved_at,
            status=state,
        )

    def comment(
        self, ref: Ref, body: str | dict[str, Any], *, reconcile_first: bool = False
    ) -> dict[str, Any]:
        text = body if isinstance(body, str) else str(body)
        return self.add_comment(address_of(ref), text, reconcile_first=reconcile_first)

    def auth(self) -> httpx.Auth | None:
        if self.endpoint.username or self.endpoint.secret:
            return httpx.BasicAuth(self.endpoint.username, self.endpoint.secret)
        return None

    @classmethod
    def incident_body(
        cls, fields: Mapping[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        body = {k: v for k, v in fields.items() if v not in (None, "") and k != "priority"}
        priority = str(fields.get("priority") or "")
        if priority in PRIORITY_TO_IMPACT_URGENCY and not ("impact" in body or "urgency" in body):
            body["impact"], body["urgency"] = PRIORITY_TO_IMPACT_URGENCY[priority]
        if idempotency_key:
            body["correlation_id"] = idempotency_key
            body["correlation_display"] = CORRELATION_DISPLAY
        return body

    def create_incident(
        self,
        fields: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        log: CallLog | None = None,
        reconcile_first: bool = False,
    ) -> CreatedTicket:
        def create(log: CallLog) -> CreatedTicket:
            body = self.incident_body(fields, idempotency_key)
            data = self.send("POST", TABLE, json=body, expect=(201,)).json()
            return self._created(data["result"], log)

        def find_existing(deadline: float, log: CallLog) -> CreatedTicket | None:
            found = self.find_by_correlation_id(idempotency_key)
            return self._created(found, log, reconciled=True) if found else None

        # With a key, always look first: one consistent query, cheaper than a duplicate incident.
        return self.create_once(
            fields, create, find_existing if idempotency_key else None,
            log=log, reconcile_first=reconcile_first or bool(idempotency_key),
        )  # fmt: skip

    def _created(
        self, record: dict[str, Any], log: CallLog, *, reconciled: bool = False
    ) -> CreatedTicket:
        sys_id = str(record["sys_id"])
        return CreatedTicket(
            "servicenow",
            sys_id,
            str(record.get("number") or sys_id),
            f"{self.endpoint.base_url.rstrip('/')}/nav_to.do?uri=incident.do?sys_id={sys_id}",
            reconciled=reconciled,
            log=log,
        )

    def find_by_correlation_id(self, key: str) -> dict[str, Any] | None:
        data = self.send(
            "GET", TABLE,
            params={"sysparm_query": f"correlation_id={key}", "sysparm_limit": 1},
        ).json()  # fmt: skip
        results = data.get("result") or []
        return results[0] if results else None

    def get_incident(self, sys_id: str) -> dict[str, Any]:
        return self.request("GET", f"{TABLE}/{sys_id}").json()["result"]

    def update_incident(self, sys_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", f"{TABLE}/{sys_id}", json=fields).json()["result"]

    def add_comment(self, sys_id: str, text: str, *, reconcile_first: bool = False) -> dict:
        """A journal entry visible to the caller (``comments``; ``work_notes`` are internal),
        added once: after an ambiguous failure the incident's journal is read first."""
        sent = redact_text(text)

        def find(deadline: float) -> dict | None:
            record = self.send("GET", f"{TABLE}/{sys_id}").json()["result"]
            return record if sent in str(record.get("comments") or "") else None

        return self.call(
            lambda: self.send("PATCH", f"{TABLE}/{sys_id}", json={"comments": text}).json()[
                "result"
            ],
            reconcile=find,
            reconcile_first=reconcile_first,
        )
