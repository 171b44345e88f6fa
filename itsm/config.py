"""The ITSM layer's configuration: ``config/itsm_config.json`` (seed 003's shape), then environment.

The file gives the defaults (retry policy, timeouts, reconciliation window, SLA targets and the
file templates); environment variables override single values so that an operator can tune a
deployment without editing the file. Endpoints and credentials come only from the environment
(see :func:`endpoints`), never from the file, so that no secret is ever committed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from portal.redaction import register_secrets

PLATFORMS = ("jira", "servicenow", "slack", "linear", "github")
TICKET_PLATFORMS = ("jira", "servicenow")
# Priority ranks ("1" is the most urgent) and Jira's default priority names for them. Templates
# may give either; Jira is sent the name, SLA targets are looked up by rank.
PRIORITY_NAMES = {"1": "Highest", "2": "High", "3": "Medium", "4": "Low", "5": "Lowest"}


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying a call again (US-1)."""

    max_retries: int = 3
    retry_delay_seconds: float = 5.0
    exponential_backoff: bool = True
    backoff_multiplier: float = 2.0
    max_retry_delay_seconds: float = 60.0
    retryable_status_codes: frozenset[int] = frozenset({429, 500, 502, 503, 504})

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("retry_policy.max_retries must be 0 or more")
        if self.retry_delay_seconds < 0 or self.max_retry_delay_seconds < 0:
            raise ValueError("retry_policy delays must be 0 or more")
        if self.backoff_multiplier < 1:
            raise ValueError("retry_policy.backoff_multiplier must be 1 or more")

    def delay_before(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry).

        A server's ``Retry-After`` wins over the computed backoff (waiting less would fail again,
        INTEGRATIONS.md §1a), but never beyond ``max_retry_delay_seconds``.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_delay_seconds)
        delay = self.retry_delay_seconds
        if self.exponential_backoff:
            delay *= self.backoff_multiplier ** (retry_number - 1)
        return min(delay, self.max_retry_delay_seconds)


@dataclass(frozen=True)
class Timeouts:
    """Per-attempt connect and read limits, and the budget of one logical call with its retries."""

    connection_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 30.0
    total_timeout_seconds: float = 60.0

    def for_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connection_timeout_seconds,
            read=self.read_timeout_seconds,
            write=self.read_timeout_seconds,
            pool=self.connection_timeout_seconds,
        )


@dataclass(frozen=True)
class Reconcile:
    """How long to look for an object created by an attempt whose outcome we never saw.

    Jira's ``/search/jql`` is eventually consistent (INTEGRATIONS.md §1h): a label search right after
    a create may miss it, so the search is repeated until the window closes.
    """

    window_seconds: float = 10.0
    poll_interval_seconds: float = 1.0


@dataclass(frozen=True)
class SlaTargets:
    """Minutes to first response and to resolution, by priority ("1" is the most urgent)."""

    response_minutes_by_priority: dict[str, int] = field(default_factory=dict)
    resolution_minutes_by_priority: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ItsmConfig:
    retry_policy: RetryPolicy
    timeout: Timeouts
    reconcile: Reconcile
    sla: SlaTargets
    templates: dict[str, dict[str, dict[str, Any]]]


# Environment variable → (section, key, type). Documented in README "Integrations".
ENV_OVERRIDES: dict[str, tuple[str, str, type]] = {
    "ITSM_MAX_RETRIES": ("retry_policy", "max_retries", int),
    "ITSM_RETRY_DELAY_SECONDS": ("retry_policy", "retry_delay_seconds", float),
    "ITSM_BACKOFF_MULTIPLIER": ("retry_policy", "backoff_multiplier", float),
    "ITSM_MAX_RETRY_DELAY_SECONDS": ("retry_policy", "max_retry_delay_seconds", float),
    "ITSM_CONNECT_TIMEOUT_SECONDS": ("timeout", "connection_timeout_seconds", float),
    "ITSM_READ_TIMEOUT_SECONDS": ("timeout", "read_timeout_seconds", float),
    "ITSM_TOTAL_TIMEOUT_SECONDS": ("timeout", "total_timeout_seconds", float),
    "ITSM_RECONCILE_WINDOW_SECONDS": ("reconcile", "window_seconds", float),
}


