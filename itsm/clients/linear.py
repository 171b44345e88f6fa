"""Linear GraphQL: issueCreate with a client-chosen id, team and label look-up (INTEGRATIONS.md §4).

The issue id is derived from the idempotency key (a UUID v4 shape made from its hash), so a replay
of the same create names the same issue; if Linear answers that the id exists, or an attempt's
outcome was never seen, the client fetches ``issue(id)`` instead of creating another.
GraphQL reports errors in ``errors[]`` even on HTTP 200; they are always inspected.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from typing import Any

from itsm.clients import interface
from itsm.clients.base import HttpClient, TransientFailure
from itsm.clients.interface import Ref, address_of
from itsm.errors import UpstreamRejected
from itsm.types import CallLog, CreatedTicket, PlatformView

ISSUE_FIELDS = (
    "id identifier title url priority team { id key } labels { nodes { id name } }"
    " state { name type }"
)
# Linear's workflow state types: triage, backlog, unstarted, started, completed, canceled.
WAITING_STATE_TYPES = ("triage", "backlog", "unstarted")
RESOLVED_STATE_TYPES = ("completed", "canceled")
CREATE = f"""mutation PortalIssueCreate($input: IssueCreateInput!) {{
  issueCreate(input: $input) {{ success issue {{ {ISSUE_FIELDS} }} }}
}}"""
ISSUE = f"query PortalIssue($id: String!) {{ issue(id: $id) {{ {ISSUE_FIELDS} }} }}"
_NOT_FOUND = re.compile(r"(?i)not found|could not find|does not exist")
COMMENT_CREATE = """mutation PortalCommentCreate($input: CommentCreateInput!) {
  commentCreate(input: $input) { success comment { id body url } }
}"""
COMMENT = "query PortalComment($id: String!) { issue(id: $id) { comments(first: 250) { nodes { id body url } } } }"
TEAMS = "query PortalTeams { teams(first: 100) { nodes { id key name } } }"
LABELS = "query PortalLabels { issueLabels(first: 250) { nodes { id name } } }"


def issue_id_for(idempotency_key: str) -> str:
    """A stable UUID (version 4 layout) for a key: the same key always names the same issue."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


