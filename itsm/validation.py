"""Pre-flight validation of ticket payloads against each platform's field schema (US-2).

A payload is checked before anything is sent, so that a developer gets "summary must be one line"
instead of a platform's 400. The schemas are data (:data:`SCHEMAS`), built once at import: regexes
are compiled and field names indexed here, because :func:`validate` runs on every ticket of the
1,000-ticket benchmark and must not allocate a schema per call.

Fields are the portal's *logical* ticket dict (``project``, ``summary``, ``issue_type`` ...), before
a client turns them into the platform's REST shape (Jira's ADF description, ``{"key": ...}``
objects). Limits come from INTEGRATIONS.md: ServiceNow does not publish ``short_description``'s
length (160 is the third-party schema's figure; instances may differ, §2), and Jira does not publish
its label rules, so labels are checked only for what Jira is known to refuse (whitespace).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from itsm.config import PRIORITY_NAMES
from itsm.errors import FieldError, ValidationFailed
from itsm.metrics import VALIDATION_ERRORS

logger = logging.getLogger("itsm.validation")

ANY_ISSUE_TYPE = "*"
# The counter's ``field`` label for names no schema knows: the names come from callers, and a
# label per unknown name would grow the metric without bound.
UNKNOWN_FIELD_LABEL = "(unknown)"

Kind = Literal["string", "int", "list", "bool", "any"]


@dataclass(frozen=True)
class FieldRule:
    """What one field must look like.

    ``kind`` "string" and "int" are scalars; "list" is a list of strings, and ``max_length``,
    ``pattern`` and ``single_line`` then apply to each item; "bool" is a flag; "any" is accepted as
    is because another layer checks it (Slack blocks, checked by the Slack client). ``enum`` holds
    the allowed values (strings, or ints for "int"). ``pattern_hint`` says in words what
    ``pattern`` wants, completing "<field> must be ...".
    """

    name: str
    required: bool = False
    max_length: int | None = None
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None  # the whole value must match (re.fullmatch)
    single_line: bool = False
    kind: Kind = "string"
    pattern_hint: str = ""
    _regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _allowed: frozenset[Any] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if self.pattern is not None:
            object.__setattr__(self, "_regex", re.compile(self.pattern))
        if self.enum is not None:
            object.__setattr__(self, "_allowed", frozenset(self.enum))


@dataclass(frozen=True)
class _Schema:
    """A platform's rules for one issue type, indexed once for :func:`validate`."""

    rules: tuple[FieldRule, ...]
    names: frozenset[str]
    extra_field: re.Pattern[str] | None  # names accepted unchecked (Jira custom fields)


# --- the schemas ----------------------------------------------------------------------------

# Jira Software's standard types and Jira Service Management's (seed 000 files "Incident"s).
JIRA_ISSUE_TYPES = (
    "Task", "Bug", "Story", "Epic", "Sub-task", "Incident", "Service Request", "Change", "Problem",
)  # fmt: skip
JIRA_PRIORITIES = (*PRIORITY_NAMES, *PRIORITY_NAMES.values())
# Jira Cloud's keys have at most 10 characters by default; Data Center admins raise the limit up
# to 255 (seed 000's ORCHESTRATION has 13), so the length is left to Jira to judge.
JIRA_PROJECT_KEY = r"^[A-Z][A-Z0-9_]{1,254}$"
JIRA_ISSUE_KEY = r"^[A-Z][A-Z0-9_]{1,254}-[1-9][0-9]*$"
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"

_JIRA_COMMON = [
    FieldRule(
        "project",
        required=True,
        pattern=JIRA_PROJECT_KEY,
        pattern_hint="a project key: a capital, then capitals, digits or underscores, like OPS",
    ),
    FieldRule("summary", required=True, max_length=255, single_line=True),
    FieldRule("description", max_length=32_767),
    FieldRule("issue_type", required=True, enum=JIRA_ISSUE_TYPES),
    FieldRule("priority", enum=JIRA_PRIORITIES),
    FieldRule(
        "labels",
        kind="list",
        max_length=255,
        pattern=r"^\S+$",
        pattern_hint="one word without whitespace",
    ),
    FieldRule("assignee", max_length=128, single_line=True),  # an Atlassian accountId
    FieldRule("due_date", pattern=ISO_DATE, pattern_hint="a date as YYYY-MM-DD"),
    FieldRule("parent", pattern=JIRA_ISSUE_KEY, pattern_hint="an issue key such as OPS-123"),
]


