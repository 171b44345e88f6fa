"""Jira Cloud REST v3 (and the Agile API for sprints), INTEGRATIONS.md §1.

Creates carry an idempotency label (``portal-idem-<key>``); after an ambiguous failure the client
searches ``/search/jql`` for that label, for a bounded time because the search is eventually
consistent, before creating again. Descriptions and comments go out as ADF.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from itsm.clients import interface
from itsm.clients.base import HttpClient, parse_platform_time, poll_until
from itsm.clients.interface import Ref, address_of
from itsm.config import PRIORITY_NAMES
from itsm.errors import ItsmError
from itsm.types import CallLog, CreatedTicket, PlatformView
from portal.redaction import redact

IDEMPOTENCY_LABEL_PREFIX = "portal-idem-"
BULK_LIMIT = 50
# The portal's logical ticket fields that are arguments of a create; the rest are extra fields.
CORE_FIELDS = ("project", "summary", "description", "issue_type")
RESOLVED_STATUSES = ("done", "closed", "resolved")
WAITING_STATUSES = ("", "to do", "open", "new")


@dataclass(frozen=True)
class BulkFailure:
    index: int  # position in the caller's list
    status: int
    error_messages: list[str]
    field_errors: dict[str, str]


@dataclass
class BulkResult:
    created: dict[int, CreatedTicket] = field(default_factory=dict)  # caller index → ticket
    failed: list[BulkFailure] = field(default_factory=list)


def idempotency_label(key: str) -> str:
    return f"{IDEMPOTENCY_LABEL_PREFIX}{key}"


def text_to_adf(text: str) -> dict[str, Any]:
    """Plain text as an ADF document: blank lines split paragraphs, newlines become hard breaks."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        content: list[dict[str, Any]] = []
        for line in block.split("\n"):
            if content:
                content.append({"type": "hardBreak"})
            if line:
                content.append({"type": "text", "text": line})
        while content and content[-1]["type"] == "hardBreak":
            content.pop()
        if content:
            paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def as_adf(body: str | dict[str, Any]) -> dict[str, Any]:
    return body if isinstance(body, dict) else text_to_adf(body)


def adf_to_lines(node: Any) -> list[tuple[str, str]]:
    """ADF flattened to (kind, text) lines; kind is "heading" or "text"."""
    lines: list[tuple[str, str]] = []

    def inline_text(n: Any) -> str:
        if not isinstance(n, dict):
            return ""
        if n.get("type") == "text":
            return str(n.get("text", ""))
        if n.get("type") == "hardBreak":
            return "\n"
        return "".join(inline_text(child) for child in n.get("content") or [])

    def walk(n: Any) -> None:
        if not isinstance(n, dict):
            return
        kind = n.get("type")
        if kind == "heading":
            lines.append(("heading", inline_text(n).strip()))
        elif kind in ("paragraph", "codeBlock"):
            for line in inline_text(n).split("\n"):
                lines.append(("text", line))
        else:
            for child in n.get("content") or []:
                walk(child)

    walk(node)
    return lines


def adf_text(node: Any) -> str:
    """The plain text of an ADF document (lines joined by newlines), for comparisons."""
    if not isinstance(node, dict):
        return str(node or "").strip()
    return "\n".join(text for _, text in adf_to_lines(node)).strip()


_KEY_VALUE = re.compile(r"^\s*([A-Za-z][\w ./()-]{0,60}?)\s*:\s*(.*?)\s*$")
_TEXT_HEADING = re.compile(r"^\s*(?:#{1,6}\s+|h[1-6]\.\s+)(.+?)\s*$")


def parse_description(description: str | dict[str, Any] | None) -> dict[str, Any]:
    """A description (ADF or text) as a dict: its ``Key: value`` lines, and each headed section.

    ``"Job ID: 7\\n## Logs\\nline one\\nline two"`` gives
    ``{"Job ID": "7", "Logs": "line one\\nline two"}``. A key value wins over a section of the
    same name; lines before any heading that are not ``Key: value`` are dropped.
    """
    if not description:
        return {}
    if isinstance(description, dict):
        lines = adf_to_lines(description)
    else:
        lines = []
        for line in description.splitlines():
            heading = _TEXT_HEADING.match(line)
            lines.append(("heading", heading.group(1)) if heading else ("text", line))
    result: dict[str, Any] = {}
    sections: dict[str, list[str]] = {}
    section: str | None = None
    for kind, text in lines:
        if kind == "heading":
            section = text.rstrip(":").strip()
            sections.setdefault(section, [])
            continue
        pair = _KEY_VALUE.match(text)
        if pair and not text.lstrip().startswith(("http://", "https://")):
            result.setdefault(pair.group(1).strip(), pair.group(2))
        if section is not None:
            sections[section].append(text)
    for name, body in sections.items():
        result.setdefault(name, "\n".join(body).strip())
    return result


