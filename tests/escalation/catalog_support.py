"""Building catalog bundles and requests for the catalog tests (tests/escalation/test_catalog*)."""

from __future__ import annotations

from typing import Any

import pytest

from escalation.models import CatalogBundle, CatalogComponent

JIRA = {
    "ticket": {
        "project": "OPS",
        "issueType": "Task",
        "priority": "Medium",
        "summaryTemplate": "Access for {{ request.data.name }}",
        "descriptionTemplate": "Requested by {{ request.user.email }}",
    }
}
SERVICENOW = {
    "ticket": {
        "short_description": "Laptop for {{ request.data.name }}",
        "description": "After {{ components.access.output.key }}",
        "priority": "3",
    }
}
LINEAR = {"issue": {"team": "PLT", "title": "Account for {{ request.data.name }}", "priority": 3}}
SLACK = {"message": {"text": "Welcome {{ request.data.name }}"}}


def http_config(url: str, **extra: Any) -> dict[str, Any]:
    return {"request": {"method": "GET", "url": url, **extra}}


def make_bundle(
    name: str, components: list[tuple[str, str, dict[str, Any]]], *, kind: str = "bundle"
) -> CatalogBundle:
    """``components``: ``(component_id, action_type, config)`` in order."""
    bundle = CatalogBundle.objects.create(
        name=name, version="2.1.0", kind=kind, inputs=[{"name": "name", "required": True}]
    )
    for position, (component_id, action_type, config) in enumerate(components, start=1):
        CatalogComponent.objects.create(
            bundle=bundle,
            position=position,
            component_id=component_id,
            action_type=action_type,
            config=config,
            cleanup_instructions=f"Undo {component_id}",
        )
    return bundle


@pytest.fixture
def catalog_settings(settings, itsm_endpoints, fast_itsm_config):
    """The fakes as every platform; the escalation ticket goes where the seed says (the fake
    Jira's ORCHESTRATION service project, an Incident)."""
    settings.CATALOG_ESCALATION_JIRA_PROJECT = ""
    settings.CATALOG_ESCALATION_JIRA_ISSUE_TYPE = ""
    settings.CATALOG_HTTP_ALLOWED_HOSTS = []
    settings.CATALOG_HTTP_ALLOWED_NETWORKS = []
    return settings
