"""One client per platform, all on :class:`itsm.clients.base.HttpClient` (one retry policy), all
implementing :class:`itsm.clients.interface.PlatformClient`."""

from typing import Any

from itsm.clients.base import HttpClient
from itsm.clients.github import GitHubClient
from itsm.clients.interface import PlatformClient
from itsm.clients.jira import JiraClient
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


def client_class(platform: str) -> type[HttpClient]:
    """The client class of ``platform`` (its class-level rules need no endpoint)."""
    return CLIENTS[platform]


def client_for(platform: str, **kwargs: Any) -> Any:
    """The client of ``platform`` on its configured endpoint (NotConfigured when its base URL is
    unset); ``kwargs`` go to the client (``config=``, ``transport=``, ``sleep=``)."""
    return CLIENTS[platform](endpoints()[platform], **kwargs)


__all__ = [
    "CLIENTS",
    "GitHubClient",
    "HttpClient",
    "JiraClient",
    "LinearClient",
    "PlatformClient",
    "ServiceNowClient",
    "SlackClient",
    "client_class",
    "client_for",
]
