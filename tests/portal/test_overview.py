"""The overview page's sections: registered by the apps (escalation's CI figures), shown only to
the roles a section names."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.urls import reverse

from escalation.models import OverrideRequest
from portal import overview
from tests.escalation.test_dashboard import open_escalation
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def ci_figures(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-figure="([a-z-]+)">(\d+)<', html))


def test_the_overview_shows_the_ci_figures_to_operators_and_qa(client):
    open_escalation("test_failure", timedelta(hours=3))
    breached = open_escalation("build_failure", timedelta(minutes=-15))
    open_escalation("security_high", timedelta(minutes=-5))
    OverrideRequest.objects.create(
        failure=breached.failures.get(),
        escalation=breached,
        justification="hotfix for the release",
        policy="hotfix_approval",
    )

    for role in ("operators", "qa"):
        client.force_login(UserFactory(roles=[role]))
        html = client.get(reverse("dashboard")).content.decode()

        assert "CI health" in html
        assert ci_figures(html) == {
            "open-escalations": "3",
            "sla-breaches-today": "2",
            "overrides-waiting": "1",
        }
        assert f'href="{reverse("escalation:ci-health")}"' in html


def test_the_ci_figures_are_hidden_from_a_user_without_the_roles(client):
    open_escalation("test_failure", timedelta(hours=3))
    client.force_login(UserFactory(roles=[]))

    html = client.get(reverse("dashboard")).content.decode()

    assert ci_figures(html) == {}
    assert "Open escalations" not in html


def test_a_failing_section_leaves_the_page_answering(monkeypatch, client):
    def broken() -> dict:
        raise DatabaseError("the table is gone")

    monkeypatch.setattr(overview, "_SECTIONS", [(broken, ())])
    client.force_login(UserFactory(roles=["operators"]))

    page = client.get(reverse("dashboard"))

    assert page.status_code == 200
    assert ci_figures(page.content.decode()) == {}


def test_registering_a_section_twice_shows_it_once(monkeypatch):
    monkeypatch.setattr(overview, "_SECTIONS", [])

    def section() -> dict:
        return {"title": "Jobs", "figures": [("Waiting", 4, "/jobs/")]}

    overview.register_overview_section(section)
    overview.register_overview_section(section)

    assert overview.overview_sections(UserFactory()) == [
        {"title": "Jobs", "figures": [("Waiting", 4, "/jobs/")]}
    ]
