"""Pre-flight payload validation (US-2): each rule, collected errors, the counter and the event."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from itsm.errors import ValidationFailed
from itsm.validation import SCHEMAS, ensure_valid, validate

JIRA_TASK = {
    "project": "OPS",
    "summary": "RCA Required: build-42",
    "issue_type": "Task",
    "description": "Job ID: 123",
    "priority": "High",
    "labels": ["ci", "rca"],
}
INCIDENT = {
    "short_description": "RCA Required: build-42",
    "description": "Job ID: 123",
    "urgency": "2",
    "impact": "2",
}


def codes(errors):
    return [(error.field, error.code) for error in errors]


def counter(platform: str, field: str) -> float:
    value = REGISTRY.get_sample_value(
        "itsm_validation_errors_total", {"platform": platform, "field": field}
    )
    return value or 0.0


# --- valid payloads -------------------------------------------------------------------------


def test_a_complete_jira_task_has_no_errors():
    assert validate("jira", JIRA_TASK) == []


def test_a_complete_servicenow_incident_has_no_errors():
    assert validate("servicenow", INCIDENT) == []


def test_a_linear_issue_with_an_integer_priority_has_no_errors():
    assert validate("linear", {"title": "Flaky test", "team_id": "team-1", "priority": 2}) == []


def test_a_slack_message_with_blocks_has_no_errors():
    message = {"text": "Build failed", "blocks": [{"type": "section"}], "unfurl_links": False}
    assert validate("slack", message) == []


def test_jira_custom_fields_pass_through_unchecked():
    assert validate("jira", {**JIRA_TASK, "customfield_10020": 25446}) == []


def test_schemas_are_declared_for_every_platform_the_portal_writes_to():
    assert {platform for platform, _ in SCHEMAS} == {"jira", "servicenow", "linear", "slack"}


# --- one test per rule code -----------------------------------------------------------------


def test_a_missing_required_field_is_reported_as_required():
    fields = {k: v for k, v in JIRA_TASK.items() if k != "summary"}
    assert codes(validate("jira", fields)) == [("summary", "required")]


def test_a_blank_required_field_counts_as_missing():
    assert codes(validate("jira", {**JIRA_TASK, "summary": "   "})) == [("summary", "required")]


def test_a_blank_optional_field_counts_as_absent():
    assert validate("jira", {**JIRA_TASK, "priority": ""}) == []


def test_a_too_long_short_description_says_its_length_and_the_limit():
    errors = validate("servicenow", {**INCIDENT, "short_description": "x" * 171})
    assert codes(errors) == [("short_description", "max_length")]
    assert errors[0].message == "short_description is 171 characters; the limit is 160"


def test_a_summary_of_exactly_255_characters_is_allowed():
    assert validate("jira", {**JIRA_TASK, "summary": "x" * 255}) == []


def test_a_value_outside_the_enum_is_reported_as_enum():
    errors = validate("jira", {**JIRA_TASK, "issue_type": "Initiative"})
    assert codes(errors) == [("issue_type", "enum")]
    assert "Task, Bug, Story, Epic, Sub-task" in errors[0].message


def test_servicenow_urgency_accepts_only_one_to_three():
    assert codes(validate("servicenow", {**INCIDENT, "urgency": "4"})) == [("urgency", "enum")]


def test_a_linear_priority_above_four_is_reported_as_enum():
    errors = validate("linear", {"title": "t", "team_id": "team-1", "priority": 5})
    assert codes(errors) == [("priority", "enum")]


def test_a_lowercase_project_key_breaks_the_pattern():
    errors = validate("jira", {**JIRA_TASK, "project": "ops"})
    assert codes(errors) == [("project", "pattern")]
    assert errors[0].message.startswith("project must be a project key")


def test_a_pattern_must_match_the_whole_value_including_a_trailing_newline():
    assert codes(validate("jira", {**JIRA_TASK, "project": "OPS\n"})) == [("project", "pattern")]


def test_a_label_with_whitespace_breaks_the_pattern_and_names_its_position():
    errors = validate("jira", {**JIRA_TASK, "labels": ["ci", "needs triage"]})
    assert codes(errors) == [("labels", "pattern")]
    assert errors[0].message.startswith("labels[1] must be one word")


def test_a_summary_with_a_newline_must_be_one_line():
    errors = validate("jira", {**JIRA_TASK, "summary": "first\nsecond"})
    assert codes(errors) == [("summary", "single_line")]
    assert errors[0].message == "summary must be one line"


def test_a_carriage_return_also_breaks_a_single_line_field():
    errors = validate("servicenow", {**INCIDENT, "short_description": "a\rb"})
    assert codes(errors) == [("short_description", "single_line")]


def test_a_number_where_text_is_expected_is_a_type_error():
    errors = validate("servicenow", {**INCIDENT, "urgency": 2})
    assert codes(errors) == [("urgency", "type")]
    assert errors[0].message == "urgency must be text, not int"


def test_a_boolean_is_not_accepted_as_a_linear_priority():
    errors = validate("linear", {"title": "t", "team_id": "team-1", "priority": True})
    assert codes(errors) == [("priority", "type")]


def test_labels_given_as_one_string_are_a_type_error():
    assert codes(validate("jira", {**JIRA_TASK, "labels": "ci"})) == [("labels", "type")]


def test_a_field_the_schema_does_not_know_is_reported_as_unknown():
    errors = validate("servicenow", {**INCIDENT, "reporter": "ada"})
    assert codes(errors) == [("reporter", "unknown_field")]


def test_a_jira_bug_also_requires_a_description():
    fields = {**JIRA_TASK, "issue_type": "Bug"}
    del fields["description"]
    assert codes(validate("jira", fields)) == [("description", "required")]


def test_an_explicit_issue_type_selects_the_stricter_schema():
    fields = {k: v for k, v in JIRA_TASK.items() if k != "description"}
    assert codes(validate("jira", fields, issue_type="Bug")) == [("description", "required")]


def test_a_platform_without_a_schema_is_a_programming_error():
    with pytest.raises(ValueError, match="no field schema"):
        validate("fax", {})


# --- several errors, the exception, the counter, the event ----------------------------------


def test_every_error_is_collected_in_one_pass():
    fields = {"project": "ops", "summary": "a\nb", "issue_type": "Initiative", "priority": "P1"}
    assert codes(validate("jira", fields)) == [
        ("project", "pattern"),
        ("summary", "single_line"),
        ("issue_type", "enum"),
        ("priority", "enum"),
    ]


def test_ensure_valid_accepts_a_valid_payload_silently():
    assert ensure_valid("jira", JIRA_TASK) is None


def test_ensure_valid_raises_with_every_error_and_the_platform():
    with pytest.raises(ValidationFailed) as caught:
        ensure_valid("jira", {**JIRA_TASK, "summary": "", "priority": "P0"})
    assert caught.value.platform == "jira"
    assert codes(caught.value.errors) == [("summary", "required"), ("priority", "enum")]
    assert caught.value.as_dict()["errors"][0]["code"] == "required"


def test_each_validation_error_increments_the_counter_for_its_field():
    before = counter("jira", "summary")
    with pytest.raises(ValidationFailed):
        ensure_valid("jira", {**JIRA_TASK, "summary": "x" * 256})
    assert counter("jira", "summary") == before + 1


def test_unknown_field_names_share_one_counter_label():
    before = counter("servicenow", "(unknown)")
    with pytest.raises(ValidationFailed):
        ensure_valid("servicenow", {**INCIDENT, "a": "1", "b": "2"})
    assert counter("servicenow", "(unknown)") == before + 2
    assert (
        REGISTRY.get_sample_value(
            "itsm_validation_errors_total", {"platform": "servicenow", "field": "a"}
        )
        is None
    )


def test_each_validation_error_emits_one_structured_event(caplog):
    with (
        caplog.at_level(logging.WARNING, logger="itsm.validation"),
        pytest.raises(ValidationFailed),
    ):
        ensure_valid("servicenow", {**INCIDENT, "short_description": "", "impact": "9"})
    events = [r for r in caplog.records if r.name == "itsm.validation"]
    assert [r.getMessage() for r in events] == ["itsm.validation_failed"] * 2
    assert [(r.event, r.platform, r.field, r.code) for r in events] == [
        ("itsm.validation_failed", "servicenow", "short_description", "required"),
        ("itsm.validation_failed", "servicenow", "impact", "enum"),
    ]


def test_validate_alone_neither_counts_nor_logs(caplog):
    before = counter("jira", "summary")
    with caplog.at_level(logging.WARNING, logger="itsm.validation"):
        validate("jira", {**JIRA_TASK, "summary": ""})
    assert counter("jira", "summary") == before
    assert caplog.records == []
