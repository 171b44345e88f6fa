"""The escalation side of ``make run`` (named in ``settings.PORTAL_DEV_SERVICES``): demo secrets
for the CI webhooks, so that a signed example payload can be posted to a fresh install. Nothing is
started; production sets its own ``GITHUB_WEBHOOK_SECRET`` and ``GITLAB_WEBHOOK_TOKEN``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

DEMO_VARIABLES = {
    "GITHUB_WEBHOOK_SECRET": "portal-demo-webhook-secret",
    "GITLAB_WEBHOOK_TOKEN": "portal-demo-gitlab-token",
}
HOW = {
    "GITHUB_WEBHOOK_SECRET": "sign GitHub payloads with it (X-Hub-Signature-256)",
    "GITLAB_WEBHOOK_TOKEN": "send it as X-Gitlab-Token",
}


class DemoWebhookSecrets:
    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir

    def start(self, env: Mapping[str, str]) -> dict[str, str]:
        added = {name: value for name, value in DEMO_VARIABLES.items() if not env.get(name)}
        for name, value in added.items():
            print(f"Demo {name}={value} ({HOW[name]})", flush=True)
        return added

    def stop(self) -> None:
        return None


class DemoCatalog:
    """The service catalog's side of ``make run``: when Jira is the bundled fake, the fakes'
    address goes on the http-request allow-list (the demo bundles call it). The seed's escalation
    ticket goes to the fake's ORCHESTRATION service project as an Incident, as configured.
    Whatever the user set is kept."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir

    def start(self, env: Mapping[str, str]) -> dict[str, str]:
        base = urlsplit(env.get("JIRA_BASE_URL", ""))
        if base.hostname not in ("127.0.0.1", "localhost") or base.path.rstrip("/") != "/jira":
            return {}
        wanted = {"CATALOG_HTTP_ALLOWED_HOSTS": base.netloc}
        added = {name: value for name, value in wanted.items() if not env.get(name)}
        if added:
            print(
                "Demo catalog: " + ", ".join(f"{name}={value}" for name, value in added.items()),
                flush=True,
            )
        return added

    def stop(self) -> None:
        return None
