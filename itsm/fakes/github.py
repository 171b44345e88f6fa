"""Fake GitHub REST API: job logs and re-runs (INTEGRATIONS.md §5).

``GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs`` answers 302 to a short-lived URL on this
server (``/github/_logs/<token>``, valid 60 s, no auth, like GitHub's signed blob links) that serves
the log as text/plain. Job logs are registered through ``POST /_fake/github/jobs``.

With ``FAKE_GITHUB_DEMO_LOGS=1`` (set by ``make run``) a job nobody registered still has a log: a
failing pytest run as GitHub Actions prints it, the same failing test for every job, so that a
webhook example payload posted to the portal is classified with its evidence and a second one
joins the same escalation.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from .protocol import Platform, Request, Response, json_response, retry_after_header, text_response

LOG_URL_TTL_SECONDS = 60.0
DEMO_LOG = """\
2026-11-30T10:00:00.0000000Z ##[group]Run actions/checkout@v4
2026-11-30T10:00:01.0000000Z Syncing repository: {owner}/{repo}
2026-11-30T10:00:02.0000000Z ##[endgroup]
2026-11-30T10:00:03.0000000Z ##[group]Run python -m pytest -q
2026-11-30T10:00:03.1000000Z python -m pytest -q
2026-11-30T10:00:03.2000000Z ##[endgroup]
2026-11-30T10:00:09.0000000Z ....................F.......                                [100%]
2026-11-30T10:00:09.1000000Z =================================== FAILURES ===================================
2026-11-30T10:00:09.2000000Z _____________________________ test_checkout_total ______________________________
2026-11-30T10:00:09.3000000Z
2026-11-30T10:00:09.4000000Z     def test_checkout_total():
2026-11-30T10:00:09.5000000Z >       assert checkout_total([12, 30]) == 42.5
2026-11-30T10:00:09.6000000Z E       assert 42 == 42.5
2026-11-30T10:00:09.7000000Z
2026-11-30T10:00:09.8000000Z tests/test_checkout.py:14: AssertionError
2026-11-30T10:00:09.9000000Z =========================== short test summary info ============================
2026-11-30T10:00:10.0000000Z FAILED tests/test_checkout.py::test_checkout_total - assert 42 == 42.5
2026-11-30T10:00:10.1000000Z 1 failed, 27 passed in 6.12s (job {job_id})
2026-11-30T10:00:10.2000000Z ##[error]Process completed with exit code 1.
"""
DOCS = "https://docs.github.com/rest"


def _message(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return json_response(
        status, {"message": message, "documentation_url": DOCS, "status": str(status)}, headers
    )


class GitHubFake(Platform):
    name = "github"

    def __init__(self, token: str | None, *, demo_logs: bool = False) -> None:
        super().__init__()
        self.token = token
        self.demo_logs = demo_logs
        add = self.router.add
        add("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs", self.job_logs)
        add(
            "POST",
            "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs",
            self.rerun_failed,
        )
        add("GET", "/_logs/{token}", self.serve_log, auth=False)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.jobs: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.log_links: dict[str, tuple[tuple[str, str, str], float]] = {}
        self.reruns: list[dict[str, Any]] = []

    def register_job(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ValueError("a job is a JSON object")
        for name in ("owner", "repo", "log"):
            if not isinstance(data.get(name), str) or (name != "log" and not data[name]):
                raise ValueError(f"{name} must be a string")
        job_id = data.get("job_id")
        if (
            isinstance(job_id, bool)
            or not isinstance(job_id, int | str)
            or not str(job_id).isdigit()
        ):
            raise ValueError("job_id must be a number")
        completed = data.get("completed", True)
        if not isinstance(completed, bool):
            raise ValueError("completed must be true or false")
        key = (data["owner"].lower(), data["repo"].lower(), str(job_id))
        job = {
            "owner": data["owner"],
            "repo": data["repo"],
            "job_id": int(job_id),
            "log": data["log"],
            "completed": completed,
        }
        self.jobs[key] = job
        return {key: value for key, value in job.items() if key != "log"}

    def snapshot(self) -> dict[str, Any]:
        return {
            "jobs": [
                {
                    **{k: v for k, v in job.items() if k != "log"},
                    "log_bytes": len(job["log"].encode()),
                }
                for job in self.jobs.values()
            ],
            "reruns": list(self.reruns),
            "log_links_issued": len(self.log_links),
            **self.counters(),
        }

    def export_state(self) -> dict[str, Any]:
        # Signed log links live 60 s: a restart outlives them, as GitHub's would expire.
        return {"jobs": list(self.jobs.values()), "reruns": self.reruns}

    def import_state(self, data: dict[str, Any]) -> None:
        for job in data.get("jobs", []):
            self.jobs[(job["owner"].lower(), job["repo"].lower(), str(job["job_id"]))] = job
        self.reruns = list(data.get("reruns", []))

    def authenticate(self, request: Request) -> Response | None:
        value = (request.header("Authorization") or "").strip()
        scheme, _, token = value.partition(" ")
        token = token.strip()
        if (
            scheme.lower() in ("bearer", "token")
            and token
            and (self.token is None or token == self.token)
        ):
            return None
        return _message(401, "Bad credentials")

    def error(self, status: int, message: str) -> Response:
        return _message(status, "Not Found" if status == 404 else message)

    def fault(self, status: int, retry_after: float | None) -> Response:
        headers = retry_after_header(retry_after)
        if status in (403, 429):
            wait = 60 if retry_after is None else retry_after
            headers = [
                *retry_after_header(wait),
                ("x-ratelimit-limit", "5000"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-used", "5000"),
                ("x-ratelimit-reset", str(int(time.time() + wait))),
                ("x-ratelimit-resource", "core"),
            ]
            return _message(status, "API rate limit exceeded for installation.", headers)
        return _message(status, "Server Error" if status >= 500 else f"HTTP {status}", headers)

    def job_logs(self, request: Request) -> Response:
        params = request.params
        key = (params["owner"].lower(), params["repo"].lower(), params["job_id"])
        job = self.jobs.get(key)
        if job is None and self.demo_logs and params["job_id"].isdigit():
            job = self.jobs[key] = {
                "owner": params["owner"],
                "repo": params["repo"],
                "job_id": int(params["job_id"]),
                "log": DEMO_LOG.format(**params),
                "completed": True,
            }
        if job is None or not job["completed"]:
            return _message(404, "Not Found")
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        # Forget expired links so a long benchmark does not grow the table without bound.
        self.log_links = {link: value for link, value in self.log_links.items() if value[1] > now}
        self.log_links[token] = (key, now + LOG_URL_TTL_SECONDS)
        location = f"{request.origin}/github/_logs/{token}"
        return Response(302, b"", None, [("Location", location)])

    def serve_log(self, request: Request) -> Response:
        link = self.log_links.get(request.params["token"])
        if link is None or link[1] <= time.monotonic():
            return text_response(
                403, "AuthenticationFailed: the signed log URL is unknown or has expired"
            )
        job = self.jobs.get(link[0])
        if job is None:
            return text_response(404, "BlobNotFound")
        return text_response(200, job["log"])

    def rerun_failed(self, request: Request) -> Response:
        run_id = request.params["run_id"]
        if not run_id.isdigit():
            return _message(404, "Not Found")
        self.reruns.append(
            {
                "owner": request.params["owner"],
                "repo": request.params["repo"],
                "run_id": int(run_id),
                "at": time.time(),
            }
        )
        return json_response(201, {})
