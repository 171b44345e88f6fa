"""What each role sees and may do in the admin (migration 0004's grants), and Admin → Leases,
which lists the leases of the configured backend."""

from __future__ import annotations

import importlib
import re
import uuid

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from pytest_django.asserts import assertContains, assertNotContains

from itsm.models import OutboxMessage, TicketTemplate
from portal.leader import RedisLeaseBackend, backend_from_settings
from tests.factories import LeaseFactory, UserFactory
from tests.itsm.test_pages import make_ticket

PASSWORD = "correct horse battery staple"  # the factory's password
MIGRATION = importlib.import_module("portal.migrations.0004_role_permissions")
QA_MODELS = ["Tickets", "Outbox messages", "Ticket templates", "Heartbeats", "Leases"]


@pytest.fixture
def role_permissions(db):
    """The grants of migration 0004, as the migration made them.

    A ``transactional_db`` test flushes every table, the grants included, for the tests after it;
    the migration's own function (idempotent) is run again on the historical models to restore
    them. On a database fresh from ``migrate`` it changes nothing.
    """
    state = MigrationExecutor(connection).loader.project_state(("portal", "0004_role_permissions"))
    MIGRATION.grant(state.apps, None)


def admin_login(client, username: str) -> None:
    """Logs in through the admin's own login form, as a person would."""
    response = client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": PASSWORD}
    )
    assert response.status_code == 302, response.content.decode()[:500]


def admin_sections(client) -> list[str]:
    html = client.get("/admin/").content.decode()
    return re.findall(r'<th scope="row" id="[^"]+">\s*<a href="[^"]+"[^>]*>([^<]+)</a>', html)


def codenames(role: str, apps: tuple[str, ...] = ("itsm", "portal")) -> set[str]:
    """The role's permissions on the models of ``apps`` (other apps grant their own)."""
    group = Group.objects.get(name=role)
    permissions = group.permissions.filter(content_type__app_label__in=apps)
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions}


# --- the grants ---------------------------------------------------------------------------------


def test_qa_may_view_tickets_outbox_templates_heartbeats_and_leases_and_nothing_more(
    role_permissions,
):
    assert codenames("qa") == {
        "itsm.view_ticket",
        "itsm.view_outboxmessage",
        "itsm.view_tickettemplate",
        "portal.view_heartbeat",
        "portal.view_lease",
    }


def test_operators_also_edit_templates_and_may_make_outbox_messages_due(role_permissions):
    assert codenames("operators") == codenames("qa") | {
        "itsm.change_outboxmessage",
        "itsm.add_tickettemplate",
        "itsm.change_tickettemplate",
        "itsm.delete_tickettemplate",
    }


def test_admins_hold_every_permission(role_permissions):
    assert Group.objects.get(name="admins").permissions.count() == Permission.objects.count()


def test_granting_again_changes_nothing(role_permissions):
    before = {role: codenames(role) for role in ("qa", "operators", "admins")}
    state = MigrationExecutor(connection).loader.project_state(("portal", "0004_role_permissions"))

    MIGRATION.grant(state.apps, None)

    assert {role: codenames(role) for role in ("qa", "operators", "admins")} == before


# --- QA in the admin ----------------------------------------------------------------------------


def test_qa_logs_into_the_admin_and_sees_what_qa_reviews(client, role_permissions):
    UserFactory(username="quality", roles=["qa"], is_staff=True)

    admin_login(client, "quality")

    sections = admin_sections(client)
    assert set(QA_MODELS) <= set(sections)
    assert {"Users", "Groups", "Periodic tasks", "Tokens"}.isdisjoint(sections)


