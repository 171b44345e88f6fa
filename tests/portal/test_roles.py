"""The page mixins next to the role rules: who opens an operators, QA or admins page."""

from __future__ import annotations

import pytest
from pytest_django.asserts import assertContains, assertRedirects, assertTemplateUsed

from portal.roles import user_roles
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.portal.error_page_urls")]

PAGES = {"operators": "/for/operators/", "qa": "/for/qa/", "admins": "/for/admins/"}


@pytest.mark.parametrize("url", PAGES.values())
def test_an_anonymous_visitor_is_sent_to_log_in(client, url):
    assertRedirects(client.get(url), f"/accounts/login/?next={url}", fetch_redirect_response=False)


@pytest.mark.parametrize(
    ("roles", "superuser", "opens"),
    [
        (["operators"], False, {"operators"}),
        (["qa"], False, {"qa"}),
        (["operators", "qa"], False, {"operators", "qa"}),
        (["admins"], False, {"operators", "qa", "admins"}),
        ([], True, {"operators", "qa", "admins"}),
        ([], False, set()),
    ],
    ids=["operator", "qa", "operator-and-qa", "admin", "superuser", "no-role"],
)
def test_each_role_opens_its_pages_and_gets_the_styled_403_elsewhere(
    client, roles, superuser, opens
):
    client.force_login(UserFactory(roles=roles, is_superuser=superuser))

    for role, url in PAGES.items():
        response = client.get(url)
        if role in opens:
            assert response.status_code == 200, url
        else:
            assert response.status_code == 403, url
            assertTemplateUsed(response, "403.html")
            assertContains(response, f"This page needs the {role} role.", status_code=403)


@pytest.mark.parametrize(
    ("roles", "status"),
    [(["qa"], 200), (["admins"], 200), (["operators"], 403), ([], 403)],
    ids=["qa", "admin", "operator", "no-role"],
)
def test_a_page_open_to_several_roles_opens_to_any_of_them(client, roles, status):
    client.force_login(UserFactory(roles=roles))

    response = client.get("/for/qa-or-admins/")

    assert response.status_code == status
    if status == 403:
        assertContains(response, "This page needs the qa or admins role.", status_code=403)


def test_roles_are_read_once_per_request_user(django_assert_num_queries):
    user = UserFactory(roles=["qa"])

    with django_assert_num_queries(1):
        assert user_roles(user) == {"qa"}
        assert user_roles(user) == {"qa"}
