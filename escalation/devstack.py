"""The escalation side of ``make run`` (named in ``settings.PORTAL_DEV_SERVICES``): demo secrets
for the CI webhooks, so that a signed example payload can be posted to a fresh install. Nothing is
started; production sets its own ``GITHUB_WEBHOOK_SECRET`` and ``GITLAB_WEBHOOK_TOKEN``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

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
