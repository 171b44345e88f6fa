"""Shared fixtures, and the rule for tests that need real services.

Tests marked ``postgres``, ``redis`` or ``browser`` run when the service is configured
(``DATABASE_URL`` pointing at PostgreSQL, ``REDIS_URL``, Debian chromium at /usr/bin/chromium) and
skip otherwise, unless ``REQUIRE_SERVICES=1``: then a missing service fails the run instead.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings

pytest.register_assert_rewrite("tests.browser")
pytest_plugins = ["tests.browser", "tests.fakes"]

from tests.browser import CHROMIUM  # noqa: E402

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _missing(marker: str) -> str | None:
    if marker == "postgres" and settings.DATABASES["default"]["ENGINE"] != (
        "django.db.backends.postgresql"
    ):
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if marker == "redis" and not settings.REDIS_URL:
        return "needs Redis: set REDIS_URL=redis://..."
    if marker == "browser" and not shutil.which(CHROMIUM):
        return f"needs chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("postgres", "redis", "browser"):
        if item.get_closest_marker(marker) and (reason := _missing(marker)):
            if REQUIRE_SERVICES:
                pytest.fail(f"REQUIRE_SERVICES=1 but this test {reason}", pytrace=False)
            pytest.skip(reason)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def operator(db):
    from tests.factories import UserFactory

    return UserFactory(roles=["operators"])


@pytest.fixture
def operator_client(api_client, operator):
    api_client.force_authenticate(operator)
    return api_client


@pytest.fixture(autouse=True, scope="session")
def static_files_without_collectstatic():
    """Plain static storage for the test run, as Django advises for tests.

    Outside DEBUG the settings pick WhiteNoise's manifest storage, whose ``{% static %}`` needs the
    output of ``collectstatic`` (a release step); tests render pages from a fresh checkout, where
    WhiteNoise already serves files from the finders (``WHITENOISE_USE_FINDERS``).
    """
    from django.test import override_settings

    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        yield


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing():
    """A cheap hasher for the test run: PBKDF2's deliberate slowness costs ~0.5 s per test user."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test gets its own channel layer object. The Redis layer remembers the event loop a
    pending ``receive()`` runs in; a live server stopped while a consumer waited leaves that
    record behind, and every later ``receive()`` in another loop would fail ("Two event loops
    are trying to receive() on one channel layer at once")."""
    from channels.layers import channel_layers

    channel_layers.backends = {}
    yield
    channel_layers.backends = {}
