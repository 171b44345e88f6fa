"""The ``http-request`` action: an HTTP call to a host the settings allow, and nowhere else.

itsm's public face has no generic HTTP client (each client speaks one platform), so this module
calls httpx itself, in the worker only. What keeps a catalog item from becoming an SSRF tool:

- the URL's host (and port) must be on ``CATALOG_HTTP_ALLOWED_HOSTS`` (``host``, ``host:port`` or
  ``*.example.com``); only ``http`` and ``https``; no credentials in the URL;
- the name is resolved here, and every address it resolves to is checked *after* resolution:
  loopback, private, link-local, cloud metadata (169.254.169.254, fd00:ec2::254), multicast,
  reserved, site-local and unspecified addresses (also inside IPv4-mapped and 6to4 ones) are
  refused unless the address is itself listed (a literal IP in ``CATALOG_HTTP_ALLOWED_HOSTS``,
  or inside ``CATALOG_HTTP_ALLOWED_NETWORKS``);
- the connection goes to the address that was checked (the URL is rewritten to the IP, with the
  ``Host`` header and TLS server name of the original host), so a DNS answer that changes between
  the check and the connect (DNS rebinding) cannot move the call elsewhere;
- redirects are followed by hand, at most ``MAX_REDIRECTS``, each hop checked the same way: a
  redirect to a host not on the list is refused;
- the answer is read up to ``MAX_RESPONSE_BYTES``.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from django.conf import settings

MAX_REDIRECTS = 5
MAX_RESPONSE_BYTES = 1024 * 1024
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
# Cloud metadata services: refused like any non-public address, named for the message.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# Headers that carry the caller's credentials: not forwarded when a redirect changes origin.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


class HttpActionRefused(Exception):
    """The call is not allowed (host, address, scheme, redirect): nothing was sent."""


class HttpActionFailed(Exception):
    """The call was made and did not succeed (connection error, unexpected status)."""


@dataclass
class HttpResult:
    status_code: int
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    json: Any = None

    def as_output(self) -> dict[str, Any]:
        output: dict[str, Any] = {"status_code": self.status_code, "url": self.url}
        output["json" if self.json is not None else "text"] = (
            self.json if self.json is not None else self.text[:10_000]
        )
        return output


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (tests replace this function)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def _allowed_hosts() -> list[str]:
    return [entry.strip().lower() for entry in settings.CATALOG_HTTP_ALLOWED_HOSTS if entry]


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(entry.strip(), strict=False)
        for entry in settings.CATALOG_HTTP_ALLOWED_NETWORKS
        if entry.strip()
    ]


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def host_is_listed(host: str, port: int) -> bool:
    host = host.lower()
    for entry in _allowed_hosts():
        name, _, entry_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
        if entry_port and int(entry_port) != port:
            continue
        if fnmatch.fnmatchcase(host, name.strip("[]")) if "*" in name else host == name.strip("[]"):
            return True
    return False


def _has_port(entry: str) -> bool:
    if entry.startswith("["):  # [fd00::1]:8080
        return "]:" in entry
    return entry.count(":") == 1


def address_is_listed(address: IPAddress, port: int) -> bool:
    if any(address in network for network in _allowed_networks()):
        return True
    for entry in _allowed_hosts():
        name, _, entry_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
        if entry_port and int(entry_port) != port:
            continue
        if _literal_address(name) == address:
            return True
    return False


def address_problem(address: IPAddress) -> str | None:
    """Why an address is not public, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:
            return "a private address"
        # An IPv4 address carried in IPv6 (IPv4-mapped, 6to4) is judged as that IPv4 address.
        address = address.ipv4_mapped or address.sixtofour or address
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return "a reserved address"
    if not address.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to call it (``host``)."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress

    def connect_url(self) -> str:
        parts = urlsplit(self.url)
        shown = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return urlunsplit(
            (parts.scheme, f"{shown}:{self.port}", parts.path or "/", parts.query, "")
        )

    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def check_url(url: str) -> Target:
    """The URL's target when it may be called; HttpActionRefused with the reason otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise HttpActionRefused(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise HttpActionRefused(f"only http and https URLs are called, not {parts.scheme!r}")
    if parts.username or parts.password:
        raise HttpActionRefused("credentials in the URL are not allowed (use headers)")
    host = (parts.hostname or "").lower()
    if not host:
        raise HttpActionRefused("the URL has no host")
    if not host_is_listed(host, port):
        raise HttpActionRefused(
            f"host {host}:{port} is not on the allow-list (CATALOG_HTTP_ALLOWED_HOSTS)"
        )
    literal = _literal_address(host)
    try:
        addresses = [literal] if literal else resolve(host, port)
    except OSError as exc:
        raise HttpActionFailed(f"cannot resolve {host}: {exc}") from exc
    if not addresses:
        raise HttpActionFailed(f"{host} resolves to no address")
    for address in addresses:
        problem = address_problem(address)
        if problem and not address_is_listed(address, port):
            raise HttpActionRefused(
                f"{host} resolves to {address}, {problem}; refused unless listed "
                "(CATALOG_HTTP_ALLOWED_NETWORKS)"
            )
    # Every address passed; connect to the first, the one that was checked.
    return Target(url, parts.scheme, host, port, addresses[0])


def call(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    json_body: Any = None,
    timeout: float | None = None,
    expect: tuple[int, ...] = (),
) -> HttpResult:
    """One call (with its checked redirects); HttpActionRefused or HttpActionFailed otherwise."""
    method = method.upper()
    if method not in METHODS:
        raise HttpActionRefused(f"method {method!r} is not one of {', '.join(METHODS)}")
    timeout = timeout or settings.CATALOG_HTTP_TIMEOUT_SECONDS
    content = json.dumps(json_body).encode() if json_body is not None else (body or "").encode()
    request_headers = {str(k): str(v) for k, v in (headers or {}).items() if k.lower() != "host"}
    if json_body is not None:
        request_headers.setdefault("Content-Type", "application/json")
    current = url
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            target = check_url(current)
            extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
            try:
                with client.stream(
                    method,
                    target.connect_url(),
                    headers={**request_headers, "Host": target.host_header()},
                    content=content or None,
                    extensions=extensions,
                ) as response:
                    raw = _read_limited(response)
            except httpx.HTTPError as exc:
                raise HttpActionFailed(f"{method} {current}: {type(exc).__name__}: {exc}") from exc
            if response.is_redirect and "location" in response.headers:
                following = urljoin(current, response.headers["location"])
                if urlsplit(following)[:2] != urlsplit(current)[:2]:
                    # Another origin: the credentials were meant for this one (as browsers do).
                    request_headers = {
                        k: v for k, v in request_headers.items() if k.lower() not in SECRET_HEADERS
                    }
                current = following
                if response.status_code in (301, 302, 303) and method != "HEAD":
                    method, content = "GET", b""
                continue
            result = _result(response, raw, current)
            accepted = expect or tuple(range(200, 300))
            if result.status_code not in accepted:
                raise HttpActionFailed(
                    f"{method} {current} answered {result.status_code}: {result.text[:500]}"
                )
            return result
    raise HttpActionFailed(f"{method} {url}: more than {MAX_REDIRECTS} redirects")


def _read_limited(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise HttpActionFailed(f"the answer is larger than {MAX_RESPONSE_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _result(response: httpx.Response, raw: bytes, url: str) -> HttpResult:
    text = raw.decode(response.encoding or "utf-8", errors="replace")
    parsed = None
    if "json" in response.headers.get("content-type", ""):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    kept = {k: v for k, v in response.headers.items() if k.lower() in ("content-type", "location")}
    return HttpResult(response.status_code, url, kept, text, parsed)
