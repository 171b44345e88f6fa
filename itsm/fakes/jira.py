"""Fake Jira Cloud: REST v3 and the Agile API, as strict as INTEGRATIONS.md §1 describes.

Seed data (restored by every reset): projects OPS (10000) and DEMO (10001); the issue types,
priorities, users, board 1 with a closed, an active (25446) and a future sprint; the workflow below.

Workflow (transition id, name -> target). "Done" has no way to "Failed", so a client that wants
"Failed" must fall back to another transition.

    To Do:       11 Start -> In Progress, 21 Block -> Blocked, 31 Fail -> Failed, 41 Done -> Done
    In Progress: 51 Stop -> To Do, 21 Block -> Blocked, 31 Fail -> Failed, 41 Done -> Done
    Blocked:     61 Unblock -> In Progress, 31 Fail -> Failed, 41 Done -> Done
    Failed:      71 Retry -> In Progress, 41 Done -> Done
    Done:        81 Reopen -> To Do
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .adf_schema import AdfValidator
from .pages import jira_issue_page, not_found_page
from .protocol import (
    BadJson,
    HttpError,
    Platform,
    Request,
    Response,
    empty_response,
    json_response,
    retry_after_header,
    text_response,
)

SPRINT_FIELD = "customfield_10020"
ACTIVE_SPRINT_ID = 25446
BOARD_ID = 1
MAX_BULK = 50
MAX_SUMMARY = 255
MAX_LABEL = 255
MAX_ATTACHMENT_FILES = 60
MAX_SPRINT_MOVE = 50
MAX_RECONCILE = 50
MAX_PROPERTY_KEY = 255
MAX_PROPERTY_BYTES = 32768
ADF_MESSAGE = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
ISSUE_KEY = re.compile(r"^([A-Z][A-Z0-9_]*)-([1-9][0-9]*)$")

PROJECTS = (
    {"id": "10000", "key": "OPS", "name": "Operations"},
    {"id": "10001", "key": "DEMO", "name": "Demo"},
    # A Jira Service Management project, as seed 000's bundle escalations expect: a key longer
    # than Jira Cloud's default of 10 (Data Center allows up to 255) and ITSM issue types.
    {"id": "10002", "key": "ORCHESTRATION", "name": "Orchestration"},
)
ISSUE_TYPES = (
    {"id": "10001", "name": "Task", "subtask": False, "hierarchyLevel": 0},
    {"id": "10002", "name": "Bug", "subtask": False, "hierarchyLevel": 0},
    {"id": "10003", "name": "Story", "subtask": False, "hierarchyLevel": 0},
    {"id": "10004", "name": "Epic", "subtask": False, "hierarchyLevel": 1},
    {"id": "10005", "name": "Sub-task", "subtask": True, "hierarchyLevel": -1},
    {"id": "10006", "name": "Incident", "subtask": False, "hierarchyLevel": 0},
    {"id": "10007", "name": "Service Request", "subtask": False, "hierarchyLevel": 0},
)
# Each project's issue types (Jira's issue type schemes): software projects have no Incident.
SOFTWARE_TYPES = ("10001", "10002", "10003", "10004", "10005")
PROJECT_ISSUE_TYPES = {
    "OPS": SOFTWARE_TYPES,
    "DEMO": SOFTWARE_TYPES,
    "ORCHESTRATION": ("10001", "10006", "10007", "10005"),
}


def issue_types_of(project: dict[str, str]) -> list[dict[str, Any]]:
    allowed = PROJECT_ISSUE_TYPES[project["key"]]
    return [kind for kind in ISSUE_TYPES if kind["id"] in allowed]


PRIORITIES = (
    {"id": "1", "name": "Highest", "statusColor": "#d04437"},
    {"id": "2", "name": "High", "statusColor": "#f15C75"},
    {"id": "3", "name": "Medium", "statusColor": "#f79232"},
    {"id": "4", "name": "Low", "statusColor": "#707070"},
    {"id": "5", "name": "Lowest", "statusColor": "#999999"},
)
DEFAULT_PRIORITY_ID = "3"
STATUSES = {
    "To Do": {"id": "10000", "category": ("new", "To Do", 2)},
    "In Progress": {"id": "3", "category": ("indeterminate", "In Progress", 4)},
    "Blocked": {"id": "10001", "category": ("indeterminate", "In Progress", 4)},
    "Failed": {"id": "10002", "category": ("done", "Done", 3)},
    "Done": {"id": "10003", "category": ("done", "Done", 3)},
}
INITIAL_STATUS = "To Do"
WORKFLOW: dict[str, tuple[tuple[str, str, str], ...]] = {
    "To Do": (
        ("11", "Start", "In Progress"),
        ("21", "Block", "Blocked"),
        ("31", "Fail", "Failed"),
        ("41", "Done", "Done"),
    ),
    "In Progress": (
        ("51", "Stop", "To Do"),
        ("21", "Block", "Blocked"),
        ("31", "Fail", "Failed"),
        ("41", "Done", "Done"),
    ),
    "Blocked": (("61", "Unblock", "In Progress"), ("31", "Fail", "Failed"), ("41", "Done", "Done")),
    "Failed": (("71", "Retry", "In Progress"), ("41", "Done", "Done")),
    "Done": (("81", "Reopen", "To Do"),),
}
USERS = (
    {
        "accountId": "5b10ac8d82e05b22cc7d4ef5",
        "displayName": "Ada Operator",
        "emailAddress": "ada@example.com",
    },
    {
        "accountId": "5b10a2844c20165700ede21g",
        "displayName": "Grace Oncall",
        "emailAddress": "grace@example.com",
    },
    {
        "accountId": "712020:2d9f3c54-4b0e-4f0e-9d7e-6a1f1a2b3c4d",
        "displayName": "Linus Platform",
        "emailAddress": "linus@example.com",
    },
)
LINK_TYPES = (
    {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
    {"id": "10001", "name": "Cloners", "inward": "is cloned by", "outward": "clones"},
    {"id": "10002", "name": "Duplicate", "inward": "is duplicated by", "outward": "duplicates"},
    {"id": "10003", "name": "Relates", "inward": "relates to", "outward": "relates to"},
)
PERMISSIONS = (
    "ADD_COMMENTS",
    "ADMINISTER_PROJECTS",
    "ASSIGN_ISSUES",
    "ASSIGNABLE_USER",
    "BROWSE_PROJECTS",
    "CLOSE_ISSUES",
    "CREATE_ATTACHMENTS",
    "CREATE_ISSUES",
    "DELETE_ISSUES",
    "EDIT_ISSUES",
    "LINK_ISSUES",
    "MANAGE_SPRINTS_PERMISSION",
    "RESOLVE_ISSUES",
    "SCHEDULE_ISSUES",
    "TRANSITION_ISSUES",
    "WORK_ON_ISSUES",
)
# Fields the create screen offers, in createmeta order; anything else cannot be set.
CREATE_FIELDS = (
    "summary",
    "issuetype",
    "parent",
    "project",
    "description",
    "environment",
    "priority",
    "labels",
    "assignee",
    "duedate",
    SPRINT_FIELD,
)
ADF_FIELDS = ("description", "environment")
# What an issue read can return: the create fields and those Jira keeps itself.
SEARCHABLE_FIELDS = (
    *CREATE_FIELDS,
    "status",
    "created",
    "updated",
    "issuelinks",
    "comment",
    "attachment",
    "subtasks",
)


def jira_time(moment: datetime) -> str:
    """Jira's timestamp format: ``2024-05-01T09:30:00.000+0000``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _now() -> datetime:
    return datetime.now(UTC)


