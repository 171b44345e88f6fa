"""An ASGI server for the CI pages' browser tests: uvicorn serving ``portal.asgi`` (HTTP and the
``/ws/ci/`` socket) in a thread of the test process, on the test database."""

from __future__ import annotations

import importlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AsgiServer:
    def __init__(self) -> None:
        import uvicorn

        from portal.asgi import application

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            application, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def asgi_server(seeded_matrix, settings) -> Iterator[AsgiServer]:
    from django.db import connections

    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    # The server's request threads close their connections after each request, so none is left
    # open on the test database when it is dropped (PostgreSQL refuses to drop it then).
    database = connections.settings["default"]
    previous = database.get("CONN_MAX_AGE", 0)
    database["CONN_MAX_AGE"] = 0
    server = AsgiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        database["CONN_MAX_AGE"] = previous


@pytest.fixture
def seeded_matrix(transactional_db) -> None:
    """The seed's teams, routing matrix and classification rules, as the data migrations write
    them. A transactional test starts from tables that an earlier one may have flushed."""
    from django.apps import apps

    importlib.import_module("escalation.migrations.0002_seed_matrix").seed(apps, None)
    importlib.import_module("escalation.migrations.0003_real_world_rules").add_rules(apps, None)
