"""What the ADF tests share: Atlassian's schema (the one the fake Jira checks), and text helpers."""

from __future__ import annotations

from functools import cache
from typing import Any

from itsm.fakes.adf_schema import SchemaAdfValidator, ensure_adf_schema


@cache
def schema_validator() -> SchemaAdfValidator:
    return SchemaAdfValidator(ensure_adf_schema())


def assert_valid(doc: Any) -> None:
    problem = schema_validator().problem(doc)
    assert problem is None, f"not valid ADF: {problem}"


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
