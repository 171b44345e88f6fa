"""Can a session be exported to this Jira project? The seed's project validation, asked of Jira.

The one place the exports app asks Jira something while a person waits: when a session is set up,
the answer (can the portal's account see the project and create issues in it, which sprints,
people and priorities it offers) is only useful now. It goes through ``itsm``'s Jira client with
a budget of ``EXPORT_VALIDATION_TIMEOUT_SECONDS`` and no retries, on a connection pool of its own:
a Jira that is down or slow answers ``RetryableError`` (503, ``upstream_unavailable``) within the
budget instead of holding the request through the outbox's backoff, and an unconfigured Jira
``NotConfigured`` (503). The export itself re-validates in its worker (the seed's "final
validation checks"), so nothing depends on this answer being cached or fresh.

A project Jira does not know, or that the account may not see, is not an error of the request: it
answers ``validation_status: "invalid"`` with its ``blocking_issues``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from django.conf import settings

from itsm.public import UpstreamRejected, client_for

PERMISSIONS = ("BROWSE_PROJECTS", "CREATE_ISSUES", "ASSIGN_ISSUES")
ISSUE_TYPE = "Task"  # what the export creates (ExportTicket.issue_type's default)
MAX_TEAM_MEMBERS = 200


@dataclass(frozen=True)
class ProjectRequirements:
    """The seed's ProjectRequirements: what this deployment's sessions need of the project."""

    requires_sprint_assignment: bool = False
    requires_assignee: bool = False
    requires_priority_levels: bool = False


@dataclass
class ProjectValidation:
    """The seed's ProjectValidationResponse."""

    project_key: str
    project_name: str = ""
    validation_status: str = "invalid"
    can_create_tasks: bool = False
    can_view_project: bool = False
    available_sprints: list[dict[str, str]] = field(default_factory=list)
    team_members: list[dict[str, str]] = field(default_factory=list)
    priority_levels: list[dict[str, str]] = field(default_factory=list)
    validation_warnings: list[dict[str, str]] = field(default_factory=list)
    blocking_issues: list[str] = field(default_factory=list)

    def warn(self, field_name: str, message: str) -> None:
        self.validation_warnings.append({"field": field_name, "message": message})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def quick_jira_client() -> Any:
    """itsm's Jira client with the validation budget: one attempt, short timeouts, its own pool
    (so the shared pool that deliveries use is left alone)."""
    budget = float(settings.EXPORT_VALIDATION_TIMEOUT_SECONDS)
    probe = client_for("jira")  # raises NotConfigured (503) when Jira has no base URL
    config = probe.config
    quick = replace(
        config,
        retry_policy=replace(config.retry_policy, max_retries=0),
        timeout=replace(
            config.timeout,
            connection_timeout_seconds=min(budget, config.timeout.connection_timeout_seconds),
            read_timeout_seconds=budget,
            total_timeout_seconds=budget,
        ),
    )
    probe.close()
    return client_for("jira", config=quick, shared=False)


def validate_project(
    project_key: str, requirements: ProjectRequirements, *, client: Any = None
) -> ProjectValidation:
    """Asks Jira about ``project_key``; ``RetryableError``/``NotConfigured`` when it cannot."""
    owned = client is None
    client = client or quick_jira_client()
    try:
        return _validate(client, project_key, requirements)
    finally:
        if owned:
            client.close()


def _validate(client: Any, key: str, requirements: ProjectRequirements) -> ProjectValidation:
    result = ProjectValidation(project_key=key)
    try:
        project = client.request("GET", f"/rest/api/3/project/{key}").json()
    except UpstreamRejected as refusal:
        result.blocking_issues.append(_project_refusal(key, refusal.status_code))
        return result
    result.project_name = str(project.get("name", ""))
    result.can_view_project = True

    granted = client.my_permissions(key, list(PERMISSIONS))
    result.can_view_project = granted.get("BROWSE_PROJECTS", False)
    result.can_create_tasks = granted.get("CREATE_ISSUES", False)
    if not result.can_create_tasks:
        result.blocking_issues.append(
            f"The portal's Jira account may not create issues in {key} (Create Issues permission)."
        )
    issue_types = {str(kind.get("name", "")) for kind in project.get("issueTypes") or []}
    if issue_types and ISSUE_TYPE not in issue_types:
        result.can_create_tasks = False
        result.blocking_issues.append(
            f"{key} has no {ISSUE_TYPE} issue type (it has {', '.join(sorted(issue_types))})."
        )

    result.priority_levels = [
        {"id": str(priority.get("id", "")), "name": str(priority.get("name", ""))}
        for priority in client.priorities()
    ]
    if not result.priority_levels:
        _missing(result, requirements.requires_priority_levels, "priority", "No priorities.")

    if granted.get("ASSIGN_ISSUES", False):
        users = client.assignable_users(key)
        result.team_members = [
            {
                "account_id": str(user.get("accountId", "")),
                "display_name": str(user.get("displayName", "")),
            }
            for user in users[:MAX_TEAM_MEMBERS]
            if user.get("active", True)
        ]
    if not result.team_members:
        _missing(
            result, requirements.requires_assignee, "assignee",
            f"No one can be assigned issues in {key}; tickets will be exported unassigned.",
        )  # fmt: skip

    result.available_sprints, sprint_problem = project_sprints(client, key)
    if not result.available_sprints:
        _missing(
            result, requirements.requires_sprint_assignment, "sprint",
            sprint_problem or f"{key} has no active or future sprint.",
        )  # fmt: skip

    result.validation_status = "invalid" if result.blocking_issues else "valid"
    return result


def _missing(result: ProjectValidation, required: bool, field_name: str, message: str) -> None:
    """What is missing blocks the export when the deployment requires it, else it warns."""
    if required:
        result.blocking_issues.append(message)
    else:
        result.warn(field_name, message)


def _project_refusal(key: str, status: int) -> str:
    if status in (401, 403):
        return (
            f"Jira refused the portal's credentials (HTTP {status}): ask an administrator to "
            "check JIRA_EMAIL and JIRA_API_TOKEN."
        )
    if status == 404:
        return f"Project {key} does not exist in Jira, or the portal's account cannot see it."
    return f"Jira refused to show project {key} (HTTP {status})."


def project_sprints(client: Any, key: str) -> tuple[list[dict[str, str]], str]:
    """Active and future sprints of the project's board: ``EXPORT_JIRA_BOARD_ID``, else the
    first Scrum board the Agile API finds for the project. ``([], why)`` when there is none.
    The one rule for both validate-project's choices and the export's sprint names."""
    board = str(settings.EXPORT_JIRA_BOARD_ID or "").strip()
    try:
        if not board:
            page = client.request(
                "GET", "/rest/agile/1.0/board",
                params={"projectKeyOrId": key, "type": "scrum", "maxResults": 1},
            ).json()  # fmt: skip
            boards = page.get("values") or []
            if not boards:
                return [], f"{key} has no Scrum board: sprints cannot be assigned."
            board = str(boards[0].get("id", ""))
        sprints = client.sprints(int(board))
    except UpstreamRejected as refusal:
        return [], (
            f"The sprints of {key} could not be read (Jira answered {refusal.status_code}; "
            "Jira Software may be unavailable): sprints cannot be assigned."
        )
    except ValueError:
        return [], f"EXPORT_JIRA_BOARD_ID is not a board id ({board!r})."
    return [
        {
            "id": str(sprint.get("id", "")),
            "name": str(sprint.get("name", "")),
            "state": str(sprint.get("state", "")),
        }
        for sprint in sprints
        if sprint.get("state") in ("active", "future")
    ], ""