def error_collection(
    status: int,
    messages: list[str] | None = None,
    errors: dict[str, str] | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    return json_response(status, {"errorMessages": messages or [], "errors": errors or {}}, headers)


def fail(
    status: int, message: str | None = None, errors: dict[str, str] | None = None
) -> HttpError:
    return HttpError(error_collection(status, [message] if message else [], errors))


@dataclass
class Issue:
    id: str
    key: str
    project: dict[str, str]
    issuetype: dict[str, Any]
    summary: str
    created: datetime
    visible_at: float
    description: Any = None
    environment: Any = None
    priority: dict[str, str] | None = None
    labels: list[str] = field(default_factory=list)
    assignee: dict[str, str] | None = None
    parent: str | None = None
    sprint: int | None = None
    duedate: str | None = None
    status: str = INITIAL_STATUS
    updated: datetime | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class CreateOutcome:
    issue: Issue | None = None
    messages: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


class JiraFake(Platform):
    name = "jira"

    def __init__(self, adf: AdfValidator, config: Any, email: str | None, token: str | None):
        super().__init__()
        self.adf = adf
        self.config = config
        self.email = email
        self.token = token
        self._routes()
        self.reset()

    # ----- seed and state -------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self.issues: dict[str, Issue] = {}
        self.by_key: dict[str, Issue] = {}
        self.links: list[dict[str, Any]] = []
        self.next_number = {project["key"]: 1 for project in PROJECTS}
        self.next_issue_id = 10001
        self.next_comment_id = 10001
        self.next_link_id = 10001
        self.next_attachment_id = 10001
        self.sprints = _seed_sprints(_now())

    def snapshot(self) -> dict[str, Any]:
        return {
            "issues": [self._issue_state(issue) for issue in self.issues.values()],
            "links": list(self.links),
            "sprints": list(self.sprints.values()),
            "index_lag": self.config.index_lag,
            **self.counters(),
        }

    def export_state(self) -> dict[str, Any]:
        issues = []
        for issue in self.issues.values():
            data = asdict(issue)
            del data["visible_at"]  # a monotonic instant means nothing to the next process
            data["created"] = issue.created.isoformat()
            data["updated"] = issue.updated.isoformat() if issue.updated else None
            issues.append(data)
        return {
            "issues": issues,
            "links": self.links,
            "sprints": list(self.sprints.values()),
            "next_number": self.next_number,
            "next_issue_id": self.next_issue_id,
            "next_comment_id": self.next_comment_id,
            "next_link_id": self.next_link_id,
            "next_attachment_id": self.next_attachment_id,
        }

    def import_state(self, data: dict[str, Any]) -> None:
        for stored in data.get("issues", []):
            created = datetime.fromisoformat(stored["created"])
            updated = stored.get("updated")
            issue = Issue(
                **{
                    **stored,
                    "created": created,
                    "updated": datetime.fromisoformat(updated) if updated else created,
                    "visible_at": 0.0,  # indexed long ago
                }
            )
            self.issues[issue.id] = issue
            self.by_key[issue.key] = issue
        self.links = list(data.get("links", []))
        if data.get("sprints"):
            self.sprints = {sprint["id"]: sprint for sprint in data["sprints"]}
        self.next_number.update(data.get("next_number", {}))
        for counter in ("next_issue_id", "next_comment_id", "next_link_id", "next_attachment_id"):
            if counter in data:
                setattr(self, counter, int(data[counter]))

    def _issue_state(self, issue: Issue) -> dict[str, Any]:
        return {
            "id": issue.id,
            "key": issue.key,
            "fields": {
                "project": issue.project["key"],
                "issuetype": issue.issuetype["name"],
                "summary": issue.summary,
                "description": issue.description,
                "environment": issue.environment,
                "priority": issue.priority["name"] if issue.priority else None,
                "labels": issue.labels,
                "assignee": issue.assignee["accountId"] if issue.assignee else None,
                "parent": issue.parent,
                SPRINT_FIELD: issue.sprint,
                "duedate": issue.duedate,
                "status": issue.status,
            },
            "labels": issue.labels,
            "status": issue.status,
            "comments": issue.comments,
            "links": self._links_of(issue.key),
            "attachments": issue.attachments,
            "transitions": issue.history,
            "properties": issue.properties,
            "created": jira_time(issue.created),
            "searchable": issue.visible_at <= time.monotonic(),
        }

    def catch_up_index(self) -> int:
        """Make every issue searchable now (``POST /_fake/jira/index``)."""
        now = time.monotonic()
        pending = [issue for issue in self.issues.values() if issue.visible_at > now]
        for issue in pending:
            issue.visible_at = now
        return len(pending)

    # ----- platform hooks -------------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        credentials = request.basic_credentials()
        if credentials is not None and (
            self.email is None or credentials == (self.email, self.token)
        ):
            return None
        return error_collection(
            401,
            ["You are not authenticated. Authentication required to perform this operation."],
            headers=[("WWW-Authenticate", 'Basic realm="protected-by-api-token"')],
        )

    def error(self, status: int, message: str) -> Response:
        return error_collection(status, [message])

    def fault(self, status: int, retry_after: float | None) -> Response:
        headers = retry_after_header(retry_after)
        if status == 429:
            wait = 5 if retry_after is None else retry_after
            if not headers:
                headers = retry_after_header(wait)
            reset = _now() + timedelta(seconds=wait)
            headers += [
                ("X-RateLimit-Reset", reset.strftime("%Y-%m-%dT%H:%MZ")),
                ("X-RateLimit-Limit", "100"),
                ("X-RateLimit-Remaining", "0"),
                ("RateLimit-Reason", "jira-burst-based"),
            ]
            return error_collection(429, ["Rate limit exceeded."], headers=headers)
        messages = {
            500: "Internal server error",
            502: "Bad gateway",
            503: "Service Unavailable",
            504: "Gateway timeout",
        }
        return error_collection(status, [messages.get(status, f"HTTP {status}")], headers=headers)

    # ----- routes ---------------------------------------------------------------------------
    def _routes(self) -> None:
        add = self.router.add
        api = "/rest/api/3"
        add("POST", f"{api}/issue", self.create_issue)
        add("POST", f"{api}/issue/bulk", self.create_issues_bulk)
        add("GET", f"{api}/issue/createmeta/{{project}}/issuetypes", self.createmeta_types)
        add(
            "GET",
            f"{api}/issue/createmeta/{{project}}/issuetypes/{{type_id}}",
            self.createmeta_fields,
        )
        add("GET", f"{api}/issue/{{key}}", self.get_issue)
        add("GET", f"{api}/issue/{{key}}/comment", self.list_comments)
        add("POST", f"{api}/issue/{{key}}/comment", self.add_comment)
        add("GET", f"{api}/issue/{{key}}/transitions", self.list_transitions)
        add("POST", f"{api}/issue/{{key}}/transitions", self.do_transition)
        add("POST", f"{api}/issue/{{key}}/attachments", self.add_attachments)
        add("GET", f"{api}/issue/{{key}}/properties", self.list_properties)
        add("GET", f"{api}/issue/{{key}}/properties/{{prop}}", self.get_property)
        add("PUT", f"{api}/issue/{{key}}/properties/{{prop}}", self.put_property)
        add("POST", f"{api}/issueLink", self.link_issues)
        add("GET", f"{api}/issueLinkType", self.list_link_types)
        add("GET", f"{api}/search/jql", self.search)
        add("POST", f"{api}/search/jql", self.search)
        add("GET", f"{api}/search", self.search_removed)
        add("POST", f"{api}/search", self.search_removed)
        add("GET", f"{api}/mypermissions", self.my_permissions)
        add("GET", f"{api}/priority", self.list_priorities)
        add("GET", f"{api}/field", self.list_fields)
        add("GET", f"{api}/myself", self.myself)
        add("GET", f"{api}/project/{{project}}", self.get_project)
        add("GET", f"{api}/user/assignable/search", self.assignable_users)
        add("GET", "/rest/agile/1.0/board", self.list_boards)
        add("GET", "/rest/agile/1.0/board/{board}/sprint", self.list_sprints)
        add("GET", "/rest/agile/1.0/sprint/{sprint}", self.get_sprint)
        add("POST", "/rest/agile/1.0/sprint/{sprint}/issue", self.move_to_sprint)
        # The issue's page in a browser: what a ticket's link opens; no credentials, read-only.
        add("GET", "/browse/{key}", self.browse_page, auth=False)

    # ----- the page a link opens -----------------------------------------------------------
    def browse_page(self, request: Request) -> Response:
        issue = self.by_key.get(request.params["key"].upper())
        if issue is None:
            return not_found_page("Jira", f"issue {request.params['key']}")
        return jira_issue_page(issue, self._links_of(issue.key))

    # ----- helpers --------------------------------------------------------------------------
    def _json_body(self, request: Request) -> Any:
        if request.content_type != "application/json":
            raise HttpError(
                error_collection(415, ["Unsupported Media Type: send application/json"])
            )
        try:
            return request.json()
        except BadJson as error:
            raise fail(
                400, f"Unexpected character or malformed JSON in the request body: {error}"
            ) from None

    def _issue(self, key_or_id: str) -> Issue:
        issue = self.by_key.get(key_or_id.upper()) or self.issues.get(key_or_id)
        if issue is None:
            raise fail(404, "Issue does not exist or you do not have permission to see it.")
        return issue

    def _project(self, key_or_id: str) -> dict[str, str] | None:
        for project in PROJECTS:
            if key_or_id in (project["id"], project["key"]) or key_or_id.upper() == project["key"]:
                return project
        return None

    def _self(self, request: Request, issue: Issue) -> str:
        return f"{request.origin}/jira/rest/api/3/issue/{issue.id}"

    def _adf_problem(self, value: Any) -> str | None:
        problem = self.adf.problem(value)
        return None if problem is None else f"{ADF_MESSAGE} ({problem})"

    # ----- create ---------------------------------------------------------------------------
    def create_issue(self, request: Request) -> Response:
        body = self._json_body(request)
        outcome = self._create(body)
        if outcome.issue is None:
            return error_collection(400, outcome.messages, outcome.errors)
        issue = outcome.issue
        return json_response(
            201, {"id": issue.id, "key": issue.key, "self": self._self(request, issue)}
        )

    def create_issues_bulk(self, request: Request) -> Response:
        body = self._json_body(request)
        updates = body.get("issueUpdates") if isinstance(body, dict) else None
        if not isinstance(updates, list) or not updates:
            raise fail(400, "issueUpdates must be a non-empty list of issues to create.")
        if len(updates) > MAX_BULK:
            raise fail(400, f"You can create at most {MAX_BULK} issues in one bulk request.")
        issues: list[dict[str, str]] = []
        errors: list[dict[str, Any]] = []
        for index, element in enumerate(updates):
            outcome = self._create(element)
            if outcome.issue is None:
                errors.append(
                    {
                        "status": 400,
                        "failedElementNumber": index,
                        "elementErrors": {
                            "errorMessages": outcome.messages,
                            "errors": outcome.errors,
                        },
                    }
                )
            else:
                issue = outcome.issue
                issues.append(
                    {"id": issue.id, "key": issue.key, "self": self._self(request, issue)}
                )
        return json_response(201 if issues else 400, {"issues": issues, "errors": errors})

    def _create(self, body: Any) -> CreateOutcome:
        if not isinstance(body, dict):
            return CreateOutcome(messages=["The issue to create must be a JSON object."])
        unknown_top = sorted(set(body) - {"fields", "update", "properties", "transition"})
        if unknown_top:
            return CreateOutcome(
                messages=[f'Unrecognized field "{unknown_top[0]}" in the request body.']
            )
        fields = body.get("fields")
        update = body.get("update") or {}
        if not isinstance(fields, dict):
            return CreateOutcome(messages=["Issue create requires 'fields' to be an object."])
        if not isinstance(update, dict):
            return CreateOutcome(messages=["'update' must be an object."])
        errors: dict[str, str] = {}
        cannot_set = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."
        for name in list(fields) + list(update):
            if name not in CREATE_FIELDS and name != "comment":
                errors[name] = cannot_set.format(name)
        if "comment" in fields:
            errors["comment"] = cannot_set.format("comment")
        for name in set(fields) & set(update):
            errors[name] = f"Field '{name}' cannot be set in both 'fields' and 'update'."

        project = self._check_project(fields.get("project"), errors)
        issuetype = self._check_issuetype(fields.get("issuetype"), errors)
        summary = self._check_summary(fields, errors)
        for name in ADF_FIELDS:
            if fields.get(name) is not None and (problem := self._adf_problem(fields[name])):
                errors[name] = problem
        labels = self._check_labels(fields.get("labels", []), errors)
        labels = self._apply_label_updates(labels, update.get("labels"), errors)
        comments = self._check_comment_updates(update.get("comment"), errors)
        priority = self._check_priority(fields, errors)
        assignee = self._check_assignee(fields.get("assignee"), errors)
        parent = self._check_parent(fields, issuetype, errors)
        sprint = self._check_sprint(fields, errors)
        duedate = self._check_duedate(fields.get("duedate"), errors)
        if (
            project is not None
            and issuetype is not None
            and issuetype not in issue_types_of(project)
        ):
            errors["issuetype"] = "The issue type selected is invalid."
        if errors or project is None or issuetype is None or summary is None:
            return CreateOutcome(errors=errors)

        number = self.next_number[project["key"]]
        self.next_number[project["key"]] = number + 1
        created = _now()
        issue = Issue(
            id=str(self.next_issue_id),
            key=f"{project['key']}-{number}",
            project=project,
            issuetype=issuetype,
            summary=summary,
            created=created,
            updated=created,
            visible_at=time.monotonic() + self.config.index_lag,
            description=fields.get("description"),
            environment=fields.get("environment"),
            priority=priority,
            labels=labels,
            assignee=assignee,
            parent=parent,
            sprint=sprint,
            duedate=duedate,
        )
        self.next_issue_id += 1
        self.issues[issue.id] = issue
        self.by_key[issue.key] = issue
        for body_adf in comments:
            self._append_comment(issue, body_adf)
        return CreateOutcome(issue=issue)

    def _check_project(self, value: Any, errors: dict[str, str]) -> dict[str, str] | None:
        if not isinstance(value, dict) or not (value.get("key") or value.get("id")):
            errors["project"] = "Specify a valid project ID or key"
            return None
        project = self._project(str(value.get("key") or value.get("id")))
        if project is None:
            errors["project"] = "valid project is required"
        return project

    def _check_issuetype(self, value: Any, errors: dict[str, str]) -> dict[str, Any] | None:
        if not isinstance(value, dict) or not (value.get("name") or value.get("id")):
            errors["issuetype"] = "Specify an issue type"
            return None
        for issuetype in ISSUE_TYPES:
            if value.get("id") == issuetype["id"] or value.get("name") == issuetype["name"]:
                return issuetype
        errors["issuetype"] = "The issue type selected is invalid."
        return None

    def _check_summary(self, fields: dict[str, Any], errors: dict[str, str]) -> str | None:
        summary = fields.get("summary")
        if summary is None or (isinstance(summary, str) and not summary.strip()):
            errors["summary"] = "You must specify a summary of the issue."
        elif not isinstance(summary, str):
            errors["summary"] = "Operation value must be a string"
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        elif len(summary) > MAX_SUMMARY:
            errors["summary"] = f"Summary must be less than {MAX_SUMMARY} characters."
        else:
            return summary
        return None

    def _label_problem(self, label: Any) -> str | None:
        if not isinstance(label, str) or not label:
            return "Labels must be non-empty strings."
        if any(character.isspace() for character in label):
            return f"The label '{label}' contains spaces which is invalid."
        if len(label) > MAX_LABEL:
            return f"The label '{label[:20]}...' exceeds the {MAX_LABEL} character limit."
        return None

    def _check_labels(self, value: Any, errors: dict[str, str]) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            errors["labels"] = "Labels must be a list of strings."
            return []
        for label in value:
            if problem := self._label_problem(label):
                errors["labels"] = problem
                return []
        return list(dict.fromkeys(value))

    def _apply_label_updates(
        self, labels: list[str], operations: Any, errors: dict[str, str]
    ) -> list[str]:
        if operations is None:
            return labels
        if not isinstance(operations, list):
            errors["labels"] = "Update operations for labels must be a list."
            return labels
        result = list(labels)
        for operation in operations:
            if not isinstance(operation, dict) or len(operation) != 1:
                errors["labels"] = "Each label update is one of {add|remove|set: value}."
                return labels
            ((verb, value),) = operation.items()
            values = value if verb == "set" else [value]
            if verb not in ("add", "remove", "set") or not isinstance(values, list):
                errors["labels"] = f"Unsupported label update operation '{verb}'."
                return labels
            for label in values:
                if problem := self._label_problem(label):
                    errors["labels"] = problem
                    return labels
            if verb == "set":
                result = list(dict.fromkeys(values))
            elif verb == "add" and value not in result:
                result.append(value)
            elif verb == "remove" and value in result:
                result.remove(value)
        return result

    def _check_comment_updates(self, operations: Any, errors: dict[str, str]) -> list[Any]:
        if operations is None:
            return []
        bodies = []
        if isinstance(operations, list):
            for operation in operations:
                add = operation.get("add") if isinstance(operation, dict) else None
                if not isinstance(add, dict) or "body" not in add:
                    break
                if problem := self._adf_problem(add["body"]):
                    errors["comment"] = problem
                    return []
                bodies.append(add["body"])
            else:
                return bodies
        errors["comment"] = 'Comment updates take the form [{"add": {"body": <ADF>}}].'
        return []

    def _check_priority(self, fields: dict[str, Any], errors: dict[str, str]) -> dict | None:
        if "priority" not in fields:
            return _priority(DEFAULT_PRIORITY_ID)
        value = fields["priority"]
        if not isinstance(value, dict) or not (value.get("id") or value.get("name")):
            errors["priority"] = "Specify the Priority (id or name) in the string format"
            return None
        for priority in PRIORITIES:
            if value.get("id") == priority["id"] or value.get("name") == priority["name"]:
                return _priority(priority["id"])
        errors["priority"] = "The priority selected is invalid."
        return None

    def _check_assignee(self, value: Any, errors: dict[str, str]) -> dict[str, str] | None:
        if value is None:
            return None
        account = value.get("id") or value.get("accountId") if isinstance(value, dict) else None
        for user in USERS:
            if account == user["accountId"]:
                return dict(user)
        errors["assignee"] = f"User '{account}' cannot be assigned issues."
        return None

    def _check_parent(
        self, fields: dict[str, Any], issuetype: dict[str, Any] | None, errors: dict[str, str]
    ) -> str | None:
        value = fields.get("parent")
        if value is None:
            if issuetype is not None and issuetype["subtask"]:
                errors["parent"] = 'A sub-task needs a parent: set parent to {"key": ...}.'
            return None
        reference = value.get("key") or value.get("id") if isinstance(value, dict) else None
        parent = (
            (self.by_key.get(str(reference).upper()) or self.issues.get(str(reference)))
            if reference
            else None
        )
        if parent is None:
            errors["parent"] = "Could not find issue by id or key."
            return None
        if issuetype is not None:
            wanted_level = issuetype["hierarchyLevel"] + 1
            if parent.issuetype["hierarchyLevel"] != wanted_level:
                errors["parent"] = "Given parent issue does not belong to appropriate hierarchy."
                return None
        return parent.key

    def _check_sprint(self, fields: dict[str, Any], errors: dict[str, str]) -> int | None:
        if SPRINT_FIELD not in fields or fields[SPRINT_FIELD] is None:
            return None
        value = fields[SPRINT_FIELD]
        if not isinstance(value, int) or isinstance(value, bool):
            errors[SPRINT_FIELD] = "Number value expected as the Sprint id."
            return None
        sprint = self.sprints.get(value)
        if sprint is None:
            errors[SPRINT_FIELD] = (
                f"Sprint with id {value} does not exist or you do not have permission to see it."
            )
            return None
        if sprint["state"] == "closed":
            errors[SPRINT_FIELD] = "Issue can be assigned only active or future sprints."
            return None
        return value

    def _check_duedate(self, value: Any, errors: dict[str, str]) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                datetime.strptime(value, "%Y-%m-%d")
            except ValueError:
                pass
            else:
                return value
        errors["duedate"] = f"Error parsing date string: {value}"
        return None

    # ----- read -----------------------------------------------------------------------------
    def get_issue(self, request: Request) -> Response:
        issue = self._issue(request.params["key"])
        wanted = _wanted_fields(request.args("fields"), default_all=True)
        return json_response(200, self._render(request, issue, wanted))

    def _render(self, request: Request, issue: Issue, wanted: set[str] | None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": issue.id,
            "self": self._self(request, issue),
            "key": issue.key,
        }
        fields: dict[str, Any] = {}
        for name in SEARCHABLE_FIELDS:
            if wanted is None or name in wanted:
                fields[name] = self._field(request, issue, name)
        data["fields"] = fields
        return data

    def _field(self, request: Request, issue: Issue, name: str) -> Any:
        origin = request.origin
        if name == "project":
            project = issue.project
            return {
                "self": f"{origin}/jira/rest/api/3/project/{project['id']}",
                **project,
                "projectTypeKey": "software",
            }
        if name == "issuetype":
            return {
                "self": f"{origin}/jira/rest/api/3/issuetype/{issue.issuetype['id']}",
                **issue.issuetype,
            }
        if name == "status":
            return _status(origin, issue.status)
        if name == "parent":
            parent = self.by_key.get(issue.parent) if issue.parent else None
            return (
                None
                if parent is None
                else {"id": parent.id, "key": parent.key, "self": self._self(request, parent)}
            )
        if name == "assignee":
            return (
                None
                if issue.assignee is None
                else {**issue.assignee, "active": True, "accountType": "atlassian"}
            )
        if name in ("created", "updated"):
            return jira_time(
                issue.created if name == "created" else (issue.updated or issue.created)
            )
        if name == "issuelinks":
            return [
                self._render_link(request, link, issue.key) for link in self._links_of(issue.key)
            ]
        if name == "comment":
            return {
                "comments": issue.comments,
                "maxResults": len(issue.comments),
                "total": len(issue.comments),
                "startAt": 0,
            }
        if name == "attachment":
            return issue.attachments
        if name == "subtasks":
            return [
                {"id": child.id, "key": child.key, "self": self._self(request, child)}
                for child in self.issues.values()
                if child.parent == issue.key and child.issuetype["subtask"]
            ]
        if name == SPRINT_FIELD:
            if issue.sprint is None:
                return None
            sprint = self.sprints[issue.sprint]
            return [
                {
                    key: sprint[key]
                    for key in ("id", "name", "state", "boardId", "goal", "startDate", "endDate")
                    if key in sprint
                }
            ]
        if name == "labels":
            return list(issue.labels)
        return getattr(issue, name)

    def _links_of(self, key: str) -> list[dict[str, Any]]:
        return [link for link in self.links if key in (link["inward"], link["outward"])]

    def _render_link(self, request: Request, link: dict[str, Any], key: str) -> dict[str, Any]:
        link_type = next(kind for kind in LINK_TYPES if kind["name"] == link["type"])
        rendered: dict[str, Any] = {
            "id": link["id"],
            "self": f"{request.origin}/jira/rest/api/3/issueLink/{link['id']}",
            "type": {
                **link_type,
                "self": f"{request.origin}/jira/rest/api/3/issueLinkType/{link_type['id']}",
            },
        }
        # The issue named ``inwardIssue`` in the POST is the one that "blocks" (INTEGRATIONS §1d).
        # On the other issue Jira shows it under ``inwardIssue`` ("this issue is blocked by X");
        # on the blocker it shows the blocked issue under ``outwardIssue`` ("this issue blocks Y").
        if link["outward"] == key:
            other = self.by_key[link["inward"]]
            rendered["inwardIssue"] = self._link_end(request, other)
        else:
            other = self.by_key[link["outward"]]
            rendered["outwardIssue"] = self._link_end(request, other)
        return rendered

    def _link_end(self, request: Request, issue: Issue) -> dict[str, Any]:
        return {
            "id": issue.id,
            "key": issue.key,
            "self": self._self(request, issue),
            "fields": {
                "summary": issue.summary,
                "status": _status(request.origin, issue.status),
                "priority": issue.priority,
                "issuetype": issue.issuetype,
            },
        }

    # ----- comments -------------------------------------------------------------------------
    def list_comments(self, request: Request) -> Response:
        issue = self._issue(request.params["key"])
        return json_response(
            200,
            {
                "comments": issue.comments,
                "maxResults": len(issue.comments),
                "total": len(issue.comments),
                "startAt": 0,
            },
        )

    def add_comment(self, request: Request) -> Response:
        issue = self._issue(request.params["key"])
        body = self._json_body(request)
        if not isinstance(body, dict) or body.get("body") is None:
            raise fail(400, errors={"comment": "Comment body can not be empty!"})
        if problem := self._adf_problem(body["body"]):
            raise fail(400, errors={"comment": problem})
        unknown = sorted(set(body) - {"body", "visibility", "properties"})
        if unknown:
            raise fail(400, f'Unrecognized field "{unknown[0]}" in the comment.')
        comment = self._append_comment(issue, body["body"])
        return json_response(201, comment)

    def _append_comment(self, issue: Issue, body: Any) -> dict[str, Any]:
        moment = jira_time(_now())
        comment = {
            "id": str(self.next_comment_id),
            "author": {"accountId": USERS[0]["accountId"], "displayName": USERS[0]["displayName"]},
            "body": body,
            "created": moment,
            "updated": moment,
            "jsdPublic": True,
        }
        self.next_comment_id += 1
        issue.comments.append(comment)
        issue.updated = _now()
        return comment

    # ----- transitions ----------------------------------------------------------------------
    def list_transitions(self, request: Request) -> Response:
        issue = self._issue(request.params["key"])
        transitions = [
            {
                "id": transition_id,
                "name": name,
                "to": _status(request.origin, target),
                "hasScreen": False,
                "isGlobal": False,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
                "isLooped": False,
            }
            for transition_id, name, target in WORKFLOW[issue.status]
        ]
        return json_response(200, {"expand": "transitions", "transitions": transitions})

    def do_transition(self, request: Request) -> Response:
        issue = self._issue(request.params["key"])
        body = self._json_body(request)
        transition = body.get("transition") if isinstance(body, dict) else None
        transition_id = transition.get("id") if isinstance(transition, dict) else None
        if transition_id is None:
            raise fail(400, "Missing 'transition' identifier")
        fields = body.get("fields") or {}
        update = body.get("update") or {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            raise fail(400, "'fields' and 'update' must be objects.")
        errors = {
            name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            for name in list(fields) + [name for name in update if name != "comment"]
        }
        comments = self._check_comment_updates(update.get("comment"), errors)
        if errors:
            raise fail(400, errors=errors)
        for tid, name, target in WORKFLOW[issue.status]:
            if tid == str(transition_id):
                issue.history.append(
                    {
                        "id": tid,
                        "name": name,
                        "from": issue.status,
                        "to": target,
                        "at": jira_time(_now()),
                    }
                )
                issue.status = target
                issue.updated = _now()
                for comment in comments:
                    self._append_comment(issue, comment)
                return empty_response(204)
        raise fail(400, f"Transition id '{transition_id}' is not valid for this issue.")

    # ----- links ----------------------------------------------------------------------------
    def list_link_types(self, request: Request) -> Response:
        return json_response(200, {"issueLinkTypes": list(LINK_TYPES)})

    def link_issues(self, request: Request) -> Response:
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise fail(400, "The link must be a JSON object.")
        link_type = body.get("type")
        name = link_type.get("name") if isinstance(link_type, dict) else None
        type_id = link_type.get("id") if isinstance(link_type, dict) else None
        if not name and not type_id:
            raise fail(400, "Issue link type is required.")
        kind = next(
            (kind for kind in LINK_TYPES if name == kind["name"] or type_id == kind["id"]), None
        )
        if kind is None:
            raise fail(404, f"No issue link type with name '{name or type_id}' found.")
        ends = []
        for side in ("inwardIssue", "outwardIssue"):
            reference = body.get(side)
            ref = (
                (reference.get("key") or reference.get("id"))
                if isinstance(reference, dict)
                else None
            )
            if not ref:
                raise fail(400, f"{side} is required.")
            ends.append(self._issue(str(ref)))
        blocker, blocked = ends
        if blocker.key == blocked.key:
            raise fail(400, "You cannot link an issue to itself.")
        if body.get("comment") is not None:
            comment = body["comment"]
            adf = comment.get("body") if isinstance(comment, dict) else None
            if problem := self._adf_problem(adf):
                raise fail(400, errors={"comment": problem})
        duplicate = any(
            link["type"] == kind["name"]
            and link["inward"] == blocker.key
            and link["outward"] == blocked.key
            for link in self.links
        )
        if not duplicate:
            self.links.append(
                {
                    "id": str(self.next_link_id),
                    "type": kind["name"],
                    "inward": blocker.key,
                    "outward": blocked.key,
                    "meaning": f"{blocker.key} {kind['outward']} {blocked.key}",
                }
            )
            self.next_link_id += 1
        return empty_response(201)

    # ----- attachments ----------------------------------------------------------------------
    def add_attachments(self, request: Request) -> Response:
        if (request.header("X-Atlassian-Token") or "").strip().lower() != "no-check":
            return text_response(403, "XSRF check failed")
        issue = self._issue(request.params["key"])
        if request.content_type != "multipart/form-data":
            raise fail(415, "Attachments must be sent as multipart/form-data.")
        parts = parse_multipart(request.header("Content-Type") or "", request.body)
        if parts is None:
            raise fail(400, "The multipart body could not be parsed.")
        wrong = [part.name for part in parts if part.name != "file"]
        files = [part for part in parts if part.name == "file" and part.filename is not None]
        if wrong or not files:
            raise fail(400, "Attachments must be sent in multipart form fields named 'file'.")
        if len(files) > MAX_ATTACHMENT_FILES:
            raise fail(413, f"You can attach at most {MAX_ATTACHMENT_FILES} files in one request.")
        limit = self.config.jira_max_attachment_bytes
        for part in files:
            if len(part.data) > limit:
                raise fail(
                    413,
                    f"The file '{part.filename}' is larger than the attachment limit of {limit} bytes.",
                )
        created = []
        for part in files:
            attachment = {
                "self": f"{request.origin}/jira/rest/api/3/attachment/{self.next_attachment_id}",
                "id": str(self.next_attachment_id),
                "filename": part.filename,
                "author": {
                    "accountId": USERS[0]["accountId"],
                    "displayName": USERS[0]["displayName"],
                },
                "created": jira_time(_now()),
                "size": len(part.data),
                "mimeType": part.content_type or "application/octet-stream",
                "content": f"{request.origin}/jira/rest/api/3/attachment/content/{self.next_attachment_id}",
                "sha256": hashlib.sha256(part.data).hexdigest(),
            }
            self.next_attachment_id += 1
            issue.attachments.append(attachment)
            created.append({key: value for key, value in attachment.items() if key != "sha256"})
        issue.updated = _now()
        return json_response(200, created)

    # ----- properties -----------------------------------------------------------------------
    def list_properties(self, request: Request) -> Response:
        issue = self._issue(request.params["key"])
        base = f"{self._self(request, issue)}/properties"
        keys = [{"self": f"{base}/{key}", "key": key} for key in issue.properties]
        return json_response(200, {"keys": keys})

    def get_property(self, request: Request) -> Response:
        issue = self._issue(request.params["key"])
        key = request.params["prop"]
        if key not in issue.properties:
            raise fail(404, f"The property with key '{key}' does not exist.")
        return json_response(200, {"key": key, "value": issue.properties[key]})

    def put_property(self, request: Request) -> Response:
        issue = self._issue(request.params["key"])
        key = request.params["prop"]
        if len(key) > MAX_PROPERTY_KEY:
            raise fail(400, f"The property key can have at most {MAX_PROPERTY_KEY} characters.")
        if len(request.body) > MAX_PROPERTY_BYTES:
            raise fail(400, f"The property value can be at most {MAX_PROPERTY_BYTES} bytes.")
        value = self._json_body(request)
        if value in ({}, [], "", None):
            raise fail(400, "The property value must be a non-empty JSON value.")
        created = key not in issue.properties
        issue.properties[key] = value
        return empty_response(201 if created else 200)

    # ----- search ---------------------------------------------------------------------------
    def search_removed(self, request: Request) -> Response:
        return error_collection(
            410,
            [
                "The requested API has been removed. Please migrate to the "
                "/rest/api/3/search/jql API. A full migration guideline is available at "
                "https://developer.atlassian.com/changelog/#CHANGE-2046"
            ],
        )

    def search(self, request: Request) -> Response:
        if request.method == "POST":
            body = self._json_body(request)
            if not isinstance(body, dict):
                raise fail(400, "The search request must be a JSON object.")
            jql = body.get("jql")
            max_results = body.get("maxResults", 50)
            token = body.get("nextPageToken")
            fields_arg = body.get("fields")
            fields_list = fields_arg if isinstance(fields_arg, list) else None
            if fields_arg is not None and fields_list is None:
                raise fail(400, "fields must be a list of field ids.")
            reconcile = body.get("reconcileIssues") or []
        else:
            jql = request.arg("jql")
            max_results = request.arg("maxResults", "50")
            token = request.arg("nextPageToken")
            fields_list = request.args("fields") or None
            reconcile = [
                part
                for value in request.args("reconcileIssues")
                for part in value.split(",")
                if part
            ]
        if not isinstance(jql, str) or not jql.strip():
            raise fail(
                400,
                "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.",
            )
        try:
            max_results = int(max_results)
        except (TypeError, ValueError):
            raise fail(400, "maxResults must be an integer.") from None
        if max_results < 0:
            raise fail(400, "maxResults must not be negative.")
        reconcile_ids = _reconcile_ids(reconcile)
        wanted = _wanted_fields(fields_list, default_all=False)
        # Without ``fields`` (or with just ``id``) Jira returns ids only; asking for anything else,
        # even just ``key``, returns the issue's id, key and self plus the requested fields.
        only_ids = wanted is not None and not wanted and not _names_besides_id(fields_list)
        cap = 5000 if only_ids else 100
        max_results = min(max_results, cap)
        query = parse_jql(jql)
        if not query.clauses:
            raise fail(
                400,
                "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.",
            )
        self._check_jql_values(query)
        now = time.monotonic()
        found = [
            issue
            for issue in self.issues.values()
            if (issue.visible_at <= now or int(issue.id) in reconcile_ids) and query.matches(issue)
        ]
        for name, descending in reversed(query.order):
            found.sort(key=_sort_key(name), reverse=descending)
        digest = hashlib.sha1(jql.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
        offset = _decode_token(token, digest) if token else 0
        page = found[offset : offset + max_results]
        next_offset = offset + len(page)
        payload: dict[str, Any] = {
            "issues": [
                {"id": issue.id} if only_ids else self._render(request, issue, wanted)
                for issue in page
            ],
            "isLast": next_offset >= len(found),
        }
        if not payload["isLast"]:
            payload["nextPageToken"] = base64.urlsafe_b64encode(
                f"{next_offset}:{digest}".encode()
            ).decode("ascii")
        return json_response(200, payload)

    def _check_jql_values(self, query: Jql) -> None:
        for clause in query.clauses:
            for value in clause.values:
                if clause.field == "project" and self._project(value) is None:
                    raise fail(400, f"The value '{value}' does not exist for the field 'project'.")
                if clause.field == "status" and not any(
                    value.lower() == status.lower() for status in STATUSES
                ):
                    raise fail(400, f"The value '{value}' does not exist for the field 'status'.")
                if clause.field == "issuetype" and not any(
                    value.lower() == kind["name"].lower() for kind in ISSUE_TYPES
                ):
                    raise fail(
                        400, f"The value '{value}' does not exist for the field 'issuetype'."
                    )
                if clause.field == "key":
                    if not ISSUE_KEY.match(value.upper()):
                        raise fail(400, f"The issue key '{value}' for field 'key' is invalid.")
                    if value.upper() not in self.by_key:
                        raise fail(
                            400, f"An issue with key '{value}' does not exist for field 'key'."
                        )

    # ----- permissions, metadata, users -----------------------------------------------------
    def my_permissions(self, request: Request) -> Response:
        requested = request.arg("permissions")
        if not requested or not requested.strip():
            raise fail(400, "The 'permissions' query parameter is required.")
        keys = [key.strip() for key in requested.split(",") if key.strip()]
        unknown = [key for key in keys if key not in PERMISSIONS]
        if not keys or unknown:
            raise fail(400, f"Invalid permission key(s): {', '.join(unknown) or requested}.")
        project_ref = request.arg("projectKey") or request.arg("projectId")
        if project_ref is not None and self._project(project_ref) is None:
            raise fail(404, f"No project could be found with key '{project_ref}'.")
        permissions = {
            key: {
                "id": str(index + 1),
                "key": key,
                "name": key.replace("_", " ").title(),
                "type": "PROJECT",
                "description": f"Fake permission {key}.",
                "havePermission": True,
            }
            for index, key in enumerate(keys)
        }
        return json_response(200, {"permissions": permissions})

    def _createmeta_project(self, request: Request) -> dict[str, str]:
        project = self._project(request.params["project"])
        if project is None:
            raise fail(404, f"No project could be found with key '{request.params['project']}'.")
        return project

    def createmeta_types(self, request: Request) -> Response:
        project = self._createmeta_project(request)
        start, size = _page_args(request, default=50, cap=200)
        types = [
            {
                "self": f"{request.origin}/jira/rest/api/3/issuetype/{kind['id']}",
                "id": kind["id"],
                "name": kind["name"],
                "subtask": kind["subtask"],
                "hierarchyLevel": kind["hierarchyLevel"],
                "description": f"A {kind['name'].lower()}.",
            }
            for kind in issue_types_of(project)
        ]
        return _page_response("issueTypes", types, start, size)

    def createmeta_fields(self, request: Request) -> Response:
        project = self._createmeta_project(request)
        kind = next(
            (kind for kind in issue_types_of(project) if kind["id"] == request.params["type_id"]),
            None,
        )
        if kind is None:
            raise fail(404, f"Issue type with id '{request.params['type_id']}' does not exist.")
        start, size = _page_args(request, default=50, cap=200)
        fields = _create_fields(request.origin, project, kind, self.sprints)
        return _page_response("fields", fields, start, size)

    def list_priorities(self, request: Request) -> Response:
        return json_response(
            200,
            [
                {
                    "self": f"{request.origin}/jira/rest/api/3/priority/{priority['id']}",
                    **priority,
                    "description": f"{priority['name']} priority.",
                }
                for priority in PRIORITIES
            ],
        )

    def list_fields(self, request: Request) -> Response:
        project = PROJECTS[0]
        fields = _create_fields(request.origin, project, ISSUE_TYPES[0], self.sprints)
        listing = [
            {
                "id": field["fieldId"],
                "key": field["key"],
                "name": field["name"],
                "custom": field["fieldId"].startswith("customfield_"),
                "navigable": True,
                "searchable": True,
                "schema": field["schema"],
            }
            for field in fields
        ]
        listing.append(
            {
                "id": "status",
                "key": "status",
                "name": "Status",
                "custom": False,
                "navigable": True,
                "searchable": True,
                "schema": {"type": "status", "system": "status"},
            }
        )
        return json_response(200, listing)

    def myself(self, request: Request) -> Response:
        credentials = request.basic_credentials()
        user = dict(USERS[0])
        if credentials:
            user["emailAddress"] = credentials[0]
        return json_response(200, {**user, "active": True, "accountType": "atlassian"})

    def get_project(self, request: Request) -> Response:
        project = self._createmeta_project(request)
        return json_response(
            200,
            {
                "self": f"{request.origin}/jira/rest/api/3/project/{project['id']}",
                **project,
                "projectTypeKey": "service_desk"
                if project["key"] == "ORCHESTRATION"
                else "software",
                "issueTypes": issue_types_of(project),
            },
        )

    def assignable_users(self, request: Request) -> Response:
        reference = request.arg("project") or request.arg("issueKey")
        if not reference:
            raise fail(400, "One of the parameters 'project' or 'issueKey' is required.")
        if request.arg("project") and self._project(reference) is None:
            raise fail(404, f"No project could be found with key '{reference}'.")
        if request.arg("issueKey"):
            self._issue(reference)
        query = (request.arg("query") or "").lower()
        start, size = _page_args(request, default=50, cap=1000)
        users = [
            {
                "self": f"{request.origin}/jira/rest/api/3/user?accountId={user['accountId']}",
                **user,
                "accountType": "atlassian",
                "active": True,
            }
            for user in USERS
            if query in user["displayName"].lower() or query in user["emailAddress"].lower()
        ]
        return json_response(200, users[start : start + size])

    # ----- agile ----------------------------------------------------------------------------
    def list_boards(self, request: Request) -> Response:
        """One Scrum board, on the OPS project (Jira Software's board search, filtered)."""
        board = {
            "id": BOARD_ID,
            "self": f"{request.origin}/jira/rest/agile/1.0/board/{BOARD_ID}",
            "name": "OPS board",
            "type": "scrum",
            "location": {"projectKey": "OPS", "projectName": "Operations"},
        }
        wanted = (request.arg("projectKeyOrId") or "").upper()
        kind = request.arg("type")
        boards = [
            board
            for board in [board]
            if (not wanted or wanted in ("OPS", "10000")) and (not kind or kind == "scrum")
        ]
        start, size = _page_args(request, default=50, cap=50)
        page = boards[start : start + size]
        return json_response(
            200,
            {
                "maxResults": size,
                "startAt": start,
                "total": len(boards),
                "isLast": start + len(page) >= len(boards),
                "values": page,
            },
        )

    def list_sprints(self, request: Request) -> Response:
        if request.params["board"] != str(BOARD_ID):
            raise fail(
                404,
                f"Board {request.params['board']} does not exist or you do not have permission to see it.",
            )
        states = [
            state.strip()
            for value in request.args("state")
            for state in value.split(",")
            if state.strip()
        ]
        invalid = [state for state in states if state not in ("future", "active", "closed")]
        if invalid:
            raise fail(
                400, f"Invalid sprint state(s): {', '.join(invalid)}; use future, active or closed."
            )
        start, size = _page_args(request, default=50, cap=50)
        sprints = [
            {**sprint, "self": f"{request.origin}/jira/rest/agile/1.0/sprint/{sprint['id']}"}
            for sprint in self.sprints.values()
            if not states or sprint["state"] in states
        ]
        page = sprints[start : start + size]
        return json_response(
            200,
            {
                "maxResults": size,
                "startAt": start,
                "total": len(sprints),
                "isLast": start + len(page) >= len(sprints),
                "values": page,
            },
        )

    def _sprint(self, request: Request) -> dict[str, Any]:
        try:
            sprint = self.sprints.get(int(request.params["sprint"]))
        except ValueError:
            sprint = None
        if sprint is None:
            raise fail(404, "Sprint does not exist or you do not have permission to see it.")
        return sprint

    def get_sprint(self, request: Request) -> Response:
        sprint = self._sprint(request)
        return json_response(
            200, {**sprint, "self": f"{request.origin}/jira/rest/agile/1.0/sprint/{sprint['id']}"}
        )

    def move_to_sprint(self, request: Request) -> Response:
        sprint = self._sprint(request)
        body = self._json_body(request)
        keys = body.get("issues") if isinstance(body, dict) else None
        if not isinstance(keys, list) or not keys:
            raise fail(400, "'issues' must be a non-empty list of issue keys or ids.")
        if len(keys) > MAX_SPRINT_MOVE:
            raise fail(400, f"At most {MAX_SPRINT_MOVE} issues can be moved to a sprint at once.")
        if sprint["state"] == "closed":
            raise fail(400, "Issues can be moved only to open or active sprints.")
        issues = []
        for reference in keys:
            issue = self.by_key.get(str(reference).upper()) or self.issues.get(str(reference))
            if issue is None:
                raise fail(
                    400,
                    f"Issue '{reference}' does not exist or you do not have permission to see it.",
                )
            issues.append(issue)
        for issue in issues:
            issue.sprint = sprint["id"]
            issue.updated = _now()
        return empty_response(204)


# ----- pure helpers ---------------------------------------------------------------------------
def _priority(priority_id: str) -> dict[str, str]:
    priority = next(priority for priority in PRIORITIES if priority["id"] == priority_id)
    return {"id": priority["id"], "name": priority["name"]}


def _status(origin: str, name: str) -> dict[str, Any]:
    status = STATUSES[name]
    key, category_name, category_id = status["category"]
    return {
        "self": f"{origin}/jira/rest/api/3/status/{status['id']}",
        "id": status["id"],
        "name": name,
        "statusCategory": {"id": category_id, "key": key, "name": category_name},
    }


def _seed_sprints(now: datetime) -> dict[int, dict[str, Any]]:
    def day(offset: int) -> str:
        return (now + timedelta(days=offset)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    closed = {
        "id": ACTIVE_SPRINT_ID - 1,
        "state": "closed",
        "name": "OPS Sprint 41",
        "startDate": day(-21),
        "endDate": day(-7),
        "completeDate": day(-7),
        "createdDate": day(-28),
        "originBoardId": BOARD_ID,
        "boardId": BOARD_ID,
        "goal": "Quiet pager",
    }
    active = {
        "id": ACTIVE_SPRINT_ID,
        "state": "active",
        "name": "OPS Sprint 42",
        "startDate": day(-7),
        "endDate": day(7),
        "createdDate": day(-14),
        "originBoardId": BOARD_ID,
        "boardId": BOARD_ID,
        "goal": "Fewer flaky tests",
    }
    future = {
        "id": ACTIVE_SPRINT_ID + 1,
        "state": "future",
        "name": "OPS Sprint 43",
        "createdDate": day(-1),
        "originBoardId": BOARD_ID,
        "boardId": BOARD_ID,
        "goal": "",
    }
    return {sprint["id"]: sprint for sprint in (closed, active, future)}


def _create_fields(
    origin: str, project: dict[str, str], kind: dict[str, Any], sprints: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    set_only = ["set"]

    def entry(field_id: str, name: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "required": False,
            "schema": schema,
            "name": name,
            "key": field_id,
            "fieldId": field_id,
            "hasDefaultValue": False,
            "operations": set_only,
            **extra,
        }

    fields = [
        entry("summary", "Summary", {"type": "string", "system": "summary"}, required=True),
        entry(
            "issuetype",
            "Issue Type",
            {"type": "issuetype", "system": "issuetype"},
            required=True,
            operations=[],
            allowedValues=[{"id": kind["id"], "name": kind["name"], "subtask": kind["subtask"]}],
        ),
        entry(
            "project",
            "Project",
            {"type": "project", "system": "project"},
            required=True,
            allowedValues=[{"id": project["id"], "key": project["key"], "name": project["name"]}],
        ),
    ]
    if kind["subtask"] or kind["hierarchyLevel"] == 0:
        fields.append(
            entry(
                "parent",
                "Parent",
                {"type": "issuelink", "system": "parent"},
                required=bool(kind["subtask"]),
            )
        )
    fields += [
        entry("description", "Description", {"type": "string", "system": "description"}),
        entry("environment", "Environment", {"type": "string", "system": "environment"}),
        entry(
            "priority",
            "Priority",
            {"type": "priority", "system": "priority"},
            hasDefaultValue=True,
            defaultValue=_priority(DEFAULT_PRIORITY_ID),
            allowedValues=[
                {
                    "self": f"{origin}/jira/rest/api/3/priority/{p['id']}",
                    "id": p["id"],
                    "name": p["name"],
                }
                for p in PRIORITIES
            ],
        ),
        entry(
            "labels",
            "Labels",
            {"type": "array", "items": "string", "system": "labels"},
            operations=["add", "set", "remove"],
            autoCompleteUrl=f"{origin}/jira/rest/api/1.0/labels/suggest?query=",
        ),
        entry(
            "assignee",
            "Assignee",
            {"type": "user", "system": "assignee"},
            autoCompleteUrl=f"{origin}/jira/rest/api/3/user/assignable/search?project={project['key']}&query=",
        ),
        entry("duedate", "Due date", {"type": "date", "system": "duedate"}),
        entry(
            SPRINT_FIELD,
            "Sprint",
            {
                "type": "array",
                "items": "json",
                "custom": "com.pyxis.greenhopper.jira:gh-sprint",
                "customId": 10020,
            },
        ),
    ]
    return fields


def _page_response(key: str, items: list[Any], start: int, size: int) -> Response:
    """One ``startAt``/``maxResults`` page of ``items`` under ``key``, with the total."""
    page = {key: items[start : start + size], "maxResults": size, "startAt": start}
    return json_response(200, {**page, "total": len(items)})


def _page_args(request: Request, default: int, cap: int) -> tuple[int, int]:
    try:
        start = int(request.arg("startAt", "0") or 0)
        size = int(request.arg("maxResults", str(default)) or default)
    except ValueError:
        raise fail(400, "startAt and maxResults must be integers.") from None
    if start < 0 or size < 0:
        raise fail(400, "startAt and maxResults must not be negative.")
    return start, min(size, cap)


def _wanted_fields(values: list[str] | None, default_all: bool) -> set[str] | None:
    """None means every field; an empty set means none (search's default: only ``id``)."""
    if not values:
        return None if default_all else set()
    names: set[str] = set()
    for value in values:
        if not isinstance(value, str):
            raise fail(400, "fields must be strings.")
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                parsed = json.loads(stripped)
            except ValueError:
                raise fail(400, "fields is not a valid list.") from None
            names.update(str(name) for name in parsed)
        else:
            names.update(name.strip() for name in stripped.split(",") if name.strip())
    if names & {"*all", "*navigable"}:
        return None
    names -= {"id", "key"}
    exclusions = {name[1:] for name in names if name.startswith("-")}
    included = {name for name in names if not name.startswith("-")}
    if included:
        return included - exclusions
    return set(SEARCHABLE_FIELDS) - exclusions if exclusions else set()


def _names_besides_id(values: list[str] | None) -> bool:
    names = {name.strip().strip('"[]') for value in values or [] for name in str(value).split(",")}
    return bool(names - {"id", ""})


def _reconcile_ids(values: Any) -> set[int]:
    if not isinstance(values, list):
        raise fail(400, "reconcileIssues must be a list of issue ids.")
    if len(values) > MAX_RECONCILE:
        raise fail(400, f"reconcileIssues accepts at most {MAX_RECONCILE} issue ids.")
    ids = set()
    for value in values:
        try:
            if isinstance(value, bool):
                raise ValueError
            ids.add(int(value))
        except (TypeError, ValueError):
            raise fail(
                400, f"reconcileIssues holds a value that is not an issue id: {value!r}"
            ) from None
    return ids


def _decode_token(token: Any, digest: str) -> int:
    try:
        offset, token_digest = base64.urlsafe_b64decode(str(token).encode()).decode().split(":")
        if token_digest != digest:
            raise ValueError
        return int(offset)
    except ValueError:
        raise fail(400, "The nextPageToken is invalid or belongs to another query.") from None


def _sort_key(name: str):
    if name == "key":
        return lambda issue: (issue.project["key"], int(issue.key.rsplit("-", 1)[1]))
    if name == "updated":
        return lambda issue: issue.updated or issue.created
    return lambda issue: (issue.created, int(issue.id))


# ----- JQL subset ----------------------------------------------------------------------------
class JqlError(ValueError):
    pass


@dataclass
class Clause:
    field: str
    negated: bool
    values: list[str]

    def matches(self, issue: Issue) -> bool:
        if self.field == "labels":
            hit = any(value in issue.labels for value in self.values)
        elif self.field == "project":
            hit = any(
                value.upper() in (issue.project["key"], issue.project["id"])
                for value in self.values
            )
        elif self.field == "key":
            hit = any(value.upper() in (issue.key, issue.id) for value in self.values)
        elif self.field == "status":
            hit = any(value.lower() == issue.status.lower() for value in self.values)
        else:  # issuetype
            hit = any(value.lower() == issue.issuetype["name"].lower() for value in self.values)
        return hit != self.negated


@dataclass
class Jql:
    clauses: list[Clause]
    order: list[tuple[str, bool]]

    def matches(self, issue: Issue) -> bool:
        return all(clause.matches(issue) for clause in self.clauses)


JQL_FIELDS = {
    "project": "project",
    "labels": "labels",
    "key": "key",
    "issuekey": "key",
    "id": "key",
    "status": "status",
    "issuetype": "issuetype",
    "type": "issuetype",
}
JQL_ORDER_FIELDS = ("created", "key", "updated")
_JQL_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<symbol>!=|=|\(|\)|,)|(?P<word>[^\s=!(),"']+))"""
)


def _tokenize(jql: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    text = jql.strip()
    while position < len(text):
        found = _JQL_TOKEN.match(text, position)
        if not found or found.end() == position:
            raise JqlError(
                f"Error in the JQL Query: unexpected character at position {position + 1}."
            )
        kind = found.lastgroup or "word"
        value = found.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
        position = found.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return tokens


def parse_jql(jql: str) -> Jql:
    """``field = v``, ``field != v``, ``field [not] in (a, b)`` joined by AND; ORDER BY created|key."""
    try:
        return _parse_jql(jql)
    except JqlError as error:
        raise fail(400, str(error)) from None


def _parse_jql(jql: str) -> Jql:
    tokens = _tokenize(jql)
    position = 0

    def peek_word(*words: str) -> bool:
        return (
            position < len(tokens)
            and tokens[position][0] == "word"
            and tokens[position][1].lower() in words
        )

    def take() -> tuple[str, str]:
        nonlocal position
        if position >= len(tokens):
            raise JqlError("Error in the JQL Query: the query ended unexpectedly.")
        token = tokens[position]
        position += 1
        return token

    def value() -> str:
        kind, text = take()
        if kind == "symbol":
            raise JqlError(f"Error in the JQL Query: expected a value but got '{text}'.")
        return text

    clauses: list[Clause] = []
    order: list[tuple[str, bool]] = []
    while position < len(tokens) and not peek_word("order"):
        if clauses:
            if not peek_word("and"):
                found = tokens[position][1]
                if found.lower() == "or":
                    raise JqlError("The fake Jira supports only AND between JQL clauses, not OR.")
                raise JqlError(f"Error in the JQL Query: expecting 'AND' but got '{found}'.")
            take()
        kind, name = take()
        if kind != "word":
            raise JqlError(f"Error in the JQL Query: expected a field name but got '{name}'.")
        field_name = JQL_FIELDS.get(name.lower())
        if field_name is None:
            raise JqlError(
                f"Field '{name}' does not exist or you do not have permission to view it."
            )
        negated = False
        if peek_word("not"):
            take()
            negated = True
            if not peek_word("in"):
                raise JqlError("Error in the JQL Query: expected 'IN' after 'NOT'.")
        if peek_word("in"):
            take()
            if take() != ("symbol", "("):
                raise JqlError("Error in the JQL Query: expected '(' after 'IN'.")
            values = [value()]
            while True:
                kind, text = take()
                if (kind, text) == ("symbol", ")"):
                    break
                if (kind, text) != ("symbol", ","):
                    raise JqlError(f"Error in the JQL Query: expected ',' or ')' but got '{text}'.")
                values.append(value())
        else:
            kind, operator = take()
            if (kind, operator) not in (("symbol", "="), ("symbol", "!=")):
                raise JqlError(
                    f"The fake Jira does not support the operator '{operator}' (use =, !=, IN)."
                )
            negated = operator == "!="
            values = [value()]
        clauses.append(Clause(field_name, negated, values))
    if position < len(tokens):
        take()
        if not peek_word("by"):
            raise JqlError("Error in the JQL Query: expected 'BY' after 'ORDER'.")
        take()
        while True:
            kind, name = take()
            if kind != "word" or name.lower() not in JQL_ORDER_FIELDS:
                raise JqlError(
                    f"The fake Jira can order only by {', '.join(JQL_ORDER_FIELDS)}; got '{name}'."
                )
            descending = False
            if peek_word("asc", "desc"):
                descending = take()[1].lower() == "desc"
            order.append((name.lower(), descending))
            if position >= len(tokens):
                break
            if take() != ("symbol", ","):
                raise JqlError("Error in the JQL Query: expected ',' between ORDER BY fields.")
    if not order:
        order = [("created", True)]
    return Jql(clauses, order)


# ----- multipart ------------------------------------------------------------------------------
@dataclass
class Part:
    name: str | None
    filename: str | None
    content_type: str | None
    data: bytes


_PARAM = re.compile(r';\s*([\w*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _header_params(value: str) -> tuple[str, dict[str, str]]:
    main = value.split(";", 1)[0].strip().lower()
    params = {}
    for name, raw in _PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[name.lower()] = raw
    return main, params


def parse_multipart(content_type: str, body: bytes) -> list[Part] | None:
    """Split a multipart/form-data body; None when it is malformed.

    Written by hand (not with ``email``) because it must stay fast for 10 MB uploads.
    """
    _, params = _header_params(content_type)
    boundary = params.get("boundary")
    if not boundary:
        return None
    delimiter = b"--" + boundary.encode("latin-1")
    if not body.startswith(delimiter):
        start = body.find(b"\r\n" + delimiter)
        if start < 0:
            return None
        body = body[start + 2 :]
    chunks = body.split(b"\r\n" + delimiter)
    first = chunks[0]
    if not first.startswith(delimiter):
        return None
    chunks[0] = first[len(delimiter) :]
    parts = []
    closed = False
    for chunk in chunks:
        if chunk.startswith(b"--"):
            closed = True
            break
        if not chunk.startswith(b"\r\n"):
            return None
        head, separator, data = chunk[2:].partition(b"\r\n\r\n")
        if not separator:
            return None
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if not colon:
                return None
            headers[name.strip().lower()] = value.strip()
        disposition, disposition_params = _header_params(headers.get("content-disposition", ""))
        if disposition != "form-data":
            return None
        filename = disposition_params.get("filename*") or disposition_params.get("filename")
        if filename and filename.lower().startswith("utf-8''"):
            from urllib.parse import unquote

            filename = unquote(filename[7:])
        parts.append(
            Part(
                disposition_params.get("name"),
                filename,
                headers.get("content-type"),
                data,
            )
        )
    return parts if closed else None
