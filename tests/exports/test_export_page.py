"""A session's export page (/exports/<id>/export/) as the server renders it, and the demo session
(``manage.py demo_export_session``) exported against the fake Jira. The page's live behaviour
runs in a browser: tests/exports/test_export_browser.py."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from exports.models import ExportSession, ManualFix, TicketDependency
from exports.services.demo import ATTACHMENT_NAME, TICKETS, create_demo_session
from tests.exports import export_support
from tests.exports.export_support import assert_exactly_once, export
from tests.factories import ExportSessionFactory, ExportTicketFactory, UserFactory

jira = export_support.jira
dispatched = export_support.dispatched

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def page_url(session) -> str:
    return reverse("exports:session-export", args=[session.pk])


def config_of(html: str) -> dict:
    match = re.search(r'<script id="export-config" type="application/json">(.*?)</script>', html)
    assert match, "the page embeds its configuration"
    return json.loads(match.group(1))


def test_an_operator_gets_the_buttons_the_endpoints_and_the_current_state(client):
    client.force_login(UserFactory(roles=["operators"]))
    session = ExportSessionFactory(name="Checkout v2", jira_project_key="OPS")
    ExportTicketFactory.create_batch(3, session=session)

    response = client.get(page_url(session))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="start-export"' in html and 'id="retry-export"' in html
    assert "csrfmiddlewaretoken" in html
    assert "exports/export.js" in html
    config = config_of(html)
    assert config["urls"] == {
        "start": f"/api/jira/export-session/{session.pk}",
        "retry": f"/api/jira/retry-failed/{session.pk}",
        "status": f"/api/jira/export-status/{session.pk}",
        "results": f"/api/jira/export-results/{session.pk}",
        "socket": f"/api/jira/export/progress/{session.pk}",
    }
    assert config["initial"]["type"] == "export_progress"
    assert config["initial"]["status"] == "draft"
    assert config["initial"]["total_tickets"] == 3
    assert config["results"] is None
    assert sorted(config["orders"].values()) == [t.order for t in session.tickets.all()]


def test_a_failed_export_embeds_the_failure_and_the_results_so_far(client):
    client.force_login(UserFactory(roles=["qa"]))
    session = ExportSessionFactory(
        jira_project_key="OPS",
        status=ExportSession.Status.EXPORT_FAILED,
        failed_at_ticket_order=2,
        error_category="admin_required",
        error_message="Jira refused permission in project OPS.",
        recovery_actions=["Ask a Jira administrator", "Retry the export once it is fixed"],
    )
    ExportTicketFactory(
        session=session, order=1, title="Done already", jira_ticket_key="OPS-7",
        jira_ticket_url="http://jira.example/browse/OPS-7", jira_export_status="exported",
    )  # fmt: skip
    ExportTicketFactory(session=session, order=2)

    html = client.get(page_url(session)).content.decode()

    assert 'id="start-export"' not in html  # QA follows exports, it does not run them
    assert "needs the operators role" in html
    config = config_of(html)
    assert config["initial"] == {
        "type": "export_failed",
        "session_id": str(session.pk),
        "status": "failed",
        "failed_at_ticket": 2,
        "error_category": "admin_required",
        "retry_available": True,
        "error_message": "Jira refused permission in project OPS.",
        "recovery_actions": ["Ask a Jira administrator", "Retry the export once it is fixed"],
    }
    assert [t["jira_key"] for t in config["results"]["jira_tickets"]] == ["OPS-7"]


def test_the_page_escapes_what_users_wrote(client):
    client.force_login(UserFactory(roles=["operators"]))
    session = ExportSessionFactory(name="</script><script>alert(1)</script>")
    ExportTicketFactory(session=session, title="</script><b>x</b>")

    html = client.get(page_url(session)).content.decode()

    assert "<script>alert(1)" not in html
    assert "</script><b>" not in html


def test_people_without_a_role_and_unknown_sessions_get_no_page(client):
    session = ExportSessionFactory()
    assert client.get(page_url(session)).status_code == 302  # to the login page
    client.force_login(UserFactory(roles=[]))
    assert client.get(page_url(session)).status_code == 403
    client.force_login(UserFactory(roles=["operators"]))
    assert client.get("/exports/00000000-0000-4000-8000-000000000000/export/").status_code == 404


def test_the_demo_command_creates_twelve_tickets_with_dependencies_and_an_attachment():
    UserFactory(username="operator", roles=["operators"])
    out = StringIO()

    call_command("demo_export_session", "--user", "operator", stdout=out)

    session = ExportSession.objects.get()
    assert f"/exports/{session.pk}/export/" in out.getvalue()
    assert session.created_by.username == "operator"
    assert session.tickets.count() == len(TICKETS) == 12
    assert TicketDependency.objects.filter(blocked__session=session).count() == sum(
        len(depends) for _, _, depends, _ in TICKETS
    )
    first = session.tickets.get(order=1)
    assert first.attachment.name.endswith(ATTACHMENT_NAME)
    assert first.attachment.read().startswith(b"Checkout v2 rollout plan")


def test_the_demo_command_refuses_an_unknown_user_and_a_bad_project():
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("demo_export_session", "--user", "nobody", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("demo_export_session", "--project", "not a key!", stdout=StringIO())
    assert not ExportSession.objects.exists()


def test_the_demo_session_exports_once_each_with_links_and_its_manual_fixes(jira, dispatched):
    session = create_demo_session("OPS")

    assert export(session) == "completed"

    session.refresh_from_db()
    assert_exactly_once(jira, session)
    assert session.dependencies_created == sum(len(d) for _, _, d, _ in TICKETS)
    assert set(ManualFix.objects.filter(session=session).values_list("issue_type", flat=True)) == {
        "assignee_invalid",
        "sprint_not_found",
        "priority_unavailable",
    }
    issues = {issue["key"]: issue for issue in jira.state("jira")["issues"]}
    first = session.tickets.get(order=1)
    assert [a["filename"] for a in issues[first.jira_ticket_key]["attachments"]] == [
        ATTACHMENT_NAME
    ]