def parse_config(raw: dict[str, Any], environ: dict[str, str] | None = None) -> ItsmConfig:
    """Builds the configuration from the file's JSON and the environment; ValueError if invalid."""
    environ = os.environ if environ is None else environ
    sections: dict[str, dict[str, Any]] = {
        name: dict(raw.get(name) or {}) for name in ("retry_policy", "timeout", "reconcile", "sla")
    }
    for variable, (section, key, kind) in ENV_OVERRIDES.items():
        if environ.get(variable, "") != "":
            try:
                sections[section][key] = kind(environ[variable])
            except ValueError as exc:
                raise ValueError(f"{variable} must be a number, got {environ[variable]!r}") from exc
    retry = sections["retry_policy"]
    if "retryable_status_codes" in retry:
        retry["retryable_status_codes"] = frozenset(int(c) for c in retry["retryable_status_codes"])
    try:
        policy = RetryPolicy(**retry)
        timeouts = Timeouts(**sections["timeout"])
        reconcile = Reconcile(**sections["reconcile"])
        sla = SlaTargets(**sections["sla"])
    except TypeError as exc:  # an unknown key in the file
        raise ValueError(f"itsm_config.json: {exc}") from exc
    templates = raw.get("templates") or {}
    if not isinstance(templates, dict):
        raise ValueError("itsm_config.json: templates must be an object")
    return ItsmConfig(policy, timeouts, reconcile, sla, templates)


@lru_cache(maxsize=1)
def get_config() -> ItsmConfig:
    path = Path(settings.ITSM_CONFIG_PATH)
    with path.open(encoding="utf-8") as handle:
        return parse_config(json.load(handle))


@dataclass(frozen=True, repr=False)
class Endpoint:
    """Where one platform lives and how to authenticate; ``repr`` never shows the secret.

    Nor the whole ``base_url``: Slack's webhook URL is itself the credential, and any URL may hold
    ``user:password@``; ``repr`` keeps the scheme and host, enough to tell deployments apart.
    """

    platform: str
    base_url: str
    username: str = ""
    secret: str = ""
    project: str = ""  # Jira project key; unused elsewhere

    @property
    def configured(self) -> bool:
        return bool(self.base_url)

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of ``base_url``: no userinfo, path, query or fragment."""
        try:
            parts = urlsplit(self.base_url)
            host, port = parts.hostname or "", parts.port
        except ValueError:  # malformed (a bad port): show nothing of it
            return ""
        if not parts.scheme or not host:
            return ""
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        return f"{parts.scheme}://{host}" + (f":{port}" if port else "")

    def __repr__(self) -> str:
        return (
            f"Endpoint(platform={self.platform!r}, base_url={self.origin!r}, "
            f"username={self.username!r})"
        )


def endpoints() -> dict[str, Endpoint]:
    """Read at call time from settings (which read the environment), never at import time.

    Every secret read here is registered with :mod:`portal.redaction`, so that it is masked in
    payloads, stored errors and logs even where no pattern recognises it (a plain password).
    """
    conf = settings.ITSM_ENDPOINTS
    register_secrets(conf["JIRA_API_TOKEN"], username=conf["JIRA_EMAIL"])
    register_secrets(conf["SERVICENOW_PASSWORD"], username=conf["SERVICENOW_USER"])
    register_secrets(conf["LINEAR_API_KEY"], conf["GITHUB_TOKEN"])
    # A Slack webhook URL carries its secret in the path after /services/ (or /workflows/,
    # /triggers/); a URL with none of them is masked whole, since then we cannot tell.
    webhook = conf["SLACK_WEBHOOK_URL"]
    for segment in ("/services/", "/workflows/", "/triggers/"):
        if segment in webhook:
            webhook = webhook.split(segment, 1)[1].split("?", 1)[0].split("#", 1)[0]
            break
    register_secrets(webhook)
    return {
        "jira": Endpoint(
            "jira",
            conf["JIRA_BASE_URL"],
            conf["JIRA_EMAIL"],
            conf["JIRA_API_TOKEN"],
            conf["JIRA_PROJECT_KEY"],
        ),
        "servicenow": Endpoint(
            "servicenow",
            conf["SERVICENOW_BASE_URL"],
            conf["SERVICENOW_USER"],
            conf["SERVICENOW_PASSWORD"],
        ),
        "slack": Endpoint("slack", conf["SLACK_WEBHOOK_URL"]),
        "linear": Endpoint("linear", conf["LINEAR_API_URL"], secret=conf["LINEAR_API_KEY"]),
        "github": Endpoint("github", conf["GITHUB_API_URL"], secret=conf["GITHUB_TOKEN"]),
    }
