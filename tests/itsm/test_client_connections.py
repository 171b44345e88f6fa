"""Clients from ``client_for`` share one connection pool per platform and process (issue #8).

A delivery used to build its own httpx client: a new SSL context and a new connection for every
message, most of a delivery's time. These tests watch the client's side of the TCP connection
(httpx's ``network_stream`` extension) against the fakes over real loopback HTTP.
"""

from __future__ import annotations

import os
import select
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from celery.signals import worker_process_shutdown

from itsm.clients import client_for, close_shared_clients
from itsm.clients.jira import idempotency_label

MYSELF = "/rest/api/3/myself"


@pytest.fixture(autouse=True)
def fresh_pools(itsm_endpoints):
    close_shared_clients()
    yield
    close_shared_clients()


def client_port(client) -> int:
    """The local port of the connection that carried one request of ``client``."""
    response = client.request("GET", MYSELF)
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def test_consecutive_clients_of_a_platform_reuse_one_connection():
    with client_for("jira") as first:
        port = client_port(first)
    with client_for("jira") as second:
        assert client_port(second) == port
        assert not second.http.is_closed


def test_each_platform_has_its_own_pool():
    with client_for("jira") as jira, client_for("servicenow") as servicenow:
        assert jira.http is not servicenow.http


def test_a_client_with_its_own_transport_closes_only_its_own_connections():
    shared = client_for("jira")
    with client_for("jira", transport=httpx.HTTPTransport()) as own:
        assert own.http is not shared.http
        client_port(own)
    assert own.http.is_closed
    assert not shared.http.is_closed
    client_port(shared)


def test_a_changed_endpoint_gets_a_new_pool_and_the_old_one_is_closed(settings, fakes):
    old = client_for("jira").http
    moved = fakes.base_url("jira").replace("127.0.0.1", "localhost")
    settings.ITSM_ENDPOINTS = {**settings.ITSM_ENDPOINTS, "JIRA_BASE_URL": moved}
    with client_for("jira") as client:
        assert client.http is not old
        assert str(client.http.base_url).startswith(moved)
        client_port(client)
    assert old.is_closed


def test_closing_the_shared_pools_lets_the_next_client_open_a_new_one():
    first = client_for("jira").http
    close_shared_clients()
    assert first.is_closed
    with client_for("jira") as client:
        assert client.http is not first
        client_port(client)


def test_a_worker_process_closes_its_pools_when_it_stops():
    pool = client_for("jira").http
    worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
    assert pool.is_closed


def test_a_forked_child_opens_its_own_connections_not_the_parents():
    parent_pool = client_for("jira").http
    parent_port = client_port(client_for("jira"))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer whether it got a pool and a connection of its own
        try:
            client = client_for("jira")
            own = client.http is not parent_pool and client_port(client) != parent_port
            os.write(write_end, b"own" if own else b"parent's")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 30)
        answer = os.read(read_end, 16) if ready else b"no answer"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    assert answer == b"own"
    assert not parent_pool.is_closed
    assert client_port(client_for("jira")) == parent_port


def test_parallel_deliveries_share_the_pool_and_each_ticket_is_created_once(fakes):
    keys = [f"pool-{i}" for i in range(24)]

    def deliver(key: str) -> str:
        with client_for("jira") as client:
            fields = {"project": "OPS", "summary": key, "description": "d", "issue_type": "Task"}
            return client.create(fields, idempotency_key=key).key

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(deliver, keys))
    assert len(set(created)) == len(keys)
    labels = [label for issue in fakes.state("jira")["issues"] for label in issue["labels"]]
    assert sorted(label for label in labels if label.startswith("portal-idem-pool-")) == sorted(
        idempotency_label(key) for key in keys
    )
