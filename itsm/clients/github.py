"""GitHub REST: a job's logs and re-running a run's failed jobs (INTEGRATIONS.md §5)."""

from __future__ import annotations

import httpx

from itsm.clients.base import HttpClient

MAX_LOG_BYTES = 5 * 1024 * 1024


class GitHubClient(HttpClient):
    platform = "github"
    default_headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }

    def extra_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.endpoint.secret}"} if self.endpoint.secret else {}

    def download_job_log(self, owner: str, repo: str, job_id: int | str) -> str:
        """The job's plain-text log (its tail when over 5 MB).

        GitHub answers with a redirect to a short-lived storage URL; that URL is fetched without
        our Authorization header, which must not travel to another host.
        """
        redirect = self.request(
            "GET", f"/repos/{owner}/{repo}/actions/jobs/{job_id}/logs", expect=(302,)
        )
        location = redirect.headers["Location"]
        target = httpx.URL(redirect.url).join(location)

        def fetch() -> str:
            # A bare client: the storage host must not receive our token.
            with httpx.Client(timeout=self.config.timeout.for_httpx()) as storage:
                response = self.send("GET", str(target), expect=(200,), client=storage)
            return response.content[-MAX_LOG_BYTES:].decode("utf-8", errors="replace")

        return self.call(fetch)

    def rerun_failed_jobs(self, owner: str, repo: str, run_id: int | str) -> None:
        # Not repeated after an ambiguous failure: a second request would start a second re-run.
        self.call(
            lambda: self.send(
                "POST",
                f"/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs",
                expect=(201,),
            ),
            retry_ambiguous=False,
        )
