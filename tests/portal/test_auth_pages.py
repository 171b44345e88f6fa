"""Logging in and out, the dashboard shell and its navigation, the admin, and the demo users."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import HeartbeatFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # the factory's password
# What each role's navigation offers: only what the role can open.
SECTIONS = [
    "Overview",
    "CI health",
    "CI reports",
    "CI help",
    "Exports",
    "Requests",
    "ITSM templates",
    "API docs",
]
QA_SECTIONS = [section for section in SECTIONS if section != "ITSM templates"]
NO_ROLE_SECTIONS = [s for s in QA_SECTIONS if s not in ("CI health", "CI reports", "Exports")]


def csrf_token_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def nav_labels(html: str) -> list[str]:
    nav = re.search(r'<nav aria-label="Sections">(.*?)</nav>', html, re.S).group(1)
    return [label.strip() for label in re.findall(r"<(?:a|span)[^>]*>([^<]+)</", nav)]


@pytest.fixture
def csrf_client() -> Client:
    """A browser-like client: CSRF is checked, as it is for real visitors."""
    return Client(enforce_csrf_checks=True)


def log_in(client: Client, username: str, password: str):
    page = client.get("/accounts/login/")
    return client.post(
        "/accounts/login/",
        {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": csrf_token_of(page.content.decode()),
        },
    )


# --- roles --------------------------------------------------------------------------------------


def test_role_groups_exist_after_migrations():
    names = set(Group.objects.values_list("name", flat=True))

    assert {"operators", "qa", "admins"} <= names


# --- login and logout -------------------------------------------------------------------------


def test_login_page_renders_a_form_with_a_csrf_token(csrf_client):
    response = csrf_client.get("/accounts/login/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Log in</h1>" in html
    assert csrf_token_of(html)
    assert 'name="username"' in html
    assert 'name="password"' in html


def test_login_with_the_right_password_redirects_to_the_dashboard(csrf_client):
    user = UserFactory()

    response = log_in(csrf_client, user.username, PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert csrf_client.session[SESSION_KEY] == str(user.pk)


def test_login_follows_next_to_the_page_asked_for(csrf_client):
    user = UserFactory()
    page = csrf_client.get("/accounts/login/?next=/api/docs/")

    response = csrf_client.post(
        "/accounts/login/?next=/api/docs/",
        {
            "username": user.username,
            "password": PASSWORD,
            "next": "/api/docs/",
            "csrfmiddlewaretoken": csrf_token_of(page.content.decode()),
        },
    )

    assert response["Location"] == "/api/docs/"


def test_login_with_a_wrong_password_shows_an_error_and_stays_anonymous(csrf_client):
    user = UserFactory()

    response = log_in(csrf_client, user.username, "wrong password")

    assert response.status_code == 200
    assert "did not match" in response.content.decode()
    assert SESSION_KEY not in csrf_client.session


def test_login_without_the_csrf_token_is_refused(csrf_client):
    user = UserFactory()
    csrf_client.get("/accounts/login/")

    response = csrf_client.post(
        "/accounts/login/", {"username": user.username, "password": PASSWORD}
    )

    assert response.status_code == 403
    assert SESSION_KEY not in csrf_client.session


def test_logout_by_post_ends_the_session(csrf_client):
    user = UserFactory()
    log_in(csrf_client, user.username, PASSWORD)
    dashboard = csrf_client.get("/").content.decode()

    response = csrf_client.post(
        "/accounts/logout/", {"csrfmiddlewaretoken": csrf_token_of(dashboard)}
    )

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert SESSION_KEY not in csrf_client.session


def test_logout_by_get_is_not_allowed(client):
    client.force_login(UserFactory())

    response = client.get("/accounts/logout/")

    assert response.status_code == 405
    assert SESSION_KEY in client.session


# --- the dashboard ------------------------------------------------------------------------------


def test_dashboard_redirects_anonymous_visitors_to_login(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_dashboard_shows_the_roles_of_the_user(client):
    client.force_login(UserFactory(username="olga", roles=["operators", "qa"]))

    html = client.get("/").content.decode()

    assert "<h1>Overview</h1>" in html
    assert "Signed in as <strong>olga</strong>" in html
    assert "roles: operators, qa" in html


def test_dashboard_tells_a_user_without_a_role_to_ask_for_one(client):
    client.force_login(UserFactory())

    html = client.get("/").content.decode()

    assert "no role yet" in html


def test_dashboard_navigation_lists_every_section(client):
    client.force_login(UserFactory(roles=["operators"]))

    html = client.get("/").content.decode()

    assert nav_labels(html) == SECTIONS


def test_dashboard_navigation_offers_the_admin_to_staff(client):
    client.force_login(UserFactory(is_staff=True, roles=["operators"]))

    html = client.get("/").content.decode()

    assert nav_labels(html) == [*SECTIONS, "Admin"]
    assert '<a href="/admin/">Admin</a>' in html


@pytest.mark.parametrize(
    ("roles", "is_staff", "superuser", "sections"),
    [
        (["operators"], False, False, SECTIONS),
        (["qa"], True, False, [*QA_SECTIONS, "Admin"]),
        (["admins"], True, False, [*SECTIONS, "Admin"]),
        ([], True, True, [*SECTIONS, "Admin"]),
        ([], False, False, NO_ROLE_SECTIONS),
    ],
    ids=["operator", "qa", "admin", "superuser", "no-role"],
)
def test_navigation_offers_each_role_only_what_it_can_open(
    client, roles, is_staff, superuser, sections
):
    client.force_login(UserFactory(roles=roles, is_staff=is_staff, is_superuser=superuser))

    html = client.get("/").content.decode()

    assert nav_labels(html) == sections
    nav = re.search(r'<nav aria-label="Sections">(.*?)</nav>', html, re.S).group(1)
    for url in re.findall(r'href="([^"]+)"', nav):
        assert client.get(url).status_code == 200, url


def test_qa_is_not_offered_the_itsm_pages_which_it_cannot_open(client):
    client.force_login(UserFactory(roles=["qa"], is_staff=True))

    html = client.get("/").content.decode()

    assert "ITSM templates" not in html
    assert client.get("/itsm/tickets/new/").status_code == 403


def test_dashboard_marks_overview_as_the_current_page(client):
    client.force_login(UserFactory())

    html = client.get("/").content.decode()

    assert '<a href="/" aria-current="page">Overview</a>' in html


def test_dashboard_shows_the_last_heartbeat(client):
    HeartbeatFactory(worker="celery@worker-7")
    client.force_login(UserFactory())

    html = client.get("/").content.decode()

    assert "celery@worker-7" in html


def test_dashboard_shows_the_last_heartbeat_as_a_timestamp(client):
    moment = datetime(2025, 10, 12, 9, 57, tzinfo=UTC)
    with time_machine.travel(moment, tick=False):
        HeartbeatFactory(worker="celery@worker-8")
    client.force_login(UserFactory())

    with time_machine.travel(moment + timedelta(minutes=3), tick=False):
        html = client.get("/").content.decode()

    assert (
        '<p class="big" data-field="last_heartbeat" data-timestamp><time class="timestamp" '
        'datetime="2025-10-12T09:57:00+00:00" title="2025-10-12T09:57:00+00:00">'
        "2025-10-12 09:57:00 UTC "
        '<span class="relative" data-relative>(3 min ago)</span></time></p>'
    ) in html
    assert 'data-time-zone="UTC"' in html


def test_dashboard_without_a_heartbeat_says_none_yet(client):
    client.force_login(UserFactory())

    html = client.get("/").content.decode()

    assert '<span class="muted">none yet</span>' in html


def test_dashboard_queries_are_bounded(client, django_assert_max_num_queries):
    HeartbeatFactory.create_batch(20)
    client.force_login(UserFactory(roles=["operators", "qa"], is_staff=True))

    # session, user, groups, beat lease (with the database clock), last heartbeat; and the CI
    # section (portal.overview) this user's roles see: open, breaches today, overrides waiting
    with django_assert_max_num_queries(9):
        response = client.get("/")

    assert response.status_code == 200


# --- the admin ----------------------------------------------------------------------------------


def test_admin_carries_the_portal_site_header(client):
    client.force_login(UserFactory(is_staff=True))

    response = client.get("/admin/")

    assert response.status_code == 200
    assert "Operations portal administration" in response.content.decode()


def test_admin_refuses_users_who_are_not_staff(client):
    client.force_login(UserFactory(roles=["operators"]))

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- demo users -------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["operator", "qa", "admin"])
def test_load_demo_creates_users_who_log_in_with_the_demo_password(username):
    call_command("load_demo", stdout=io.StringIO())

    assert Client().login(username=username, password="portal-demo")


def test_load_demo_gives_each_demo_user_its_role():
    call_command("load_demo", stdout=io.StringIO())
    users = get_user_model().objects.filter(username__in=["operator", "qa", "admin"])

    groups = {user.username: sorted(user.groups.values_list("name", flat=True)) for user in users}

    assert groups == {"operator": ["operators"], "qa": ["qa"], "admin": ["admins"]}
    assert get_user_model().objects.get(username="admin").is_superuser


def test_load_demo_prints_a_ci_token_that_authenticates(api_client):
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    key = re.search(r"CI token for ci-bot: ([0-9a-f]{40})", out.getvalue()).group(1)

    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = api_client.get("/api/v1/me/")

    assert response.json()["username"] == "ci-bot"
    assert response.json()["roles"] == ["operators"]


def test_load_demo_is_idempotent():
    call_command("load_demo", stdout=io.StringIO())
    users = set(get_user_model().objects.values_list("username", flat=True))
    token = Token.objects.get(user__username="ci-bot").key

    call_command("load_demo", stdout=io.StringIO())

    assert set(get_user_model().objects.values_list("username", flat=True)) == users
    assert Token.objects.get(user__username="ci-bot").key == token
    assert Client().login(username="operator", password="portal-demo")


def test_load_demo_restores_a_changed_demo_password():
    call_command("load_demo", stdout=io.StringIO())
    operator = get_user_model().objects.get(username="operator")
    operator.set_password("something else")
    operator.save()

    call_command("load_demo", stdout=io.StringIO())

    assert Client().login(username="operator", password="portal-demo")


def test_load_demo_refuses_to_run_on_a_production_install(settings):
    settings.HTTPS = True

    with pytest.raises(CommandError, match="production"):
        call_command("load_demo", stdout=io.StringIO())

    assert not get_user_model().objects.filter(username="operator").exists()
