"""The fake-server fixtures live in ``tests/fakes.py`` (a plugin of the root conftest), shared by
every app's tests; these names stay importable from here for the itsm tests that use them."""

from tests.fakes import (  # noqa: F401
    FAKE_GITHUB_TOKEN,
    FAKE_JIRA_EMAIL,
    FAKE_JIRA_TOKEN,
    FAKE_LINEAR_API_KEY,
    FAKE_SERVICENOW_PASSWORD,
    FAKE_SERVICENOW_USER,
    REPO_ROOT,
    SLACK_WEBHOOK_PATH,
    FakeServers,
)
