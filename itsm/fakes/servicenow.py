"""Fake ServiceNow Table API for the ``incident`` table (INTEGRATIONS.md §2).

Stricter than a real instance on purpose: unknown fields, ``sys_*`` fields and a direct ``priority``
are rejected with 400 (a real instance mostly ignores them), so a client that relies on them is
caught in tests. Priority is computed from impact x urgency with the default lookup rules.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .pages import not_found_page, servicenow_incident_page
from .protocol import (
    BadJson,
    HttpError,
    Platform,
    Request,
    Response,
    empty_response,
    json_response,
    retry_after_header,
)

MAX_SHORT_DESCRIPTION = 160
TABLE = "incident"
LEVELS = ("1", "2", "3")
# Default Priority Lookup Rules: (impact, urgency) -> priority.
PRIORITY_LOOKUP = {
    ("1", "1"): "1",
    ("1", "2"): "2",
    ("2", "1"): "2",
    ("1", "3"): "3",
    ("2", "2"): "3",
    ("3", "1"): "3",
    ("2", "3"): "4",
    ("3", "2"): "4",
    ("3", "3"): "5",
}
STATES = ("1", "2", "3", "6", "7", "8")  # New, In Progress, On Hold, Resolved, Closed, Canceled
JOURNAL_FIELDS = ("comments", "work_notes")
REFERENCE_FIELDS = {
    "caller_id": "sys_user",
    "assignment_group": "sys_user_group",
    "assigned_to": "sys_user",
    "cmdb_ci": "cmdb_ci",
    "business_service": "cmdb_ci_service",
}
WRITABLE_FIELDS = (
    "short_description",
    "description",
    "urgency",
    "impact",
    "state",
    "category",
    "subcategory",
    "contact_type",
    "correlation_id",
    "correlation_display",
    "close_code",
    "close_notes",
    *JOURNAL_FIELDS,
    *REFERENCE_FIELDS,
)
READ_ONLY_FIELDS = ("priority", "number", "opened_at", "active")
QUERYABLE_FIELDS = (
    *WRITABLE_FIELDS,
    *READ_ONLY_FIELDS,
    "sys_id",
    "sys_created_on",
    "sys_updated_on",
)


def failure(status: int, message: str, detail: str | None = None, headers=None) -> Response:
    return json_response(
        status, {"error": {"message": message, "detail": detail}, "status": "failure"}, headers
    )


def _raise(status: int, message: str, detail: str | None = None) -> HttpError:
    return HttpError(failure(status, message, detail))


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


class ServiceNowFake(Platform):
    name = "servicenow"

    def __init__(self, user: str | None, password: str | None) -> None:
        super().__init__()
        self.user = user
        self.password = password
        for prefix in ("/api/now/table", "/api/now/v1/table", "/api/now/v2/table"):
            self.router.add("POST", f"{prefix}/{{table}}", self.create)
            self.router.add("GET", f"{prefix}/{{table}}", self.list)
            self.router.add("GET", f"{prefix}/{{table}}/{{sys_id}}", self.get)
            self.router.add("PATCH", f"{prefix}/{{table}}/{{sys_id}}", self.update)
            self.router.add("PUT", f"{prefix}/{{table}}/{{sys_id}}", self.update)
        # The record's page in a browser (what a ticket's link opens): no credentials, read-only.
        self.router.add("GET", "/nav_to.do", self.record_page, auth=False)
        self.router.add("GET", "/incident.do", self.record_page, auth=False)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.records: dict[str, dict[str, Any]] = {}
        self.next_number = 10001

    def snapshot(self) -> dict[str, Any]:
        return {"incidents": list(self.records.values()), **self.counters()}

    def export_state(self) -> dict[str, Any]:
        return {"records": list(self.records.values()), "next_number": self.next_number}

    def import_state(self, data: dict[str, Any]) -> None:
        self.records = {record["sys_id"]: record for record in data.get("records", [])}
        self.next_number = int(data.get("next_number", self.next_number))

    def authenticate(self, request: Request) -> Response | None:
        credentials = request.basic_credentials()
        if credentials is not None and (
            self.user is None or credentials == (self.user, self.password)
        ):
            return None
        return failure(
            401,
            "User Not Authenticated",
            "Required to provide Auth information",
            headers=[("WWW-Authenticate", 'BASIC realm="Service-now"')],
        )

    def error(self, status: int, message: str) -> Response:
        return failure(status, message)

    def fault(self, status: int, retry_after: float | None) -> Response:
        headers = retry_after_header(retry_after)
        if status == 429:
            wait = 60 if retry_after is None else retry_after
            headers = [
                *retry_after_header(wait),
                ("X-RateLimit-Limit", "100"),
                ("X-RateLimit-Reset", str(int(time.time() + wait))),
                ("X-RateLimit-Rule", "0f9e8d7c6b5a49382716afbecd012345"),
            ]
            return failure(
                429,
                "Rate limit exceeded",
                "The maximum number of requests per hour has been exceeded; try again later.",
                headers,
            )
        return failure(
            status, "Service Unavailable" if status == 503 else f"HTTP {status}", None, headers
        )

    # ----- helpers ------------------------------------------------------------------------
    def _table(self, request: Request) -> None:
        if request.params["table"] != TABLE:
            raise _raise(400, f"Invalid table {request.params['table']}")

    def _body(self, request: Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise _raise(415, "Unsupported Media Type", "Send the body as application/json")
        try:
            body = request.json()
        except BadJson as error:
            raise _raise(
                400, "Exception while reading request", f"The payload is not valid JSON: {error}"
            ) from None
        if not isinstance(body, dict):
            raise _raise(
                400, "Exception while reading request", "The payload must be a JSON object"
            )
        return body

    def _record(self, request: Request) -> dict[str, Any]:
        record = self.records.get(request.params["sys_id"])
        if record is None:
            raise _raise(
                404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
            )
        return record

    def _validate(self, body: dict[str, Any], creating: bool) -> dict[str, str]:
        """The writable values as strings; 400 for anything a strict instance would refuse."""
        sys_fields = sorted(name for name in body if name.startswith("sys_"))
        if sys_fields:
            raise _raise(
                400, "Invalid field", f"System fields cannot be set: {', '.join(sys_fields)}"
            )
        if "priority" in body:
            raise _raise(
                400,
                "Invalid field",
                "priority is computed from impact and urgency (Priority Lookup Rules); do not set it",
            )
        read_only = sorted(name for name in body if name in READ_ONLY_FIELDS)
        if read_only:
            raise _raise(
                400, "Invalid field", f"Read-only fields cannot be set: {', '.join(read_only)}"
            )
        unknown = sorted(name for name in body if name not in WRITABLE_FIELDS)
        if unknown:
            raise _raise(
                400, "Invalid field", f"Unknown field(s) for table incident: {', '.join(unknown)}"
            )
        values: dict[str, str] = {}
        for name, value in body.items():
            if value is None:
                values[name] = ""
            elif isinstance(value, bool) or not isinstance(value, str | int | float):
                raise _raise(400, "Invalid value", f"{name} must be a string")
            else:
                values[name] = str(value)
        if creating or "short_description" in values:
            short = values.get("short_description", "")
            if not short.strip():
                raise _raise(400, "Mandatory field missing", "short_description is required")
            if len(short) > MAX_SHORT_DESCRIPTION:
                raise _raise(
                    400,
                    "Invalid value",
                    f"short_description is longer than {MAX_SHORT_DESCRIPTION} characters",
                )
        for name in ("urgency", "impact"):
            if name in values and values[name] not in LEVELS:
                raise _raise(400, "Invalid value", f"{name} must be 1, 2 or 3 (got {body[name]!r})")
        if "state" in values and values["state"] not in STATES:
            raise _raise(400, "Invalid value", f"state must be one of {', '.join(STATES)}")
        return values

    def _present(self, request: Request, record: dict[str, Any]) -> dict[str, Any]:
        exclude_links = (request.arg("sysparm_exclude_reference_link") or "").lower() == "true"
        wanted = request.arg("sysparm_fields")
        names = [name.strip() for name in wanted.split(",")] if wanted else None
        result: dict[str, Any] = {}
        for name, value in record.items():
            if name == "journal":
                continue
            if names is not None and name not in names:
                continue
            if name in REFERENCE_FIELDS and value and not exclude_links:
                table = REFERENCE_FIELDS[name]
                value = {
                    "link": f"{request.origin}/servicenow/api/now/table/{table}/{value}",
                    "value": value,
                }
            result[name] = value
        return result

    # ----- the page a link opens -----------------------------------------------------------
    def record_page(self, request: Request) -> Response:
        """``/nav_to.do?uri=incident.do?sys_id=...`` (the link the portal stores) or ``/incident.do``."""
        if request.path == "/nav_to.do":
            target = urlsplit(request.arg("uri") or "")
            if target.path.lstrip("/") != "incident.do":
                return not_found_page("ServiceNow", "page for that uri")
            sys_id = (parse_qs(target.query).get("sys_id") or [""])[0]
        else:
            sys_id = request.arg("sys_id") or ""
        record = self.records.get(sys_id)
        if record is None:
            return not_found_page("ServiceNow", f"incident with sys_id {sys_id}")
        return servicenow_incident_page(record)

    # ----- handlers -----------------------------------------------------------------------
    def create(self, request: Request) -> Response:
        self._table(request)
        values = self._validate(self._body(request), creating=True)
        now = _timestamp()
        sys_id = secrets.token_hex(16)
        record: dict[str, Any] = {name: "" for name in WRITABLE_FIELDS}
        record.update(
            {
                "sys_id": sys_id,
                "number": f"INC{self.next_number:07d}",
                "urgency": "3",
                "impact": "3",
                "state": "1",
                "active": "true",
                "opened_at": now,
                "sys_created_on": now,
                "sys_updated_on": now,
                "sys_created_by": request.basic_credentials()[0],  # type: ignore[index]
                "sys_updated_by": request.basic_credentials()[0],  # type: ignore[index]
                "sys_mod_count": "0",
                "sys_class_name": "incident",
                "journal": [],
            }
        )
        self.next_number += 1
        self._apply(record, values, request)
        record["sys_mod_count"] = "0"
        self.records[sys_id] = record
        location = f"{request.origin}/servicenow/api/now/table/incident/{sys_id}"
        if (request.header("X-no-response-body") or "").lower() == "true":
            return empty_response(201, [("Location", location)])
        response = json_response(201, {"result": self._present(request, record)})
        response.headers.append(("Location", location))
        return response

    def _apply(self, record: dict[str, Any], values: dict[str, str], request: Request) -> None:
        for name, value in values.items():
            if name in JOURNAL_FIELDS:
                if value:
                    record["journal"].append(
                        {"element": name, "value": value, "sys_created_on": _timestamp()}
                    )
                    record[name] = value
            else:
                record[name] = value
        record["priority"] = PRIORITY_LOOKUP[(record["impact"], record["urgency"])]
        record["active"] = "false" if record["state"] in ("6", "7", "8") else "true"
        record["sys_updated_on"] = _timestamp()
        record["sys_mod_count"] = str(int(record["sys_mod_count"]) + 1)

    def get(self, request: Request) -> Response:
        self._table(request)
        return json_response(200, {"result": self._present(request, self._record(request))})

    def update(self, request: Request) -> Response:
        self._table(request)
        record = self._record(request)
        values = self._validate(self._body(request), creating=False)
        self._apply(record, values, request)
        return json_response(200, {"result": self._present(request, record)})

    def list(self, request: Request) -> Response:
        self._table(request)
        conditions, order = _parse_query(request.arg("sysparm_query") or "")
        try:
            limit = int(request.arg("sysparm_limit", "10000") or 10000)
            offset = int(request.arg("sysparm_offset", "0") or 0)
        except ValueError:
            raise _raise(
                400, "Invalid parameter", "sysparm_limit and sysparm_offset are integers"
            ) from None
        rows = [
            record
            for record in self.records.values()
            if all(
                (str(record.get(name, "")) == value) != negated
                for name, negated, value in conditions
            )
        ]
        for name, descending in reversed(order):
            rows.sort(key=lambda record, name=name: str(record.get(name, "")), reverse=descending)
        page = rows[offset : offset + max(limit, 0)]
        response = json_response(200, {"result": [self._present(request, row) for row in page]})
        response.headers.append(("X-Total-Count", str(len(rows))))
        return response


_TERM = re.compile(r"^(?P<field>[a-z_][a-z0-9_.]*)(?P<op>!=|=)(?P<value>.*)$")


def _parse_query(query: str) -> tuple[list[tuple[str, bool, str]], list[tuple[str, bool]]]:
    """Encoded-query subset: ``field=value`` / ``field!=value`` / ``ORDERBY[DESC]field``, ``^``-joined.

    An unknown field is a 400 here; a real instance silently drops the condition (and so may return
    every row), which is exactly the mistake this fake exists to catch.
    """
    conditions: list[tuple[str, bool, str]] = []
    order: list[tuple[str, bool]] = []
    if not query:
        return conditions, order
    for term in query.split("^"):
        if not term or term == "EQ":
            continue
        if term.startswith("ORDERBYDESC") or term.startswith("ORDERBY"):
            descending = term.startswith("ORDERBYDESC")
            name = term[len("ORDERBYDESC") :] if descending else term[len("ORDERBY") :]
            if name not in QUERYABLE_FIELDS:
                raise _raise(400, "Invalid query", f"Unknown field in ORDERBY: {name}")
            order.append((name, descending))
            continue
        found = _TERM.match(term)
        if not found:
            raise _raise(
                400,
                "Invalid query",
                f"The fake supports field=value and field!=value terms; got {term!r}",
            )
        if found["field"] not in QUERYABLE_FIELDS:
            raise _raise(400, "Invalid query", f"Unknown field in sysparm_query: {found['field']}")
        conditions.append((found["field"], found["op"] == "!=", found["value"]))
    return conditions, order
