"""One client per platform, all on :class:`itsm.clients.base.HttpClient` (one retry policy)."""

from typing import Any

from itsm.clients.base import CallLog, HttpClient
from itsm.clients.github import GitHubClient
from itsm.clients.jira import CreatedTicket, JiraClient
from itsm.clients.linear import LinearClient
from itsm.clients.servicenow import ServiceNowClient
from itsm.clients.slack import SlackClient
from itsm.config import endpoints

CLIENTS: dict[str, type[HttpClient]] = {
    "jira": JiraClient,
    "servicenow": ServiceNowClient,
    "slack": SlackClient,
    "linear": LinearClient,
    "github": GitHubClient,
}


def client_for(platform: str, **kwargs: Any) -> Any:
    """The client of ``platform`` on its configured endpoint (NotConfigured when its base URL is
    unset); ``kwargs`` go to the client (``config=``, ``transport=``, ``sleep=``)."""
    return CLIENTS[platform](endpoints()[platform], **kwargs)


__all__ = [
    "CLIENTS",
    "CallLog",
    "CreatedTicket",
    "GitHubClient",
    "JiraClient",
    "LinearClient",
    "ServiceNowClient",
    "SlackClient",
    "client_for",
]
