"""Pure functions of the Jira client: text to ADF, description parsing, blockers from links."""

from __future__ import annotations

from itsm.clients.jira import blockers_of, idempotency_label, parse_description, text_to_adf
from itsm.clients.linear import issue_id_for
from itsm.clients.servicenow import ServiceNowClient
from itsm.config import Endpoint


def test_text_becomes_paragraphs_split_on_blank_lines_with_hard_breaks_inside():
    adf = text_to_adf("Job ID: 7\nSeverity: high\n\nDetails here")
    assert adf["type"] == "doc" and adf["version"] == 1
    first, second = adf["content"]
    assert [node["type"] for node in first["content"]] == ["text", "hardBreak", "text"]
    assert second["content"] == [{"type": "text", "text": "Details here"}]


def test_text_to_adf_never_emits_an_empty_text_node():
    adf = text_to_adf("a\n\n\n\nb\n")
    texts = [n for p in adf["content"] for n in p["content"] if n["type"] == "text"]
    assert all(node["text"] for node in texts)


def test_parse_description_of_text_reads_key_value_lines_and_headed_sections():
    parsed = parse_description("Job ID: 7\nSeverity: high\n\n## Logs\nline one\nline two")
    assert parsed["Job ID"] == "7"
    assert parsed["Severity"] == "high"
    assert parsed["Logs"] == "line one\nline two"


def test_parse_description_of_adf_reads_headings_and_hard_broken_lines():
    adf = {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "Owner: platform"},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "Exit code: 137"},
                ],
            },
            {
                "type": "heading",
                "attrs": {"level": 2},
                "content": [{"type": "text", "text": "Cleanup"}],
            },
            {"type": "paragraph", "content": [{"type": "text", "text": "delete the namespace"}]},
        ],
    }
    parsed = parse_description(adf)
    assert parsed == {"Owner": "platform", "Exit code": "137", "Cleanup": "delete the namespace"}


def test_parse_description_of_nothing_is_empty():
    assert parse_description(None) == {}
    assert parse_description("") == {}


def test_a_url_line_is_not_mistaken_for_a_key_value_pair():
    assert parse_description("https://ci.example.com/job/7") == {}


def test_blockers_are_the_inward_issues_of_blocks_links():
    issue = {
        "fields": {
            "issuelinks": [
                {"type": {"name": "Blocks"}, "inwardIssue": {"key": "OPS-1"}},
                {"type": {"name": "Blocks"}, "outwardIssue": {"key": "OPS-9"}},
                {"type": {"name": "Relates"}, "inwardIssue": {"key": "OPS-2"}},
                {"type": {"name": "Blocks"}, "inwardIssue": {"key": "OPS-1"}},
            ]
        }
    }
    assert blockers_of(issue) == ["OPS-1"]


def test_idempotency_markers_are_stable_and_well_formed():
    assert idempotency_label("abc") == "portal-idem-abc"
    first, again = issue_id_for("key-1"), issue_id_for("key-1")
    assert first == again != issue_id_for("key-2")
    assert first[14] == "4"  # a version-4 layout, as Linear expects


def test_servicenow_priority_is_sent_as_impact_and_urgency_never_directly():
    client = ServiceNowClient(Endpoint("servicenow", "http://sn.test", "u", "p"))
    body = client.incident_body({"short_description": "x", "priority": "2"}, "key-1")
    assert "priority" not in body
    assert (body["impact"], body["urgency"]) == ("1", "2")
    assert body["correlation_id"] == "key-1"