def _override(rules: list[FieldRule], name: str, **changes: Any) -> list[FieldRule]:
    """The same rules with one field's settings changed (an issue type's stricter variant)."""
    return [replace(rule, **changes) if rule.name == name else rule for rule in rules]


_SERVICENOW_INCIDENT = [
    FieldRule("short_description", required=True, max_length=160, single_line=True),
    FieldRule("description", max_length=4000),
    FieldRule("priority", enum=("1", "2", "3", "4", "5")),
    FieldRule("urgency", enum=("1", "2", "3")),
    FieldRule("impact", enum=("1", "2", "3")),
    FieldRule("assignment_group", max_length=100, single_line=True),
    FieldRule("caller_id", max_length=100, single_line=True),
    # Where the portal's idempotency key is kept on the incident (INTEGRATIONS.md §2).
    FieldRule("correlation_id", max_length=100, single_line=True),
    FieldRule("correlation_display", max_length=100, single_line=True),
]

_LINEAR_ISSUE = [
    FieldRule("title", required=True, max_length=255, single_line=True),
    FieldRule("team_id", required=True, max_length=100, single_line=True),
    FieldRule("description", max_length=100_000),  # markdown
    FieldRule("priority", kind="int", enum=(0, 1, 2, 3, 4)),  # 0 none, 1 urgent ... 4 low
    FieldRule("label_ids", kind="list", max_length=100, single_line=True),
    FieldRule("assignee_id", max_length=100, single_line=True),
    FieldRule("state_id", max_length=100, single_line=True),
    FieldRule("project_id", max_length=100, single_line=True),
    FieldRule("parent_id", max_length=100, single_line=True),
    FieldRule("due_date", pattern=ISO_DATE, pattern_hint="a date as YYYY-MM-DD"),
]

_SLACK_MESSAGE = [
    FieldRule("text", required=True, max_length=3000),
    FieldRule("blocks", kind="any"),  # checked by the Slack client against Block Kit's limits
    FieldRule("mrkdwn", kind="bool"),
    FieldRule("unfurl_links", kind="bool"),
    FieldRule("unfurl_media", kind="bool"),
]

SCHEMAS: dict[tuple[str, str], list[FieldRule]] = {
    ("jira", ANY_ISSUE_TYPE): _JIRA_COMMON,
    # A bug without steps or context cannot be triaged.
    ("jira", "Bug"): _override(_JIRA_COMMON, "description", required=True),
    # Jira refuses a sub-task without its parent.
    ("jira", "Sub-task"): _override(_JIRA_COMMON, "parent", required=True),
    ("servicenow", ANY_ISSUE_TYPE): _SERVICENOW_INCIDENT,
    ("servicenow", "incident"): _SERVICENOW_INCIDENT,
    ("linear", ANY_ISSUE_TYPE): _LINEAR_ISSUE,
    ("slack", ANY_ISSUE_TYPE): _SLACK_MESSAGE,
}

# Jira custom fields have instance-specific ids (sprint is often customfield_10020, §1c): they pass
# through unchecked rather than as unknown fields.
_EXTRA_FIELDS = {"jira": re.compile(r"^customfield_\d+$")}

_INDEX: dict[tuple[str, str], _Schema] = {
    key: _Schema(tuple(rules), frozenset(r.name for r in rules), _EXTRA_FIELDS.get(key[0]))
    for key, rules in SCHEMAS.items()
}

_KIND_WORDS = {"string": "text", "int": "a whole number", "list": "a list", "bool": "true or false"}


# --- checking -------------------------------------------------------------------------------


def _schema_for(platform: str, fields: Mapping[str, Any], issue_type: str | None) -> _Schema:
    if issue_type is None and platform == "jira":
        candidate = fields.get("issue_type")
        issue_type = candidate if isinstance(candidate, str) else None
    schema = _INDEX.get((platform, issue_type or ANY_ISSUE_TYPE)) or _INDEX.get(
        (platform, ANY_ISSUE_TYPE)
    )
    if schema is None:
        raise ValueError(f"no field schema for platform {platform!r}")
    return schema


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return not value
    return False


