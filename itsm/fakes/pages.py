"""Read-only HTML pages for the links the portal shows: Jira's ``/browse/KEY`` and ServiceNow's record.

A ticket created against the fakes links to them (``make run``'s demo); a person following the link
gets a plain page instead of a basic-auth prompt. The pages need no credentials and change nothing.
Every value is escaped, and the Content-Security-Policy allows no script at all, so a summary such as
``<script>`` shows as text.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from html import escape
from typing import Any

from .protocol import Response

STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "color:#172b4d}"
    ".banner{background:#fffae6;border:1px solid #ffe380;padding:.4rem .8rem;border-radius:4px}"
    "table{border-collapse:collapse}th,td{text-align:left;padding:.2rem 1rem .2rem 0;"
    "vertical-align:top}th{color:#5e6c84;font-weight:600}"
    ".text{white-space:pre-wrap;background:#f4f5f7;padding:.6rem .8rem;border-radius:4px}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
HEADERS = [
    # No script, no frame, no form, no outside resource: only this page's own style block.
    (
        "Content-Security-Policy",
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
]

# ADF nodes after which a reader expects a new line.
ADF_BLOCKS = frozenset(
    {
        "paragraph",
        "heading",
        "blockquote",
        "codeBlock",
        "listItem",
        "panel",
        "rule",
        "tableRow",
        "mediaSingle",
        "expand",
        "decisionItem",
        "taskItem",
    }
)


def adf_text(node: Any) -> str:
    """The readable text of an Atlassian Document (or of any node of one)."""
    if isinstance(node, list):
        return "".join(adf_text(child) for child in node)
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    attrs = node.get("attrs") if isinstance(node.get("attrs"), dict) else {}
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    if kind in ("mention", "emoji", "status", "date"):
        return str(attrs.get("text") or attrs.get("shortName") or attrs.get("timestamp") or "")
    if kind in ("inlineCard", "blockCard", "embedCard"):
        return str(attrs.get("url", ""))
    text = adf_text(node.get("content", []))
    if kind == "listItem":
        text = "• " + text
    return text.rstrip("\n") + "\n" if kind in ADF_BLOCKS else text


def _rows(rows: Iterable[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th>{escape(label)}</th><td>{escape(str(value))}</td></tr>"
        for label, value in rows
        if value not in (None, "", [])
    )
    return f"<table>{cells}</table>"


def _text_block(text: str) -> str:
    return f'<div class="text">{escape(text.strip())}</div>' if text.strip() else "<p>—</p>"


def html_page(status: int, platform: str, title: str, body: str) -> Response:
    page = (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>"
        f'<p class="banner">Local fake {escape(platform)} (<code>itsm.fakes</code>): a read-only '
        "page for the portal's demo tickets.</p>"
        f"<h1>{escape(title)}</h1>{body}</body></html>\n"
    )
    return Response(status, page.encode("utf-8"), "text/html; charset=utf-8", list(HEADERS))


def jira_issue_page(issue: Any, links: list[dict[str, Any]]) -> Response:
    """``issue`` is the fake's ``Issue``; ``links`` the links it takes part in."""
    details = _rows(
        [
            ("Project", issue.project.get("name")),
            ("Type", issue.issuetype.get("name")),
            ("Status", issue.status),
            ("Priority", (issue.priority or {}).get("name")),
            ("Labels", ", ".join(issue.labels)),
            ("Assignee", (issue.assignee or {}).get("displayName")),
            ("Parent", issue.parent),
            ("Due", issue.duedate),
            ("Created", issue.created.isoformat(timespec="seconds")),
            ("Updated", issue.updated.isoformat(timespec="seconds") if issue.updated else None),
        ]
    )
    sections = [details, "<h2>Description</h2>", _text_block(adf_text(issue.description))]
    if issue.environment:
        sections += ["<h2>Environment</h2>", _text_block(adf_text(issue.environment))]
    if links:
        items = "".join(f"<li>{escape(link['meaning'])}</li>" for link in links)
        sections.append(f"<h2>Links</h2><ul>{items}</ul>")
    if issue.attachments:
        items = "".join(
            f"<li>{escape(str(item['filename']))} ({int(item['size'])} bytes)</li>"
            for item in issue.attachments
        )
        sections.append(f"<h2>Attachments</h2><ul>{items}</ul>")
    sections.append(f"<h2>Comments ({len(issue.comments)})</h2>")
    for comment in issue.comments:
        author = comment.get("author", {}).get("displayName", "")
        sections.append(
            f"<h3>{escape(str(author))}, {escape(str(comment.get('created', '')))}</h3>"
            + _text_block(adf_text(comment.get("body")))
        )
    return html_page(200, "Jira", f"{issue.key}: {issue.summary}", "".join(sections))


SERVICENOW_STATES = {
    "1": "New",
    "2": "In Progress",
    "3": "On Hold",
    "6": "Resolved",
    "7": "Closed",
    "8": "Canceled",
}
SERVICENOW_LEVELS = {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"}
SERVICENOW_PRIORITIES = {
    "1": "1 - Critical",
    "2": "2 - High",
    "3": "3 - Moderate",
    "4": "4 - Low",
    "5": "5 - Planning",
}


def servicenow_incident_page(record: dict[str, Any]) -> Response:
    details = _rows(
        [
            ("State", SERVICENOW_STATES.get(record.get("state", ""), record.get("state"))),
            ("Priority", SERVICENOW_PRIORITIES.get(record.get("priority", ""))),
            ("Impact", SERVICENOW_LEVELS.get(record.get("impact", ""))),
            ("Urgency", SERVICENOW_LEVELS.get(record.get("urgency", ""))),
            ("Category", record.get("category")),
            ("Assignment group", record.get("assignment_group")),
            ("Caller", record.get("caller_id")),
            ("Correlation ID", record.get("correlation_id")),
            ("Opened", record.get("opened_at")),
            ("Updated", record.get("sys_updated_on")),
        ]
    )
    sections = [details, "<h2>Description</h2>", _text_block(record.get("description", ""))]
    journal = record.get("journal", [])
    sections.append(f"<h2>Activity ({len(journal)})</h2>")
    for entry in journal:
        label = "Work note" if entry.get("element") == "work_notes" else "Comment"
        sections.append(
            f"<h3>{label}, {escape(str(entry.get('sys_created_on', '')))}</h3>"
            + _text_block(str(entry.get("value", "")))
        )
    title = f"{record.get('number', '')}: {record.get('short_description', '')}"
    return html_page(200, "ServiceNow", title, "".join(sections))


def not_found_page(platform: str, what: str) -> Response:
    return html_page(404, platform, "Not found", f"<p>No {escape(what)} in this fake.</p>")