def blockers_of(issue: dict[str, Any]) -> list[str]:
    """Keys of issues that block ``issue``, from its ``Blocks`` links.

    On the blocked issue Jira shows the link with ``inwardIssue`` = the blocker ("is blocked by").
    """
    links = (issue.get("fields") or {}).get("issuelinks") or []
    keys = []
    for link in links:
        if (link.get("type") or {}).get("name") == "Blocks" and "inwardIssue" in link:
            key = link["inwardIssue"].get("key")
            if key and key not in keys:
                keys.append(key)
    return keys


class JiraClient(HttpClient):
    platform = "jira"
    capabilities = frozenset(
        {
            interface.CREATE,
            interface.READ_STATUS,
            interface.COMMENT,
            interface.TRANSITION,
            interface.LINK,
        }
    )

    # --- the platform-client interface ---------------------------------------------------------
    @classmethod
    def issue_type_of(cls, fields: Mapping[str, Any]) -> str | None:
        return str(fields.get("issue_type") or "Task")

    @classmethod
    def extra_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in fields.items() if k not in CORE_FIELDS and v != ""}

    @classmethod
    def wire_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        wire = cls.issue_fields(
            str(fields.get("project") or ""),
            str(fields.get("summary") or ""),
            None,
            cls.issue_type_of(fields) or "Task",
            cls.extra_fields(fields),
        )
        if fields.get("description"):
            wire["description"] = fields["description"]  # sent as ADF; shown as its text
        return wire

    def create(
        self,
        fields: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        log: CallLog | None = None,
        reconcile_first: bool = False,
    ) -> CreatedTicket:
        return self.create_ticket(
            fields["project"], fields["summary"], fields.get("description"),
            self.issue_type_of(fields) or "Task", self.extra_fields(fields),
            idempotency_key=idempotency_key, log=log, reconcile_first=reconcile_first,
        )  # fmt: skip

    def read_status(self, ref: Ref) -> PlatformView:
        issue = self.get_issue(
            address_of(ref, by_key=True), ["status", "comment", "resolutiondate"]
        )
        fields = issue.get("fields") or {}
        status_field = fields.get("status") or {}
        status = str(status_field.get("name", ""))
        category = str((status_field.get("statusCategory") or {}).get("key", ""))
        comments = (fields.get("comment") or {}).get("comments") or []
        commented = [parse_platform_time(comment.get("created")) for comment in comments]
        return PlatformView(
            responded=bool(comments) or status.lower() not in WAITING_STATUSES,
            # Jira's status category says "done" for every finished state of any workflow.
            resolved=category == "done" or status.lower() in RESOLVED_STATUSES,
            responded_at=min((m for m in commented if m is not None), default=None),
            resolved_at=parse_platform_time(fields.get("resolutiondate")),
            status=status,
        )

    def comment(
        self, ref: Ref, body: str | dict[str, Any], *, reconcile_first: bool = False
    ) -> dict[str, Any]:
        return self.add_comment(address_of(ref, by_key=True), body, reconcile_first=reconcile_first)

    def link(self, blocker: Ref, blocked: Ref, link_type: str = "Blocks") -> None:
        self.link_issues(
            address_of(blocker, by_key=True), address_of(blocked, by_key=True), link_type
        )

    def auth(self) -> httpx.Auth | None:
        if self.endpoint.username or self.endpoint.secret:
            return httpx.BasicAuth(self.endpoint.username, self.endpoint.secret)
        return None

    # --- create ------------------------------------------------------------------------------
    @classmethod
    def issue_fields(
        cls,
        project: str,
        summary: str,
        description: str | dict[str, Any] | None,
        issue_type: str,
        fields: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """The REST ``fields`` object from the portal's logical ticket fields."""
        extra = dict(fields or {})
        payload: dict[str, Any] = {
            "project": {"key": project},
            "issuetype": {"name": issue_type},
            "summary": summary,
        }
        if description:
            payload["description"] = as_adf(description)
        priority = extra.pop("priority", None)
        if priority not in (None, ""):
            if isinstance(priority, dict):
                payload["priority"] = priority
            else:
                payload["priority"] = {"name": PRIORITY_NAMES.get(str(priority), str(priority))}
        # Logical names and plain values, as templates write them, to the REST shapes.
        if isinstance(extra.get("assignee"), str):
            extra["assignee"] = {"id": extra["assignee"]}
        if isinstance(extra.get("parent"), str):
            extra["parent"] = {"key": extra["parent"]}
        if "due_date" in extra:
            extra["duedate"] = extra.pop("due_date")
        labels = list(extra.pop("labels", None) or [])
        if idempotency_key:
            labels.append(idempotency_label(idempotency_key))
        if labels:
            payload["labels"] = labels
        payload.update(extra)
        return payload

    def create_ticket(
        self,
        project: str,
        summary: str,
        description: str | dict[str, Any] | None,
        issue_type: str = "Task",
        fields: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        log: CallLog | None = None,
        reconcile_first: bool = False,
    ) -> CreatedTicket:
        """Creates one issue (seed 002's signature, optional ``fields``); exactly once per key."""
        # Every field is validated in its logical form; values already in REST shape (objects
        # such as {"id": ...}) are the caller's responsibility and pass through.
        logical = {
            "project": project,
            "summary": summary,
            "issue_type": issue_type,
            **{k: v for k, v in (fields or {}).items() if not isinstance(v, dict)},
        }
        if isinstance(description, str):
            logical["description"] = description
        elif description:
            logical["description"] = "(an ADF document)"  # present; its length is Jira's to judge

        def create(log: CallLog) -> CreatedTicket:
            body = {
                "fields": self.issue_fields(
                    project, summary, description, issue_type, fields, idempotency_key
                )
            }
            data = self.send("POST", "/rest/api/3/issue", json=body, expect=(201,)).json()
            return self._created(data, log)

        def find_existing(deadline: float, log: CallLog) -> CreatedTicket | None:
            found = self.find_by_idempotency_key(idempotency_key, deadline=deadline)
            return self._created(found, log, reconciled=True) if found else None

        return self.create_once(
            logical, create, find_existing if idempotency_key else None,
            issue_type=issue_type, log=log, reconcile_first=reconcile_first,
        )  # fmt: skip

    def _created(
        self, data: dict[str, Any], log: CallLog, *, reconciled: bool = False
    ) -> CreatedTicket:
        key = str(data["key"])
        return CreatedTicket(
            "jira", str(data["id"]), key, self.browse_url(key), reconciled=reconciled, log=log
        )

    def browse_url(self, key: str) -> str:
        return f"{self.endpoint.base_url.rstrip('/')}/browse/{key}"

    def find_by_idempotency_key(
        self, key: str, *, deadline: float | None = None
    ) -> dict[str, Any] | None:
        """The issue labelled with ``key``, searching until ``deadline`` (search lags writes)."""
        jql = f'labels = "{idempotency_label(key)}"'

        def find() -> dict[str, Any] | None:
            page = self.send(
                "GET", "/rest/api/3/search/jql",
                params={"jql": jql, "fields": "key,summary", "maxResults": 1},
            ).json()  # fmt: skip
            issues = page.get("issues") or []
            return issues[0] if issues else None

        if deadline is None:
            return find()
        return poll_until(deadline, find, interval=self.config.reconcile.poll_interval_seconds)

    def bulk_create(self, issues: list[dict[str, Any]]) -> BulkResult:
        """Creates issues 50 a call; ``issues`` are REST ``{"fields": ...}`` objects.

        Per-issue errors are kept by the caller's index. Successes carry no correlation id, so
        they are matched by position once the failed indexes are removed (INTEGRATIONS.md §1b).
        Bulk create has no idempotency key: only answers that say nothing was done are retried.
        """
        result = BulkResult()
        for offset in range(0, len(issues), BULK_LIMIT):
            chunk = issues[offset : offset + BULK_LIMIT]
            body = {"issueUpdates": chunk}
            response = self.call(
                lambda body=body: self.send(
                    "POST", "/rest/api/3/issue/bulk", json=body, expect=(201, 400)
                ),
                retry_ambiguous=False,  # no idempotency key: a repeat could duplicate the chunk
            )
            data = response.json()
            failed_positions = set()
            for error in data.get("errors") or []:
                position = int(error.get("failedElementNumber", -1))
                element = error.get("elementErrors") or {}
                failed_positions.add(position)
                result.failed.append(
                    BulkFailure(
                        offset + position,
                        int(error.get("status", response.status_code)),
                        [str(m) for m in element.get("errorMessages") or []],
                        {str(k): str(v) for k, v in (element.get("errors") or {}).items()},
                    )
                )
            succeeded = [i for i in range(len(chunk)) if i not in failed_positions]
            for position, issue in zip(succeeded, data.get("issues") or [], strict=False):
                result.created[offset + position] = self._created(issue, CallLog())
        return result

    # --- reads ---------------------------------------------------------------------------
    def get_issue(self, key: str, fields: list[str] | None = None) -> dict[str, Any]:
        params = {"fields": ",".join(fields)} if fields else None
        return self.request("GET", f"/rest/api/3/issue/{key}", params=params).json()

    def parse_description(self, ticket: str | dict[str, Any]) -> dict[str, Any]:
        """``parse_description`` of a ticket given as its key or as an issue dict."""
        issue = self.get_issue(ticket, ["description"]) if isinstance(ticket, str) else ticket
        return parse_description((issue.get("fields") or {}).get("description"))

    def get_blockers(self, ticket: dict[str, Any]) -> list[str]:
        return blockers_of(ticket)

    def get_blockers_by_key(self, key: str) -> list[str]:
        return blockers_of(self.get_issue(key, ["issuelinks"]))

    def search(
        self,
        jql: str,
        *,
        fields: list[str] | None = None,
        page_size: int = 50,
        reconcile_issues: list[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every issue matching a (bounded) JQL, following ``nextPageToken`` until ``isLast``."""
        if not jql.strip():
            raise ItsmError("JQL must be bounded (an empty query is rejected)", platform="jira")
        token: str | None = None
        while True:
            body: dict[str, Any] = {"jql": jql, "maxResults": page_size}
            if fields:
                body["fields"] = fields
            if reconcile_issues:
                body["reconcileIssues"] = reconcile_issues[:50]
            if token:
                body["nextPageToken"] = token
            page = self.request("POST", "/rest/api/3/search/jql", json=body).json()
            yield from page.get("issues") or []
            token = page.get("nextPageToken")
            if page.get("isLast", True) or not token:
                return

    def my_permissions(self, project: str, permissions: list[str]) -> dict[str, bool]:
        data = self.request(
            "GET", "/rest/api/3/mypermissions",
            params={"projectKey": project, "permissions": ",".join(permissions)},
        ).json()  # fmt: skip
        granted = data.get("permissions") or {}
        return {name: bool((granted.get(name) or {}).get("havePermission")) for name in permissions}

    def create_meta(self, project: str, issue_type_id: str) -> list[dict[str, Any]]:
        fields: list[dict[str, Any]] = []
        start = 0
        while True:
            page = self.request(
                "GET", f"/rest/api/3/issue/createmeta/{project}/issuetypes/{issue_type_id}",
                params={"startAt": start, "maxResults": 200},
            ).json()  # fmt: skip
            values = page.get("fields") or page.get("values") or []
            fields += values
            start += len(values)
            if not values or page.get("isLast", False) or start >= page.get("total", start):
                return fields

    def priorities(self) -> list[dict[str, Any]]:
        return self.request("GET", "/rest/api/3/priority").json()

    def assignable_users(self, project: str) -> list[dict[str, Any]]:
        return self.request(
            "GET", "/rest/api/3/user/assignable/search", params={"project": project}
        ).json()

    def sprints(self, board_id: int, state: str = "active,future") -> list[dict[str, Any]]:
        sprints: list[dict[str, Any]] = []
        start = 0
        while True:
            page = self.request(
                "GET", f"/rest/agile/1.0/board/{board_id}/sprint",
                params={"state": state, "startAt": start, "maxResults": 50},
            ).json()  # fmt: skip
            values = page.get("values") or []
            sprints += values
            start += len(values)
            if page.get("isLast", True) or not values:
                return sprints

    # --- writes on existing issues -------------------------------------------------------------
    def add_comment(
        self, key: str, body: str | dict[str, Any], *, reconcile_first: bool = False
    ) -> dict[str, Any]:
        """Adds a comment once: after an ambiguous failure (or on a redelivery) the issue's
        comments are read, and an identical comment counts as this one."""
        document = as_adf(body)

        def create() -> dict[str, Any]:
            return self.send(
                "POST", f"/rest/api/3/issue/{key}/comment", json={"body": document}, expect=(201,)
            ).json()

        return self.call(
            create,
            reconcile=lambda deadline: self.find_comment(key, document),
            reconcile_first=reconcile_first,
        )

    def find_comment(self, key: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The newest comment on ``key`` whose text equals ``body``'s (as sent: redacted)."""
        wanted = adf_text(redact(body))
        page = self.send(
            "GET", f"/rest/api/3/issue/{key}/comment", params={"maxResults": 100}
        ).json()
        for comment in reversed(page.get("comments") or []):
            if adf_text(comment.get("body")) == wanted:
                return comment
        return None

    def transitions(self, key: str) -> list[dict[str, Any]]:
        return (
            self.request("GET", f"/rest/api/3/issue/{key}/transitions")
            .json()
            .get("transitions", [])
        )

    def status_of(self, key: str) -> str:
        return str(
            ((self.get_issue(key, ["status"]).get("fields") or {}).get("status") or {}).get(
                "name", ""
            )
        )

    def transition(self, ref: Ref, preferred: list[str]) -> str | None:
        """Moves the issue to the first of ``preferred`` (transition or target status names)
        that its workflow allows from where it is now; returns the chosen name, or None.

        An issue already in one of the preferred statuses is left alone (a repeated failure, or
        a redelivery after an answer was lost, never moves it twice).
        """
        key = address_of(ref, by_key=True)
        current = self.status_of(key).lower()
        for wanted in preferred:
            if wanted.lower() == current:
                return wanted
        available = self.transitions(key)
        for wanted in preferred:
            for option in available:
                target = str((option.get("to") or {}).get("name", ""))
                if wanted.lower() in {str(option.get("name", "")).lower(), target.lower()}:
                    self.call(
                        lambda option=option: self.send(
                            "POST",
                            f"/rest/api/3/issue/{key}/transitions",
                            json={"transition": {"id": option["id"]}},
                            expect=(204,),
                        ),
                        reconcile=lambda deadline, target=target: (
                            True if self.status_of(key).lower() == target.lower() else None
                        ),
                    )
                    return wanted
        return None

    def link_issues(self, blocker: str, blocked: str, link_type: str = "Blocks") -> None:
        """``blocker`` blocks ``blocked``. Jira puts the blocker in ``inwardIssue`` (the field
        names suggest the opposite; INTEGRATIONS.md §1d). Re-posting a link is harmless."""
        self.request(
            "POST", "/rest/api/3/issueLink",
            json={
                "type": {"name": link_type},
                "inwardIssue": {"key": blocker},
                "outwardIssue": {"key": blocked},
            },
            expect=(201,),
        )  # fmt: skip

    def add_attachment(
        self,
        key: str,
        filename: str,
        content: bytes,
        mime_type: str = "application/octet-stream",
        *,
        reconcile_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Attaches a file once: after an ambiguous failure (or with ``reconcile_first``, for an
        upload that may have been sent before) the issue's attachments are read, and one with the
        same name and size counts as this one."""

        def upload() -> list[dict[str, Any]]:
            return self.send(
                "POST", f"/rest/api/3/issue/{key}/attachments",
                files={"file": (filename, content, mime_type)},
                headers={"X-Atlassian-Token": "no-check"},
            ).json()  # fmt: skip

        def existing(deadline: float) -> list[dict[str, Any]] | None:
            issue = self.send("GET", f"/rest/api/3/issue/{key}", params={"fields": "attachment"})
            found = [
                item
                for item in (issue.json().get("fields") or {}).get("attachment") or []
                if item.get("filename") == filename and item.get("size") in (None, len(content))
            ]
            return found[-1:] or None

        return self.call(upload, reconcile=existing, reconcile_first=reconcile_first)

    def set_property(self, key: str, name: str, value: Any) -> None:
        self.request(
            "PUT", f"/rest/api/3/issue/{key}/properties/{name}", json=value, expect=(200, 201)
        )

    def add_to_sprint(self, sprint_id: int, keys: list[str]) -> None:
        for offset in range(0, len(keys), BULK_LIMIT):
            self.request(
                "POST", f"/rest/agile/1.0/sprint/{sprint_id}/issue",
                json={"issues": keys[offset : offset + BULK_LIMIT]}, expect=(204,),
            )  # fmt: skip