def _shown(value: Any) -> str:
    """A value quoted for a message, cut short: messages are shown and logged."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_text(rule: FieldRule, label: str, text: str, errors: list[FieldError]) -> None:
    if rule.single_line and ("\n" in text or "\r" in text):
        errors.append(FieldError(rule.name, "single_line", f"{label} must be one line"))
    if rule.max_length is not None and len(text) > rule.max_length:
        errors.append(
            FieldError(
                rule.name,
                "max_length",
                f"{label} is {len(text)} characters; the limit is {rule.max_length}",
            )
        )
    if rule._regex is not None and rule._regex.fullmatch(text) is None:
        wanted = rule.pattern_hint or f"text matching {rule.pattern}"
        errors.append(
            FieldError(rule.name, "pattern", f"{label} must be {wanted}; got {_shown(text)}")
        )


def _check_enum(rule: FieldRule, value: Any, errors: list[FieldError]) -> None:
    if rule._allowed is not None and value not in rule._allowed:
        choices = ", ".join(str(choice) for choice in rule.enum or ())
        errors.append(
            FieldError(
                rule.name, "enum", f"{rule.name} must be one of {choices}; got {_shown(value)}"
            )
        )


def _type_error(rule: FieldRule, value: Any) -> FieldError:
    return FieldError(
        rule.name,
        "type",
        f"{rule.name} must be {_KIND_WORDS[rule.kind]}, not {type(value).__name__}",
    )


def _check_value(rule: FieldRule, value: Any, errors: list[FieldError]) -> None:
    kind = rule.kind
    if kind == "string":
        if not isinstance(value, str):
            errors.append(_type_error(rule, value))
            return
        _check_text(rule, rule.name, value, errors)
        _check_enum(rule, value, errors)
    elif kind == "int":
        # bool is an int subclass, and True is not a priority.
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(_type_error(rule, value))
            return
        _check_enum(rule, value, errors)
    elif kind == "list":
        if not isinstance(value, list | tuple):
            errors.append(_type_error(rule, value))
            return
        for index, item in enumerate(value):
            label = f"{rule.name}[{index}]"
            if not isinstance(item, str):
                errors.append(
                    FieldError(
                        rule.name, "type", f"{label} must be text, not {type(item).__name__}"
                    )
                )
                continue
            _check_text(rule, label, item, errors)
            _check_enum(rule, item, errors)
    elif kind == "bool" and not isinstance(value, bool):
        errors.append(_type_error(rule, value))


def validate(
    platform: str, fields: Mapping[str, Any], issue_type: str | None = None
) -> list[FieldError]:
    """Every way ``fields`` breaks ``platform``'s schema, in schema order; [] when valid.

    For Jira the issue type, when not given, is read from ``fields["issue_type"]`` (a Bug must
    have a description). Blank values (None, "", whitespace, []) count as absent. ValueError for a
    platform without a schema: that is a programming error, not a user's.
    """
    schema = _schema_for(platform, fields, issue_type)
    errors: list[FieldError] = []
    for rule in schema.rules:
        value = fields.get(rule.name)
        if _is_blank(value):
            if rule.required:
                errors.append(FieldError(rule.name, "required", f"{rule.name} is required"))
            continue
        _check_value(rule, value, errors)
    for name in fields:
        if name not in schema.names and not (
            schema.extra_field is not None
            and isinstance(name, str)
            and schema.extra_field.fullmatch(name)
        ):
            errors.append(
                FieldError(
                    str(name)[:100],
                    "unknown_field",
                    f"{_shown(name)} is not a field the portal sends to {platform}",
                )
            )
    return errors


def ensure_valid(platform: str, fields: Mapping[str, Any], issue_type: str | None = None) -> None:
    """Raises ValidationFailed with every error, after counting and logging each one."""
    errors = validate(platform, fields, issue_type)
    if not errors:
        return
    for error in errors:
        label = UNKNOWN_FIELD_LABEL if error.code == "unknown_field" else error.field
        VALIDATION_ERRORS.labels(platform=platform, field=label).inc()
        logger.warning(
            "itsm.validation_failed",
            extra={
                "event": "itsm.validation_failed",
                "platform": platform,
                "field": error.field,
                "code": error.code,
            },
        )
    raise ValidationFailed(errors, platform=platform)
