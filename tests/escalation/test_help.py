"""The CI help page: the seed's training material for this portal, open to any logged-in user,
its SLA table read from the routing matrix, and every path it names routed by the portal."""

from __future__ import annotations

import html
import importlib
import re

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import Resolver404, resolve

from escalation.models import RoutingRule
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("seed_matrix")]

SEED = importlib.import_module("escalation.migrations.0002_seed_matrix")
HELP_URL = "/ci/help/"


@pytest.fixture
def seed_matrix(db):
    """The seed's teams and routing matrix (migration 0002, idempotent), also after a
    ``transactional_db`` test flushed them."""
    state = MigrationExecutor(connection).loader.project_state(("escalation", "0002_seed_matrix"))
    SEED.seed(state.apps, None)


def page(client, **user) -> str:
    client.force_login(UserFactory(**user))
    response = client.get(HELP_URL)
    assert response.status_code == 200
    return response.content.decode()


def sla_row(text: str, failure_type: str) -> str:
    match = re.search(rf'<tr data-failure-type="{failure_type}"[^>]*>(.*?)</tr>', text, re.S)
    assert match, failure_type
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip())


def test_any_logged_in_user_reads_the_four_parts(client):
    text = page(client)  # no role at all

    for part in ("quick-reference", "sla-table", "override-process", "troubleshooting"):
        assert f'id="{part}"' in text, part
    assert "Quick reference card: when you get a CI failure alert" in text
    # Links to pages the user cannot open are not offered (the paths are still named).
    assert 'href="/ci/flaky/"' not in text and "<code>/ci/flaky/</code>" in text
    assert 'href="/admin/escalation/overriderequest/"' not in text


def test_anonymous_visitors_go_to_the_login_page(client):
    response = client.get(HELP_URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/") or "login" in response["Location"]


def test_staff_with_a_role_get_the_links(client):
    text = page(client, roles=["qa"], is_staff=True)

    assert 'href="/ci/flaky/"' in text
    assert 'href="/admin/escalation/overriderequest/"' in text
    assert 'href="/admin/escalation/recoveryattempt/"' in text
    assert "Your role may confirm." in text


def test_the_sla_table_has_the_seeds_values(client):
    text = page(client)

    assert sla_row(text, "security_secrets").startswith("Security: secret detected")
    assert "1 h" in sla_row(text, "security_secrets")
    assert "Never: zero tolerance" in sla_row(text, "security_secrets")
    assert "2 h" in sla_row(text, "generator_drift")
    assert "Never" in sla_row(text, "generator_drift")
    database = sla_row(text, "database_connectivity")
    assert "30 min" in database and "confirmed infrastructure issue" in database
    assert "database_specialist, devops" in database
    assert "Database health probe" in database
    test_failure = sla_row(text, "test_failure")
    assert "4 h" in test_failure and "hotfix approval" in test_failure
    assert "+ the code author" in test_failure
    assert "24 h" in sla_row(text, "security_high")
    assert "2 h" in sla_row(text, "build_failure")
    # Most urgent first: the 30-minute row leads the table.
    first = re.search(r'<tr data-failure-type="(\w+)"', text).group(1)
    assert first == "database_connectivity"


def test_the_sla_table_follows_an_edited_routing_rule(client):
    RoutingRule.objects.filter(failure_type="test_failure").update(
        sla_minutes=45, override_policy="qa_approval"
    )

    row = sla_row(page(client), "test_failure")

    assert "45 min" in row and "4 h" not in row
    assert "With QA's approval" in row


def test_zero_tolerance_is_shown_as_never_whatever_the_matrix_says(client):
    # Edited behind the admin's back (the shell): the service still refuses, so the page says so.
    RoutingRule.objects.filter(failure_type="generator_drift").update(override_policy="qa_approval")

    assert "Never: zero tolerance" in sla_row(page(client), "generator_drift")


def test_every_path_the_page_names_is_routed(client):
    whole = page(client, roles=["qa"], is_staff=True)
    text = re.search(r"<main>(.*)</main>", whole, re.S).group(1)
    named = re.findall(r"<code>(?:(?:GET|POST) )?(/(?:api|ci|admin)/[^<\s]*)</code>", text)
    paths = {html.unescape(path) for path in named}
    paths |= set(re.findall(r'href="(/[^"#?]*)', text))

    assert len(paths) > 15
    assert "/api/v1/ci/overrides/<id>/confirm-infrastructure" in paths
    for path in paths:
        concrete = path.replace("<id>", "1").split("?")[0].split("#")[0]
        try:
            resolve(concrete)
        except Resolver404:
            pytest.fail(f"{path} is not routed")


def test_the_navigation_marks_ci_help_as_the_current_section(client):
    text = page(client, roles=["operators"])

    assert '<a href="/ci/help/" aria-current="page">CI help</a>' in text
    assert '<a href="/ci/">CI health</a>' in text  # not current on the help page