class LinearClient(HttpClient):
    platform = "linear"
    capabilities = frozenset({interface.CREATE, interface.READ_STATUS, interface.COMMENT})

    # --- the platform-client interface ---------------------------------------------------------
    def create(
        self,
        fields: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        log: CallLog | None = None,
        reconcile_first: bool = False,
    ) -> CreatedTicket:
        """``fields``: ``team`` (key, name or id), ``title``, optional ``description``,
        ``priority`` (0-4) and ``labels`` (names; unknown ones are left out)."""
        team_id = self.team_id(str(fields["team"]))
        if team_id is None:
            raise UpstreamRejected(
                f"no Linear team {fields['team']!r}", platform="linear", status_code=404
            )
        return self.create_issue(
            team_id, str(fields["title"]), str(fields.get("description") or ""),
            priority=fields.get("priority"),
            label_ids=self.label_ids(list(fields.get("labels") or [])),
            idempotency_key=idempotency_key, log=log, reconcile_first=reconcile_first,
        )  # fmt: skip

    def comment(
        self, ref: Ref, body: str | dict[str, Any], *, reconcile_first: bool = False
    ) -> dict[str, Any]:
        """A markdown comment on the issue, once: its id is derived from the issue and the text,
        so a replay (a lost answer, a redelivery) finds the comment instead of adding another."""
        issue_id = address_of(ref)
        text = body if isinstance(body, str) else str(body)
        comment_id = issue_id_for(f"comment\x1f{issue_id}\x1f{text}")

        def existing() -> dict[str, Any] | None:
            data = self.graphql(COMMENT, {"id": issue_id}, missing_ok=True) or {}
            nodes = ((data.get("issue") or {}).get("comments") or {}).get("nodes") or []
            return next((node for node in nodes if node["id"] == comment_id), None)

        def create() -> dict[str, Any]:
            payload = {"id": comment_id, "issueId": issue_id, "body": text}
            try:
                return self.graphql(COMMENT_CREATE, {"input": payload})["commentCreate"]["comment"]
            except UpstreamRejected:
                found = existing()  # "already exists": an earlier attempt got through
                if found is not None:
                    return found
                raise

        return self.call(
            create, reconcile=lambda deadline: existing(), reconcile_first=reconcile_first
        )

    def read_status(self, ref: Ref) -> PlatformView:
        issue = self.call(lambda: self.get_issue(address_of(ref)))
        if issue is None:
            raise UpstreamRejected(
                f"linear has no issue {address_of(ref)}", platform="linear", status_code=404
            )
        state = issue.get("state") or {}
        kind = str(state.get("type") or "").lower()
        return PlatformView(
            responded=kind not in WAITING_STATE_TYPES,
            resolved=kind in RESOLVED_STATE_TYPES,
            status=str(state.get("name") or ""),
        )

    def extra_headers(self) -> dict[str, str]:
        # A personal API key goes bare; only OAuth tokens take "Bearer".
        return {"Authorization": self.endpoint.secret} if self.endpoint.secret else {}

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, missing_ok: bool = False
    ) -> dict[str, Any]:
        """One GraphQL exchange (one attempt); ``errors[]`` become typed errors.

        ``missing_ok``: errors that only say an entity was not found give empty data instead.
        """
        response = self.send(
            "POST", "", json={"query": query, "variables": variables or {}}, expect=(200, 400)
        )
        body = response.json()
        errors = body.get("errors") or []
        if errors:
            kinds = {str((e.get("extensions") or {}).get("type", "")).lower() for e in errors}
            message = "; ".join(
                str((e.get("extensions") or {}).get("userPresentableMessage") or e.get("message"))
                for e in errors
            )
            if missing_ok and all(_NOT_FOUND.search(str(e.get("message", ""))) for e in errors):
                return body.get("data") or {}
            if "ratelimited" in kinds:
                raise TransientFailure(
                    f"Linear rate limited: {message}", status_code=429, retry_after=None,
                    sent=False,
                )  # fmt: skip
            raise UpstreamRejected(
                f"linear rejected the request: {message}",
                platform="linear",
                status_code=response.status_code,
                error_messages=[message],
            )
        return body.get("data") or {}

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.call(lambda: self.graphql(query, variables))

    def teams(self) -> list[dict[str, Any]]:
        return self.query(TEAMS)["teams"]["nodes"]

    def team_id(self, key_or_name: str) -> str | None:
        wanted = key_or_name.lower()
        for team in self.teams():
            if wanted in (team["key"].lower(), team["name"].lower(), team["id"]):
                return team["id"]
        return None

    def label_ids(self, names: list[str]) -> list[str]:
        wanted = {name.lower() for name in names}
        return [
            label["id"]
            for label in self.query(LABELS)["issueLabels"]["nodes"]
            if label["name"].lower() in wanted
        ]

    def get_issue(self, issue_id: str) -> dict[str, Any] | None:
        """The issue, or None when Linear has no issue with that id."""
        return (self.graphql(ISSUE, {"id": issue_id}, missing_ok=True) or {}).get("issue")

    def create_issue(
        self,
        team_id: str,
        title: str,
        description: str = "",
        *,
        priority: int | None = None,
        label_ids: list[str] | None = None,
        idempotency_key: str | None = None,
        log: CallLog | None = None,
        reconcile_first: bool = False,
    ) -> CreatedTicket:
        logical: dict[str, Any] = {"team_id": team_id, "title": title}
        payload: dict[str, Any] = {"teamId": team_id, "title": title}
        if description:
            logical["description"] = payload["description"] = description
        if priority is not None:
            logical["priority"] = payload["priority"] = priority
        if label_ids:
            payload["labelIds"] = label_ids
        issue_id = issue_id_for(idempotency_key) if idempotency_key else None
        if issue_id:
            payload["id"] = issue_id

        def create(log: CallLog) -> CreatedTicket:
            try:
                data = self.graphql(CREATE, {"input": payload})
            except UpstreamRejected:
                # "already exists": an earlier attempt of this key got through.
                existing = self.get_issue(issue_id) if issue_id else None
                if existing:
                    return self._created(existing, log, reconciled=True)
                raise
            return self._created(data["issueCreate"]["issue"], log)

        def find_existing(deadline: float, log: CallLog) -> CreatedTicket | None:
            existing = self.get_issue(issue_id)
            return self._created(existing, log, reconciled=True) if existing else None

        return self.create_once(
            logical, create, find_existing if issue_id else None,
            log=log, reconcile_first=reconcile_first,
        )  # fmt: skip

    def _created(
        self, issue: dict[str, Any], log: CallLog, *, reconciled: bool = False
    ) -> CreatedTicket:
        return CreatedTicket(
            "linear",
            issue["id"],
            issue.get("identifier") or issue["id"],
            issue.get("url") or "",
            reconciled=reconciled,
            log=log,
        )
