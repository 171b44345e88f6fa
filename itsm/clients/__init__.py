"""One client per platform, all on :class:`itsm.clients.base.HttpClient` (one retry policy)."""

from itsm.clients.base import CallLog
from itsm.clients.github import GitHubClient, github_client
from itsm.clients.jira import CreatedTicket, JiraClient, jira_client
from itsm.clients.linear import LinearClient, linear_client
from itsm.clients.servicenow import ServiceNowClient, servicenow_client
from itsm.clients.slack import SlackClient, slack_client

__all__ = [
    "CallLog",
    "CreatedTicket",
    "GitHubClient",
    "JiraClient",
    "LinearClient",
    "ServiceNowClient",
    "SlackClient",
    "client_for",
    "github_client",
    "jira_client",
    "linear_client",
    "servicenow_client",
    "slack_client",
]


def client_for(platform: str, **kwargs):
    """The configured client of ``platform`` (NotConfigured when its base URL is unset)."""
    factories = {
        "jira": jira_client,
        "servicenow": servicenow_client,
        "slack": slack_client,
        "linear": linear_client,
        "github": github_client,
    }
    return factories[platform](**kwargs)
