"""The ``http-request`` action's guard: allow-list, addresses checked after DNS resolution and
pinned, redirects checked hop by hop."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from escalation.services import http_actions
from escalation.services.http_actions import HttpActionFailed, HttpActionRefused


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.path.split("to=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(
            {
                "host": self.headers.get("Host"),
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
            }
        ).encode()
        self.send_response(500 if self.path == "/broken" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        return None


@pytest.fixture
def local_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def allow(settings):
    settings.CATALOG_HTTP_ALLOWED_HOSTS = []
    settings.CATALOG_HTTP_ALLOWED_NETWORKS = []
    settings.CATALOG_HTTP_TIMEOUT_SECONDS = 5

    def set_lists(hosts=(), networks=()):
        settings.CATALOG_HTTP_ALLOWED_HOSTS = list(hosts)
        settings.CATALOG_HTTP_ALLOWED_NETWORKS = list(networks)

    return set_lists


def resolving_to(monkeypatch, *addresses: str) -> list[str]:
    asked: list[str] = []

    def resolve(host, port):
        asked.append(host)
        return [ipaddress.ip_address(address) for address in addresses]

    monkeypatch.setattr(http_actions, "resolve", resolve)
    return asked


def test_a_host_not_on_the_list_is_refused(allow):
    allow(hosts=["api.example.com"])
    with pytest.raises(HttpActionRefused, match="not on the allow-list"):
        http_actions.check_url("https://other.example.com/x")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "a private address"),
        ("192.168.0.7", "a private address"),
        ("127.0.0.1", "a loopback address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("169.254.10.1", "a link-local address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        # 6to4 (2002::/16) carries an IPv4 address; a host with a 6to4 route sends there.
        ("2002:7f00:1::1", "a loopback address"),
        ("2002:a9fe:a9fe::", "a cloud metadata address"),
        ("2002:a00:1::1", "a private address"),
        ("fec0::1", "a private address"),  # site-local (deprecated, still routed by some)
    ],
)
def test_a_listed_name_resolving_to_a_non_public_address_is_refused(
    allow, monkeypatch, address, kind
):
    allow(hosts=["api.example.com"])
    resolving_to(monkeypatch, address)
    with pytest.raises(HttpActionRefused, match=kind):
        http_actions.check_url("https://api.example.com/hook")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://2130706433/", "loopback"),  # decimal
        ("http://0177.0.0.1/", "loopback"),  # octal
        ("http://017700000001/", "loopback"),
        ("http://0x7f000001/", "loopback"),  # hexadecimal
        ("http://0x7f.1/", "loopback"),
        ("http://127.1/", "loopback"),  # short form
        ("http://0.0.0.0/", "private"),
        ("http://0/", "private"),
        ("http://[::]/", "private"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped
        ("http://[0:0:0:0:0:ffff:7f00:1]/", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "cloud metadata"),
        ("http://[::127.0.0.1]/", "reserved"),  # IPv4-compatible
        ("http://[fe80::1%25eth0]/", "link-local"),  # with a zone
        ("http://127.0.0.1#@api.example.com/", "loopback"),  # the host is before the #
    ],
)
def test_every_spelling_of_a_non_public_address_is_refused_even_when_any_host_is_listed(
    allow, url, kind
):
    # "*" lists every name: what refuses these is the check of the address itself.
    allow(hosts=["*"])
    with pytest.raises(HttpActionRefused, match=kind):
        http_actions.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com@127.0.0.1/",  # userinfo: the host is 127.0.0.1
        "http://api.example.com\\@127.0.0.1/",  # a backslash some parsers read as a path
        "http://api.example.com./",  # a trailing dot is another name, not listed
        "http://api.example.com.evil.test/",
        "http://api.example.com:99999/",
    ],
)
def test_host_tricks_do_not_pass_the_allow_list(allow, monkeypatch, url):
    allow(hosts=["api.example.com"])
    asked = resolving_to(monkeypatch, "93.184.216.34")
    with pytest.raises(HttpActionRefused):
        http_actions.check_url(url)
    assert asked == []  # refused before any DNS lookup


def test_a_trailing_dot_name_is_checked_after_resolution_like_any_name(allow, monkeypatch):
    allow(hosts=["*"])
    resolving_to(monkeypatch, "127.0.0.1")
    with pytest.raises(HttpActionRefused, match="loopback"):
        http_actions.check_url("http://localhost./")


def test_a_name_with_one_private_address_among_public_ones_is_refused(allow, monkeypatch):
    allow(hosts=["api.example.com"])
    resolving_to(monkeypatch, "93.184.216.34", "127.0.0.1")
    with pytest.raises(HttpActionRefused, match=r"127\.0\.0\.1"):
        http_actions.check_url("https://api.example.com/")


def test_literal_metadata_and_private_addresses_are_refused_unless_listed(allow):
    allow(hosts=["169.254.169.254", "10.0.0.5:8080"])
    # Listed as a literal address: allowed (an operator asked for exactly this one).
    assert str(http_actions.check_url("http://10.0.0.5:8080/x").address) == "10.0.0.5"
    with pytest.raises(HttpActionRefused, match="not on the allow-list"):
        http_actions.check_url("http://10.0.0.6:8080/x")
    with pytest.raises(HttpActionRefused, match="not on the allow-list"):
        http_actions.check_url("http://10.0.0.5:9090/x")  # another port


def test_a_listed_network_allows_its_private_addresses(allow, monkeypatch):
    allow(hosts=["*.corp.example"], networks=["10.20.0.0/16"])
    resolving_to(monkeypatch, "10.20.3.4")
    target = http_actions.check_url("https://hr.corp.example/api")
    assert str(target.address) == "10.20.3.4" and target.host == "hr.corp.example"
    resolving_to(monkeypatch, "10.30.0.1")
    with pytest.raises(HttpActionRefused, match="private"):
        http_actions.check_url("https://hr.corp.example/api")


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "gopher://api.example.com/", "https://user:pw@api.example.com/"],
)
def test_other_schemes_and_credentials_in_urls_are_refused(allow, url):
    allow(hosts=["api.example.com"])
    with pytest.raises(HttpActionRefused):
        http_actions.check_url(url)


def test_the_call_connects_to_the_address_that_was_checked(allow, monkeypatch, local_server):
    """``service.test`` exists in no DNS: the call can only reach the server through the address
    the checked resolution gave, with the name kept in the Host header (DNS rebinding cannot move
    it: the name is resolved once, for the check, and never again for the connection)."""
    allow(hosts=[f"service.test:{local_server}"], networks=["127.0.0.0/8"])
    asked = resolving_to(monkeypatch, "127.0.0.1")
    result = http_actions.call("GET", f"http://service.test:{local_server}/hello")
    assert result.status_code == 200
    assert result.json["host"] == f"service.test:{local_server}"
    assert result.json["path"] == "/hello"
    assert asked == ["service.test"]


def test_a_name_resolving_to_loopback_is_refused_when_loopback_is_not_listed(
    allow, monkeypatch, local_server
):
    allow(hosts=[f"service.test:{local_server}"])
    resolving_to(monkeypatch, "127.0.0.1")
    with pytest.raises(HttpActionRefused, match="loopback"):
        http_actions.call("GET", f"http://service.test:{local_server}/hello")


def test_a_redirect_to_an_unlisted_host_is_refused(allow, local_server):
    allow(hosts=[f"127.0.0.1:{local_server}"])
    with pytest.raises(HttpActionRefused, match=r"169\.254\.169\.254"):
        http_actions.call(
            "GET", f"http://127.0.0.1:{local_server}/redirect?to=http://169.254.169.254/latest"
        )


def test_a_redirect_within_the_list_is_followed(allow, local_server):
    allow(hosts=[f"127.0.0.1:{local_server}"])
    result = http_actions.call("GET", f"http://127.0.0.1:{local_server}/redirect?to=/landed")
    assert result.status_code == 200 and result.json["path"] == "/landed"


@pytest.fixture
def other_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_credentials_follow_a_redirect_only_within_the_origin(allow, local_server, other_server):
    allow(hosts=[f"127.0.0.1:{local_server}", f"127.0.0.1:{other_server}"])
    secret = {"Authorization": "Bearer s3cret"}

    same = http_actions.call(
        "GET", f"http://127.0.0.1:{local_server}/redirect?to=/landed", headers=secret
    )
    elsewhere = http_actions.call(
        "GET",
        f"http://127.0.0.1:{local_server}/redirect?to=http://127.0.0.1:{other_server}/landed",
        headers=secret,
    )

    assert same.json["authorization"] == "Bearer s3cret"
    assert elsewhere.json["path"] == "/landed" and elsewhere.json["authorization"] is None


def test_an_unexpected_status_fails_the_call(allow, local_server):
    allow(hosts=[f"127.0.0.1:{local_server}"])
    with pytest.raises(HttpActionFailed, match="answered 500"):
        http_actions.call("GET", f"http://127.0.0.1:{local_server}/broken")
    result = http_actions.call("GET", f"http://127.0.0.1:{local_server}/broken", expect=(500,))
    assert result.status_code == 500