def test_qa_reads_tickets_outbox_messages_and_templates(client, role_permissions):
    ticket = make_ticket(job_id="qa-review-1")
    message = OutboxMessage.objects.create(
        kind="ticket.create", platform="servicenow", idempotency_key="k-1", ticket=ticket
    )
    template = TicketTemplate.objects.create(
        platform="jira", name="qa_check", fields={"summary": "RCA: {job_name}"}
    )
    UserFactory(username="quality", roles=["qa"], is_staff=True)
    admin_login(client, "quality")

    assertContains(client.get("/admin/itsm/ticket/"), "qa-review-1")
    assertContains(client.get("/admin/itsm/outboxmessage/"), "ticket.create")
    assertContains(client.get("/admin/itsm/tickettemplate/"), "qa_check")
    for url in (
        f"/admin/itsm/ticket/{ticket.pk}/change/",
        f"/admin/itsm/outboxmessage/{message.pk}/change/",
        f"/admin/itsm/tickettemplate/{template.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assertNotContains(response, 'name="_save"')  # read-only: no Save button


def test_qa_cannot_add_change_or_delete_a_template(client, role_permissions):
    template = TicketTemplate.objects.create(
        platform="jira", name="qa_check", fields={"summary": "RCA: {job_name}"}
    )
    UserFactory(username="quality", roles=["qa"], is_staff=True)
    admin_login(client, "quality")
    change = f"/admin/itsm/tickettemplate/{template.pk}/change/"

    assert client.get("/admin/itsm/tickettemplate/add/").status_code == 403
    client.post(
        change,
        {
            "platform": "jira",
            "name": "qa_check",
            "engine": "format",
            "fields": '{"summary": "changed"}',
            "is_active": "on",
        },
    )
    assert client.get(f"/admin/itsm/tickettemplate/{template.pk}/delete/").status_code == 403
    template.refresh_from_db()
    assert template.fields == {"summary": "RCA: {job_name}"}
    assert TicketTemplate.objects.count() == 1


def test_an_operator_with_admin_access_edits_templates(client, role_permissions):
    UserFactory(username="ops", roles=["operators"], is_staff=True)
    admin_login(client, "ops")

    assert client.get("/admin/itsm/tickettemplate/add/").status_code == 200
    assert "Users" not in admin_sections(client)


def test_a_member_of_admins_who_is_not_superuser_manages_users(client, role_permissions):
    UserFactory(username="boss", roles=["admins"], is_staff=True)
    admin_login(client, "boss")

    assert {"Users", "Groups", *QA_MODELS} <= set(admin_sections(client))


# --- Admin → Leases -----------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_leases_admin_lists_the_database_backends_leases(admin_client, settings):
    settings.LEADER_ELECTION = {**settings.LEADER_ELECTION, "BACKEND": "database"}
    LeaseFactory(name="celery-beat", holder_identity="beat@host-1", lease_transitions=7)

    response = admin_client.get("/admin/portal/lease/")

    assertContains(response, '<th class="field-name">celery-beat</th>', html=True)
    assertContains(response, "beat@host-1")
    assertContains(response, '<td class="field-lease_transitions">7</td>', html=True)
    assertContains(response, "1 lease")


@pytest.mark.redis
def test_leases_admin_lists_the_leases_redis_holds(admin_client, settings):
    settings.LEADER_ELECTION = {**settings.LEADER_ELECTION, "BACKEND": "redis"}
    backend = backend_from_settings()
    assert isinstance(backend, RedisLeaseBackend)
    name = f"celery-beat-test-{uuid.uuid4().hex[:8]}"
    backend.try_acquire_or_renew(name, "beat@redis-host", 15)
    try:
        response = admin_client.get("/admin/portal/lease/", {"q": name})
    finally:
        backend.client.delete(backend.prefix + name)

    assertContains(response, f'<th class="field-name">{name}</th>', html=True)
    assertContains(response, "beat@redis-host")
    assertContains(response, "<strong>redis</strong> lease backend")
    assertContains(response, 'alt="yes"')  # held
    assertContains(response, '<time class="timestamp"')


def test_leases_admin_says_so_when_the_backend_does_not_answer(admin_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.LEADER_ELECTION = {**settings.LEADER_ELECTION, "BACKEND": "redis"}

    response = admin_client.get("/admin/portal/lease/")

    assert response.status_code == 200
    assertContains(response, "the lease backend did not answer")


def test_qa_sees_the_leases_but_cannot_delete_one(client, role_permissions, settings):
    settings.LEADER_ELECTION = {**settings.LEADER_ELECTION, "BACKEND": "database"}
    lease = LeaseFactory(name="celery-beat")
    UserFactory(username="quality", roles=["qa"], is_staff=True)
    admin_login(client, "quality")

    assertContains(client.get("/admin/portal/lease/"), "celery-beat")
    assert client.get(f"/admin/portal/lease/{lease.pk}/delete/").status_code == 403


def test_qa_is_not_offered_deliver_now_and_cannot_post_it(client, role_permissions):
    UserFactory(username="qa-deliver", roles=["qa"], is_staff=True)
    message = OutboxMessage.objects.create(
        kind="slack.post", platform="slack", idempotency_key="dead-1",
        status=OutboxMessage.Status.DEAD,
    )  # fmt: skip
    admin_login(client, "qa-deliver")

    page = client.get("/admin/itsm/outboxmessage/")
    client.post(
        "/admin/itsm/outboxmessage/",
        {"action": "deliver_now", "_selected_action": [message.pk]},
    )

    assertNotContains(page, "deliver_now")
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.DEAD
