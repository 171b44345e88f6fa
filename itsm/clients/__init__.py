"""One client per platform, all on :class:`itsm.clients.base.HttpClient` (one retry policy), all
implementing :class:`itsm.clients.interface.PlatformClient`."""

from typing import Any

from celery.signals import worker_process_shutdown, worker_shutdown

from itsm.clients.base import HttpClient, close_shared_clients
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
    unset); ``kwargs`` go to the client (``config=``, ``transport=``, ``sleep=``).

    It sends through the process's shared connection pool of the platform (unless given a
    ``transport``), so creating one per call is cheap; use it as a context manager or ``close``
    it as before (that leaves the shared pool open).
    """
    kwargs.setdefault("shared", True)
    return CLIENTS[platform](endpoints()[platform], **kwargs)


def _close_connections_at_shutdown(**_signal: Any) -> None:
    close_shared_clients()


# A prefork child leaves through os._exit (no atexit): close its connections when it stops.
worker_process_shutdown.connect(_close_connections_at_shutdown, weak=False)
worker_shutdown.connect(_close_connections_at_shutdown, weak=False)


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
    "close_shared_clients",
]
