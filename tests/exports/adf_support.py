"""What the ADF tests share: Atlassian's schema (the one the fake Jira checks), and text helpers."""

from __future__ import annotations

from functools import cache
from typing import Any

from itsm.fakes.adf_schema import SchemaAdfValidator, ensure_adf_schema


@cache
def schema_validator() -> SchemaAdfValidator:
    return SchemaAdfValidator(ensure_adf_schema())


def assert_valid(doc: Any) -> None:
    problem = schema_validator().problem(doc) or editor_problem(doc)
    assert problem is None, f"not valid ADF: {problem}"


def editor_problem(doc: dict[str, Any]) -> str | None:
    """Rules of Atlassian's editor (ProseMirror's content expressions) the JSON schema omits."""
    stack = [doc]
    while stack:
        node = stack.pop()
        kind = node.get("type")
        content = node.get("content", [])
        if kind == "listItem" and content[0]["type"] not in (
            "paragraph",
            "codeBlock",
            "mediaSingle",
        ):
            return f"a listItem opens with a {content[0]['type']}"
        if kind == "tableRow" and not content:
            return "a tableRow without cells"
        marks = [mark["type"] for mark in node.get("marks", [])]
        if len(marks) != len(set(marks)):
            return f"repeated marks {marks}"
        stack.extend(content)
    return None


def texts(node: dict[str, Any]) -> list[str]:
    """Every text node's text, in document order."""
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.get("type") == "text":
            found.append(current["text"])
        stack.extend(reversed(current.get("content", [])))
    return found


def nodes_of_type(node: dict[str, Any], node_type: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.get("type") == node_type:
            found.append(current)
        stack.extend(reversed(current.get("content", [])))
    return found
