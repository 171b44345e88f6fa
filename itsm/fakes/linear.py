"""Fake Linear GraphQL API (INTEGRATIONS.md §4), executed by graphql-core over in-memory state.

Every document is parsed and validated against ``linear_schema.graphql`` (the subset of Linear's
schema the portal uses): a query outside it is refused with HTTP 400 and ``extensions.type
"graphql error"``. Resolver errors (unknown team, duplicate client id, bad priority) come back with
HTTP 200 and ``errors[]``, as Linear does, so clients must always read ``errors``.

Rate-limit faults: a rule with status 429 answers HTTP 429, a rule with status 400 answers HTTP 400;
both carry a GraphQL error with ``extensions.type "ratelimited"`` (code ``RATELIMITED``) and the
``x-ratelimit-requests-*`` headers, so a client can be tested against either reading of Linear.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    build_schema,
    execute,
    parse,
    validate,
)

from .protocol import Platform, Request, Response, json_response, retry_after_header

SCHEMA_PATH = Path(__file__).with_name("linear_schema.graphql")
UUID_V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PRIORITY_LABELS = ("No priority", "Urgent", "High", "Medium", "Low")
WORKSPACE = "fake-workspace"

TEAMS = (
    {"id": "3f2b8a1c-6d4e-4a5b-9c8d-7e6f5a4b3c21", "key": "PLT", "name": "Platform"},
    {"id": "9a7c5e3b-1d2f-4e6a-8b9c-0d1e2f3a4b5c", "key": "QA", "name": "QA"},
)
LABELS = (
    {"id": "c1f0e2d3-4b5a-4697-8a1b-2c3d4e5f6a70", "name": "ci-failure", "color": "#eb5757"},
    {"id": "d2e1f3a4-5c6b-47a8-9b2c-3d4e5f6a7b81", "name": "flaky", "color": "#f2c94c"},
    {"id": "e3f2a4b5-6d7c-48b9-8c3d-4e5f6a7b8c92", "name": "infra", "color": "#5e6ad2"},
)
STATE_NAMES = (
    ("Backlog", "backlog"),
    ("Todo", "unstarted"),
    ("In Progress", "started"),
    ("Done", "completed"),
    ("Canceled", "canceled"),
)
VIEWER = {
    "id": "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
    "name": "Ops Portal",
    "displayName": "ops-portal",
    "email": "ops-portal@example.com",
    "active": True,
}


def _error(
    kind: str, message: str, presentable: str | None = None, code: str | None = None
) -> dict:
    return {
        "message": message,
        "extensions": {
            "type": kind,
            "code": code or kind.upper().replace(" ", "_"),
            "userError": True,
            "userPresentableMessage": presentable or message,
        },
    }


def _input_error(message: str) -> GraphQLError:
    return GraphQLError(
        f"Argument Validation Error: {message}",
        extensions={
            "type": "invalid input",
            "code": "INVALID_INPUT",
            "userError": True,
            "userPresentableMessage": message,
        },
    )


def _not_found(entity: str) -> GraphQLError:
    return GraphQLError(
        f"Entity not found: {entity}",
        extensions={
            "type": "invalid input",
            "code": "INPUT_ERROR",
            "userError": True,
            "userPresentableMessage": f"Could not find referenced {entity}.",
        },
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _compare(value: Any, comparator: dict[str, Any] | None) -> bool:
    if not comparator:
        return True
    for operator, expected in comparator.items():
        if operator == "eq" and value != expected:
            return False
        if operator == "neq" and value == expected:
            return False
        if operator == "in" and value not in expected:
            return False
        if operator == "nin" and value in expected:
            return False
        if operator == "eqIgnoreCase" and str(value).lower() != str(expected).lower():
            return False
        if operator == "containsIgnoreCase" and str(expected).lower() not in str(value).lower():
            return False
    return True


def _connection(
    nodes: list[dict[str, Any]], first: int | None, after: str | None
) -> dict[str, Any]:
    start = 0
    if after:
        ids = [node["id"] for node in nodes]
        if after not in ids:
            raise _input_error("after: unknown cursor")
        start = ids.index(after) + 1
    if first is not None and first < 0:
        raise _input_error("first must not be negative")
    end = len(nodes) if first is None else min(len(nodes), start + first)
    page = nodes[start:end]
    return {
        "nodes": page,
        "pageInfo": {
            "hasNextPage": end < len(nodes),
            "hasPreviousPage": start > 0,
            "startCursor": page[0]["id"] if page else None,
            "endCursor": page[-1]["id"] if page else None,
        },
    }


class LinearFake(Platform):
    name = "linear"
    DOCUMENT_CACHE_SIZE = 256

    def __init__(self, api_key: str | None) -> None:
        super().__init__()
        self.api_key = api_key
        self.schema = self._build_schema()
        self._documents: OrderedDict[str, tuple[DocumentNode | None, list[GraphQLError]]] = (
            OrderedDict()
        )
        self.router.add("POST", "/graphql", self.graphql)
        self.reset()

    # ----- state ----------------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self.teams = {team["id"]: dict(team) for team in TEAMS}
        self.labels = {label["id"]: {**label, "team_id": None} for label in LABELS}
        self.states: dict[str, list[dict[str, Any]]] = {
            team["id"]: [
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-linear/{team['key']}/{name}")),
                    "name": name,
                    "type": kind,
                }
                for name, kind in STATE_NAMES
            ]
            for team in TEAMS
        }
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, dict[str, Any]] = {}
        self.by_identifier: dict[str, dict[str, Any]] = {}
        self.numbers = {team["id"]: 0 for team in TEAMS}
        self.last_sync_id = 1000.0
        self.graphql_errors: list[dict[str, Any]] = []

    def snapshot(self) -> dict[str, Any]:
        return {
            "teams": list(self.teams.values()),
            "labels": list(self.labels.values()),
            "states": self.states,
            "issues": list(self.issues.values()),
            "comments": list(self.comments.values()),
            "errors": list(self.graphql_errors),
            **self.counters(),
        }

    def export_state(self) -> dict[str, Any]:
        return {
            "issues": list(self.issues.values()),
            "comments": list(self.comments.values()),
            "numbers": self.numbers,
            "last_sync_id": self.last_sync_id,
        }

    def import_state(self, data: dict[str, Any]) -> None:
        for issue in data.get("issues", []):
            self.issues[issue["id"]] = issue
            self.by_identifier[issue["identifier"]] = issue
        for comment in data.get("comments", []):
            self.comments[comment["id"]] = comment
        self.numbers.update(data.get("numbers", {}))
        self.last_sync_id = float(data.get("last_sync_id", self.last_sync_id))

    # ----- platform hooks -------------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        value = (request.header("Authorization") or "").strip()
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer":
            # An OAuth token goes as Bearer; a personal API key sent that way is refused by Linear.
            accepted = bool(token.strip()) and not token.strip().startswith("lin_api_")
            accepted = accepted and self.api_key is None
        else:
            accepted = bool(value) and (self.api_key is None or value == self.api_key)
        if accepted:
            return None
        return json_response(
            400,
            {
                "errors": [
                    _error(
                        "authentication error",
                        "Authentication required, not authenticated",
                        "You need to authenticate to access this operation.",
                        code="AUTHENTICATION_ERROR",
                    )
                ]
            },
        )

    def error(self, status: int, message: str) -> Response:
        kind = "internal error" if status >= 500 else "graphql error"
        return json_response(status, {"errors": [_error(kind, message)]})

    def fault(self, status: int, retry_after: float | None) -> Response:
        headers = retry_after_header(retry_after)
        if status in (400, 429):
            wait = 60 if retry_after is None else retry_after
            reset_ms = int((time.time() + wait) * 1000)
            headers += [
                ("x-ratelimit-requests-limit", "1500"),
                ("x-ratelimit-requests-remaining", "0"),
                ("x-ratelimit-requests-reset", str(reset_ms)),
                ("x-ratelimit-complexity-limit", "250000"),
                ("x-ratelimit-complexity-remaining", "0"),
                ("x-ratelimit-complexity-reset", str(reset_ms)),
            ]
            body = {
                "errors": [
                    _error(
                        "ratelimited",
                        "Rate limit exceeded",
                        "Too many requests; slow down.",
                        "RATELIMITED",
                    )
                ]
            }
            return json_response(status, body, headers)
        body = {
            "errors": [
                _error("internal error", "Internal server error", code="INTERNAL_SERVER_ERROR")
            ]
        }
        return json_response(status, body, headers)

    # ----- HTTP entry -----------------------------------------------------------------------
    def graphql(self, request: Request) -> Response:
        if request.content_type != "application/json":
            return self._graphql_error(
                request, "POST a JSON body with Content-Type: application/json"
            )
        try:
            payload = request.json()
        except ValueError:
            return self._graphql_error(request, "The body is not valid JSON")
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return self._graphql_error(
                request, "The body must be a JSON object with a 'query' string"
            )
        variables = payload.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return self._graphql_error(request, "'variables' must be an object")
        operation = payload.get("operationName")
        document, errors = self._document(payload["query"])
        if document is None:
            return self._graphql_errors(request, errors)
        result = execute(
            self.schema,
            document,
            root_value=None,
            context_value={"fake": self, "origin": request.origin},
            variable_values=variables,
            operation_name=operation if isinstance(operation, str) else None,
        )
        if (
            result.errors
            and result.data is None
            and all(error.path is None for error in result.errors)
        ):
            # Variables that do not coerce, or an unknown operation name: a request error.
            return self._graphql_errors(request, list(result.errors))
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
            self.graphql_errors.extend(body["errors"])
        return json_response(200, body)

    def _document(self, query: str) -> tuple[DocumentNode | None, list[GraphQLError]]:
        cached = self._documents.get(query)
        if cached is not None:
            self._documents.move_to_end(query)
            return cached
        try:
            document: DocumentNode | None = parse(query)
            errors = validate(self.schema, document)
        except GraphQLError as error:
            document, errors = None, [error]
        if errors:
            document = None
        self._documents[query] = (document, errors)
        if len(self._documents) > self.DOCUMENT_CACHE_SIZE:
            self._documents.popitem(last=False)
        return document, errors

    def _graphql_error(self, request: Request, message: str) -> Response:
        return self._graphql_errors(request, [GraphQLError(message)])

    def _graphql_errors(self, request: Request, errors: list[GraphQLError]) -> Response:
        formatted = []
        for error in errors:
            entry = error.formatted
            entry["extensions"] = {
                "type": "graphql error",
                "code": "GRAPHQL_VALIDATION_FAILED",
                "userError": True,
                "userPresentableMessage": error.message,
                **(entry.get("extensions") or {}),
            }
            formatted.append(entry)
        self.graphql_errors.extend(formatted)
        return json_response(400, {"errors": formatted})

    # ----- schema and resolvers -------------------------------------------------------------
    def _build_schema(self) -> GraphQLSchema:
        schema = build_schema(SCHEMA_PATH.read_text(encoding="utf-8"))
        query = schema.query_type
        mutation = schema.mutation_type
        assert query is not None and mutation is not None
        query.fields["teams"].resolve = self._resolve_teams
        query.fields["team"].resolve = lambda _root, _info, id: self._team(id)
        query.fields["issueLabels"].resolve = self._resolve_labels
        query.fields["issue"].resolve = lambda _root, _info, id: self._issue(id)
        query.fields["viewer"].resolve = lambda _root, _info: dict(VIEWER)
        mutation.fields["issueCreate"].resolve = self._resolve_issue_create
        mutation.fields["commentCreate"].resolve = self._resolve_comment_create
        team_type = schema.get_type("Team")
        team_type.fields["labels"].resolve = self._resolve_team_labels  # type: ignore[union-attr]
        team_type.fields["states"].resolve = (  # type: ignore[union-attr]
            lambda team, _info, first=None, after=None: _connection(
                self.states[team["id"]], first, after
            )
        )
        label_type = schema.get_type("IssueLabel")
        label_type.fields["team"].resolve = (  # type: ignore[union-attr]
            lambda label, _info: self.teams.get(label["team_id"]) if label["team_id"] else None
        )
        issue_type = schema.get_type("Issue")
        fields = issue_type.fields  # type: ignore[union-attr]
        fields["team"].resolve = lambda issue, _info: self.teams[issue["team_id"]]
        fields["state"].resolve = lambda issue, _info: self._state(
            issue["team_id"], issue["state_id"]
        )
        fields["assignee"].resolve = lambda issue, _info: (
            dict(VIEWER) if issue["assignee_id"] else None
        )
        fields["parent"].resolve = lambda issue, _info: (
            self.issues.get(issue["parent_id"]) if issue["parent_id"] else None
        )
        fields["labels"].resolve = lambda issue, _info, first=None, after=None: _connection(
            [self.labels[label_id] for label_id in issue["label_ids"]], first, after
        )
        fields["comments"].resolve = lambda issue, _info, first=None, after=None: _connection(
            [c for c in self.comments.values() if c["issue_id"] == issue["id"]], first, after
        )
        comment_type = schema.get_type("Comment")
        comment_type.fields["issue"].resolve = (  # type: ignore[union-attr]
            lambda comment, _info: self.issues.get(comment["issue_id"])
        )
        return schema

    def _team(self, reference: str) -> dict[str, Any]:
        team = self.teams.get(reference) or next(
            (team for team in self.teams.values() if team["key"] == reference), None
        )
        if team is None:
            raise _not_found("Team")
        return team

    def _issue(self, reference: str) -> dict[str, Any]:
        issue = self.issues.get(reference) or self.by_identifier.get(reference.upper())
        if issue is None:
            raise _not_found("Issue")
        return issue

    def _state(self, team_id: str, state_id: str) -> dict[str, Any]:
        return next(state for state in self.states[team_id] if state["id"] == state_id)

    def _resolve_teams(
        self, _root, _info, first=None, after=None, filter=None, includeArchived=None
    ):
        teams = [
            team
            for team in self.teams.values()
            if not filter
            or all(_compare(team[name], filter.get(name)) for name in ("id", "key", "name"))
        ]
        return _connection(teams, first, after)

    def _label_matches(self, label: dict[str, Any], filter: dict[str, Any] | None) -> bool:
        if not filter:
            return True
        if not _compare(label["id"], filter.get("id")) or not _compare(
            label["name"], filter.get("name")
        ):
            return False
        team_filter = filter.get("team")
        if team_filter:
            team = self.teams.get(label["team_id"]) if label["team_id"] else None
            if "null" in team_filter and (team is None) != team_filter["null"]:
                return False
            if team is not None and not all(
                _compare(team[name], team_filter.get(name)) for name in ("id", "key", "name")
            ):
                return False
        return True

    def _resolve_labels(
        self, _root, _info, first=None, after=None, filter=None, includeArchived=None
    ):
        labels = [label for label in self.labels.values() if self._label_matches(label, filter)]
        return _connection(labels, first, after)

    def _resolve_team_labels(self, team, _info, first=None, after=None, filter=None):
        # Workspace labels (no team) are available to every team, as in Linear.
        labels = [
            label
            for label in self.labels.values()
            if label["team_id"] in (None, team["id"]) and self._label_matches(label, filter)
        ]
        return _connection(labels, first, after)

    def _resolve_comment_create(self, _root, info, input):
        comment_id = input.get("id")
        if comment_id is not None:
            if not UUID_V4.match(comment_id):
                raise _input_error("id must be a UUID (version 4)")
            if comment_id.lower() in self.comments:
                raise GraphQLError(
                    f"Argument Validation Error: a comment with the id {comment_id} already exists",
                    extensions={
                        "type": "invalid input",
                        "code": "INVALID_INPUT",
                        "userError": True,
                        "userPresentableMessage": f"A comment with the id '{comment_id}' already exists.",
                    },
                )
        if not input.get("issueId"):
            raise _input_error("issueId must be provided")
        issue = self._issue(input["issueId"])
        body = input.get("body")
        if not isinstance(body, str) or not body.strip():
            raise _input_error("body must be provided")
        now = _iso(datetime.now(UTC))
        comment = {
            "id": (comment_id or str(uuid.uuid4())).lower(),
            "body": body,
            "url": f"{issue['url']}#comment-{len(self.comments) + 1}",
            "createdAt": now,
            "updatedAt": now,
            "issue_id": issue["id"],
        }
        self.comments[comment["id"]] = comment
        self.last_sync_id += 1
        return {"lastSyncId": self.last_sync_id, "success": True, "comment": comment}

    def _resolve_issue_create(self, _root, info, input):
        issue_id = input.get("id")
        if issue_id is not None:
            if not UUID_V4.match(issue_id):
                raise _input_error("id must be a UUID (version 4)")
            if issue_id.lower() in self.issues:
                raise GraphQLError(
                    f"Argument Validation Error: an issue with the id {issue_id} already exists",
                    extensions={
                        "type": "invalid input",
                        "code": "INVALID_INPUT",
                        "userError": True,
                        "userPresentableMessage": f"An issue with the id '{issue_id}' already exists.",
                    },
                )
        team = self.teams.get(input["teamId"])
        if team is None:
            raise _not_found("Team")
        title = input.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _input_error("title must be provided")
        priority = input.get("priority", 0)
        if priority is None:
            priority = 0
        if not 0 <= priority <= 4:
            raise _input_error("priority must be between 0 (No priority) and 4 (Low)")
        label_ids = input.get("labelIds") or []
        for label_id in label_ids:
            label = self.labels.get(label_id)
            if label is None or label["team_id"] not in (None, team["id"]):
                raise _not_found("IssueLabel")
        assignee_id = input.get("assigneeId")
        if assignee_id is not None and assignee_id != VIEWER["id"]:
            raise _not_found("User")
        state_id = input.get("stateId")
        states = self.states[team["id"]]
        if state_id is None:
            state_id = next(state["id"] for state in states if state["name"] == "Todo")
        elif not any(state["id"] == state_id for state in states):
            raise _not_found("WorkflowState")
        if input.get("projectId") is not None:
            raise _not_found("Project")
        parent_id = None
        if input.get("parentId") is not None:
            parent_id = self._issue(input["parentId"])["id"]
        due_date = input.get("dueDate")
        if due_date is not None and (not isinstance(due_date, str) or not DATE.match(due_date)):
            raise _input_error("dueDate must be a date (YYYY-MM-DD)")

        self.numbers[team["id"]] += 1
        number = self.numbers[team["id"]]
        identifier = f"{team['key']}-{number}"
        now = _iso(datetime.now(UTC))
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "issue"
        issue = {
            "id": (issue_id or str(uuid.uuid4())).lower(),
            "identifier": identifier,
            "number": float(number),
            "title": title,
            "description": input.get("description"),
            "priority": float(priority),
            "priorityLabel": PRIORITY_LABELS[priority],
            "url": f"https://linear.app/{WORKSPACE}/issue/{identifier}/{slug}",
            "createdAt": now,
            "updatedAt": now,
            "dueDate": due_date,
            "team_id": team["id"],
            "state_id": state_id,
            "assignee_id": assignee_id,
            "parent_id": parent_id,
            "label_ids": list(dict.fromkeys(label_ids)),
        }
        self.issues[issue["id"]] = issue
        self.by_identifier[identifier] = issue
        self.last_sync_id += 1
        return {"success": True, "issue": issue, "lastSyncId": self.last_sync_id}
