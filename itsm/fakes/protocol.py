"""The small HTTP vocabulary every fake platform speaks: requests, responses, routes.

Kept free of sockets so that a platform's handlers are plain functions from a :class:`Request` to a
:class:`Response`; the server module does the wire work (keep-alive, dropped connections, latency).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any


class BadJson(ValueError):
    """The request body is not the JSON the endpoint needs."""


@dataclass
class Request:
    method: str
    path: str
    """The path under the platform prefix, e.g. ``/rest/api/3/issue`` for ``/jira/rest/api/3/issue``."""
    full_path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    origin: str
    """``http://host:port`` as the client addressed the server; used to build absolute links."""
    params: dict[str, str] = field(default_factory=dict)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    @property
    def content_type(self) -> str:
        return (self.header("Content-Type") or "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        if not self.body:
            raise BadJson("empty body")
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise BadJson(str(error)) from error

    def basic_credentials(self) -> tuple[str, str] | None:
        """``(user, secret)`` from an ``Authorization: Basic`` header, or None."""
        value = self.header("Authorization") or ""
        scheme, _, encoded = value.partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, secret = decoded.partition(":")
        if not sep or not user or not secret:
            return None
        return user, secret


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


class HttpError(Exception):
    """Raised by a handler to answer with an error response right away."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(status, body, "application/json;charset=UTF-8", list(headers or []))


def text_response(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, text.encode("utf-8"), "text/plain; charset=utf-8", list(headers or []))


def empty_response(status: int, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, b"", None, list(headers or []))


Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool = True


class Router:
    """Path templates (``/rest/api/3/issue/{key}``) to handlers; first match wins."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, *, auth: bool = True) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        self.routes.append(Route(method, template, re.compile(f"^{regex}$"), handler, auth))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """The route for ``method path``; else None and the methods the path would allow."""
        allowed: list[str] = []
        for route in self.routes:
            found = route.pattern.match(path)
            if not found:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, found.groupdict(), []
            allowed.append(route.method)
        return None, {}, allowed


class Platform:
    """What the server needs from each fake platform."""

    name = ""

    def __init__(self) -> None:
        self.router = Router()
        self.requests: dict[str, int] = {}
        self.faults_injected = 0

    def reset(self) -> None:
        self.requests = {}
        self.faults_injected = 0

    def authenticate(self, request: Request) -> Response | None:
        """None when the request may proceed, else the platform's refusal."""
        raise NotImplementedError

    def error(self, status: int, message: str) -> Response:
        """A generic error in the platform's own shape (unknown route, bad JSON, crash)."""
        raise NotImplementedError

    def fault(self, status: int, retry_after: float | None) -> Response:
        """An injected failure, with the headers the real service sends with that status."""
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    def export_state(self) -> dict[str, Any]:
        """What survives a restart, as JSON values: the objects and the counters that number them.

        Not the request counts, fault rules or config: those belong to one run (a test's setup).
        """
        return {}

    def import_state(self, data: dict[str, Any]) -> None:
        """Restore what :meth:`export_state` wrote, onto a freshly reset platform."""

    def counters(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "faults_injected": self.faults_injected,
        }


def retry_after_header(retry_after: float | None) -> list[tuple[str, str]]:
    """``Retry-After`` in whole seconds (HTTP allows no fractions), rounded up."""
    if retry_after is None:
        return []
    seconds = int(retry_after) if float(retry_after).is_integer() else int(retry_after) + 1
    return [("Retry-After", str(seconds))]
