"""What every ITSM client shares: one httpx client, one retry policy, one redaction step.

``HttpClient.call`` runs an operation under the retry policy of ``config/itsm_config.json``
(tenacity does the looping): 429/500/502/503/504, connection errors and timeouts are retried with
exponential backoff capped by ``max_retry_delay_seconds``, ``Retry-After`` wins over the computed
delay, other 4xx fail at once as ``UpstreamRejected``. Every attempt and delay is appended to a
``CallLog`` (the ``TicketCreationResult`` metadata that the ticket record keeps) and each retry is
counted in ``itsm_ticket_retry_attempts_total``.

A *create* passes a ``reconcile`` function: after an ambiguous failure (the request may have been
processed: a timeout, a dropped connection, a 5xx) the next attempt first looks for the object by
its idempotency marker and returns it instead of creating a second one.

Clients from ``client_for`` send through one connection pool per platform and process
(:func:`shared_http`), so a delivery reuses the keep-alive connection of the one before it.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)
from tenacity.stop import stop_base

from itsm import metrics
from itsm.clients.interface import PlatformClient
from itsm.config import Endpoint, ItsmConfig, get_config
from itsm.errors import NotConfigured, RetryableError, UpstreamRejected, ValidationFailed
from itsm.types import Attempt, CallLog, RateLimitHint
from itsm.validation import ensure_valid
from portal.redaction import needs_redaction, redact, redact_text

logger = logging.getLogger("itsm.clients")

T = TypeVar("T")

# httpx errors after which the server may have processed the request: the outcome is unknown.
_AMBIGUOUS = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError)
# Errors where the request cannot have reached the application.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class _StopWhenServerWantsLonger(stop_base):
    """Stops when the last answer's ``Retry-After`` exceeds what we are willing to sleep now."""

    def __init__(self, max_delay: float) -> None:
        self.max_delay = max_delay

    def __call__(self, retry_state: RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return (
            isinstance(exc, TransientFailure)
            and exc.retry_after is not None
            and exc.retry_after > self.max_delay
        )


class TransientFailure(Exception):
    """One failed attempt that the policy may retry."""

    def __init__(
        self, message: str, *, status_code: int | None, retry_after: float | None, sent: bool
    ):
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after
        self.sent = sent


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from ``Retry-After`` (delta or HTTP date), else Jira's ``Beta-Retry-After``."""
    for name in ("Retry-After", "Beta-Retry-After"):
        value = headers.get(name)
        if not value:
            continue
        value = value.strip()
        try:
            return max(float(value), 0.0)
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        return max((when - datetime.now(UTC)).total_seconds(), 0.0)
    return None


def _header_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")  # Jira's +0000


def parse_platform_time(value: Any) -> datetime | None:
    """A platform's timestamp as an aware UTC datetime; None when absent or unreadable.

    Jira writes ``2026-03-02T09:05:00.000+0000``; ServiceNow's Table API writes
    ``2026-03-02 09:05:00``, in UTC.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = parse_datetime(_COMPACT_OFFSET.sub(r"\1:\2", value.strip()))
    except ValueError:  # well formed but not a date, e.g. month 13
        return None
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def upstream_error_fields(response: httpx.Response) -> tuple[str, list[str], dict[str, str]]:
    """The platform's error body parsed into (message, messages, {field: message}).

    Understands Jira's ErrorCollection, ServiceNow's ``{"error": {message, detail}}``, GraphQL
    ``errors[]`` and GitHub's ``{"message"}``; anything else is kept as (redacted, short) text.
    """
    messages: list[str] = []
    fields: dict[str, str] = {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("errorMessages"), list):
            messages += [str(m) for m in body["errorMessages"]]
        if isinstance(body.get("errors"), dict):
            fields.update({str(k): str(v) for k, v in body["errors"].items()})
        if isinstance(body.get("errors"), list):
            messages += [str(e.get("message", e)) for e in body["errors"] if isinstance(e, dict)]
        error = body.get("error")
        if isinstance(error, dict):
            messages += [str(error[k]) for k in ("message", "detail") if error.get(k)]
        if isinstance(body.get("message"), str):
            messages.append(body["message"])
    elif response.text:
        messages.append(response.text[:500])
    messages = [redact_text(m) for m in messages]
    fields = {k: redact_text(v) for k, v in fields.items()}
    parts = messages + [f"{k}: {v}" for k, v in fields.items()]
    summary = "; ".join(parts) or f"HTTP {response.status_code}"
    return summary, messages, fields


class HttpClient(PlatformClient):
    """Base of the five clients. Subclasses set ``platform`` and build requests."""

    platform = ""
    default_headers: dict[str, str] = {"Accept": "application/json"}

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        config: ItsmConfig | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        shared: bool = False,
    ) -> None:
        """``shared``: send through this process's one connection pool to the endpoint (see
        :func:`shared_http`) instead of a pool of the client's own; ``close`` then leaves it
        open. Ignored with a ``transport``, which is always the client's own."""
        if not endpoint.configured:
            raise NotConfigured(
                f"{self.platform} is not configured (set its base URL)", platform=self.platform
            )
        self.endpoint = endpoint
        self.config = config or get_config()
        self.sleep = sleep
        self.owns_http = not shared or transport is not None
        self.http = self.build_http(transport) if self.owns_http else shared_http(self)
        self.rate_limit: RateLimitHint | None = None

    def build_http(self, transport: httpx.BaseTransport | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.endpoint.base_url.rstrip("/"),
            auth=self.auth(),
            headers={**self.default_headers, **self.extra_headers()},
            timeout=self.config.timeout.for_httpx(),
            transport=transport,
            follow_redirects=False,
        )

    # --- subclass hooks ------------------------------------------------------------------
    def auth(self) -> httpx.Auth | None:
        return None

    def extra_headers(self) -> dict[str, str]:
        return {}

    # --- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Closes the client's own connections; a shared pool stays open for the next client."""
        if self.owns_http:
            self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- one HTTP exchange -----------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        files: Any = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        expect: Iterable[int] = (200, 201, 204),
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        """One attempt. JSON bodies pass through redaction (``needs_redaction`` first: a body
        with no credential in it is sent as it is); failures become typed errors.

        ``client`` replaces the platform's client for a URL on another host (no credentials).
        """
        if json is not None and needs_redaction(json):  # one scan; the copy only when needed
            json = redact(json)
        if not path and client is None:  # the endpoint itself: httpx would append "/" to it
            path = self.endpoint.base_url
        try:
            response = (client or self.http).request(
                method, path, json=json, params=params, files=files, headers=headers,
                content=content,
            )  # fmt: skip
        except _NOT_SENT as exc:
            raise TransientFailure(
                f"{type(exc).__name__}: could not reach {self.platform}",
                status_code=None, retry_after=None, sent=False,
            ) from exc  # fmt: skip
        except (*_AMBIGUOUS, httpx.TimeoutException, httpx.NetworkError) as exc:
            raise TransientFailure(
                f"{type(exc).__name__}: no answer from {self.platform}",
                status_code=None, retry_after=None, sent=True,
            ) from exc  # fmt: skip
        self.observe_rate_limit(response.headers)
        status = response.status_code
        if status in expect:
            return response
        if status in self.config.retry_policy.retryable_status_codes:
            summary, _, _ = upstream_error_fields(response)
            reason = response.headers.get("RateLimit-Reason") or response.headers.get(
                "X-Beta-RateLimit-Reason"
            )
            raise TransientFailure(
                f"HTTP {status}{f' ({reason})' if reason else ''}: {summary}",
                status_code=status,
                retry_after=parse_retry_after(response.headers),
                sent=status != 429,  # a 429 was refused before any work; a 5xx may have run
            )
        summary, messages, fields = upstream_error_fields(response)
        raise UpstreamRejected(
            f"{self.platform} answered {status}: {summary}",
            platform=self.platform,
            status_code=status,
            error_messages=messages,
            field_errors=fields,
        )

    def observe_rate_limit(self, headers: httpx.Headers) -> None:
        """Keeps the answer's rate-limit headers (``X-RateLimit-*``, ``X-Beta-RateLimit-*``) in
        ``rate_limit`` for callers that pace themselves (:meth:`take_rate_limit`)."""
        near = headers.get("X-RateLimit-NearLimit") or headers.get("X-Beta-RateLimit-NearLimit")
        remaining = _header_int(headers.get("X-RateLimit-Remaining"))
        if near is None and remaining is None:
            return
        self.rate_limit = RateLimitHint(
            near_limit=str(near).strip().lower() == "true",
            remaining=remaining,
            limit=_header_int(headers.get("X-RateLimit-Limit")),
            reason=headers.get("RateLimit-Reason") or headers.get("X-Beta-RateLimit-Reason") or "",
        )

    def take_rate_limit(self) -> RateLimitHint | None:
        """The rate-limit state seen since the last call of this method (then forgotten)."""
        hint, self.rate_limit = self.rate_limit, None
        return hint

    # --- the retry policy ------------------------------------------------------------------
    def call(
        self,
        operation: Callable[[], T],
        *,
        log: CallLog | None = None,
        reconcile: Callable[[float], T | None] | None = None,
        reconcile_first: bool = False,
        retry_ambiguous: bool = True,
        count_retries: bool = False,
    ) -> T:
        """``operation`` under the retry policy; ``reconcile(deadline)`` after ambiguous failures.

        ``retry_ambiguous=False`` retries only failures that say nothing was done (a 429, a refused
        connection), for writes that can neither be reconciled nor safely repeated.
        ``count_retries``: count the retries in ``itsm_ticket_retry_attempts_total`` (ticket
        creation only, as the metric's name says; every call's attempts are in its CallLog).
        A server that asks to wait longer than ``max_retry_delay_seconds`` is not retried now:
        the error carries its ``retry_after`` and the outbox waits that long.

        ``reconcile`` gets a ``time.monotonic()`` deadline until which it may keep looking (for
        eventually consistent searches) and returns the existing object or None.
        ``reconcile_first`` looks once before the first attempt (a redelivery of a create whose
        earlier outcome is unknown).
        """
        log = log if log is not None else CallLog()
        policy = self.config.retry_policy
        window = self.config.reconcile.window_seconds
        state = {"ambiguous_at": time.monotonic() - window if reconcile_first else None}

        def attempt() -> T:
            number = len(log.attempts) + 1
            stamp = datetime.now(UTC).isoformat()
            if reconcile is not None and state["ambiguous_at"] is not None:
                deadline = state["ambiguous_at"] + window
                try:
                    found = reconcile(deadline)
                except TransientFailure as exc:
                    log.attempts.append(
                        Attempt(number, stamp, "retryable", exc.status_code, redact_text(str(exc)))
                    )
                    raise
                if found is not None:
                    log.attempts.append(Attempt(number, stamp, "existing"))
                    log.reconciled = True
                    return found
            try:
                result = operation()
            except TransientFailure as exc:
                log.attempts.append(
                    Attempt(number, stamp, "retryable", exc.status_code, redact_text(str(exc)))
                )
                if exc.sent:
                    state["ambiguous_at"] = time.monotonic()
                raise
            except UpstreamRejected as exc:
                log.attempts.append(
                    Attempt(number, stamp, "rejected", exc.status_code, exc.message)
                )
                raise
            log.attempts.append(Attempt(number, stamp, "ok"))
            return result

        def wait(retry_state: RetryCallState) -> float:
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            retry_after = exc.retry_after if isinstance(exc, TransientFailure) else None
            return policy.delay_before(retry_state.attempt_number, retry_after)

        def before_sleep(retry_state: RetryCallState) -> None:
            delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
            if log.attempts:
                log.attempts[-1].delay_seconds = round(delay, 3)
            if count_retries:
                metrics.TICKET_RETRY_ATTEMPTS.labels(platform=self.platform).inc()
            logger.warning(
                "itsm.retry",
                extra={
                    "event": "itsm.retry",
                    "platform": self.platform,
                    "attempt": retry_state.attempt_number,
                    "delay_seconds": round(delay, 3),
                    "error": log.attempts[-1].error if log.attempts else "",
                },
            )

        retrying = Retrying(
            stop=stop_after_attempt(policy.max_retries + 1)
            | stop_after_delay(self.config.timeout.total_timeout_seconds)
            | _StopWhenServerWantsLonger(policy.max_retry_delay_seconds),
            wait=wait,
            retry=retry_if_exception(
                lambda exc: isinstance(exc, TransientFailure) and (retry_ambiguous or not exc.sent)
            ),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except TransientFailure as exc:
            raise RetryableError(
                f"{self.platform} unavailable after {len(log.attempts)} attempts: {exc}",
                platform=self.platform,
                status_code=exc.status_code,
                retry_after=exc.retry_after,
                sent=state["ambiguous_at"] is not None,
            ) from exc

    def create_once(
        self,
        fields: dict[str, Any],
        create: Callable[[CallLog], T],
        find_existing: Callable[[float, CallLog], T | None] | None,
        *,
        issue_type: str | None = None,
        log: CallLog | None = None,
        reconcile_first: bool = False,
    ) -> T:
        """One create, the way every client does it: validate ``fields`` (nothing is sent when
        they are invalid), then ``create`` under the retry policy with ``find_existing`` as the
        reconciliation, all counted in the seed's creation metrics by outcome.

        ``create`` and ``find_existing`` return an object with a ``reconciled`` flag.
        """
        log = log if log is not None else CallLog()
        started = time.perf_counter()
        outcome = metrics.OUTCOME_FAILED
        try:
            ensure_valid(self.platform, fields, issue_type)
            reconcile = None
            if find_existing is not None:

                def reconcile(deadline: float) -> T | None:
                    return find_existing(deadline, log)

            created = self.call(
                lambda: create(log),
                log=log,
                reconcile=reconcile,
                reconcile_first=reconcile_first,
                count_retries=True,
            )
            reconciled = getattr(created, "reconciled", False)
            outcome = metrics.OUTCOME_EXISTING if reconciled else metrics.OUTCOME_CREATED
            return created
        except ValidationFailed:
            outcome = metrics.OUTCOME_VALIDATION_ERROR
            raise
        except UpstreamRejected:
            outcome = metrics.OUTCOME_REJECTED
            raise
        finally:
            labels = {"platform": self.platform, "outcome": outcome}
            metrics.TICKET_CREATION_TOTAL.labels(**labels).inc()
            metrics.TICKET_CREATION_DURATION.labels(**labels).observe(time.perf_counter() - started)

    def request(self, method: str, path: str, *, log: CallLog | None = None, **kwargs: Any):
        """``send`` under the retry policy, for reads and naturally idempotent writes."""
        return self.call(lambda: self.send(method, path, **kwargs), log=log)


def poll_until(deadline: float, find: Callable[[], T | None], *, interval: float) -> T | None:
    """Calls ``find`` until it returns something or the monotonic ``deadline`` passes (≥ once)."""
    while True:
        found = find()
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(min(interval, max(deadline - time.monotonic(), 0.0)))


# --- one connection pool per platform and process ---------------------------------------------
# Building an httpx.Client loads the CA bundle into a new SSL context (tens of milliseconds) and
# every new client opens new connections (a TCP and TLS handshake per delivery): with a client per
# delivery that was most of a delivery's time. Each process therefore keeps one httpx.Client per
# platform, which is thread-safe and pools keep-alive connections (idle ones are dropped after
# httpx's 5 s, well before servers usually close them). It is rebuilt when the platform's
# endpoint or timeouts change (settings reloaded, tests), dropped in a forked child (sockets are
# never shared between processes) and closed at exit and at worker shutdown.
_shared_lock = threading.Lock()
_shared: dict[str, tuple[Hashable, httpx.Client]] = {}


def shared_http(client: HttpClient) -> httpx.Client:
    """This process's httpx.Client for ``client``'s platform, endpoint and timeouts."""
    identity = (type(client), client.endpoint, client.config.timeout)
    with _shared_lock:
        held = _shared.get(client.platform)
        if held is not None and held[0] == identity and not held[1].is_closed:
            return held[1]
        http = client.build_http()
        _shared[client.platform] = (identity, http)
    if held is not None:  # the endpoint changed: its old connections are of no further use
        held[1].close()
    return http


def close_shared_clients() -> None:
    """Closes every shared pool of this process (a later ``client_for`` opens a new one)."""
    with _shared_lock:
        held = list(_shared.values())
        _shared.clear()
    for _identity, http in held:
        http.close()


def _forget_shared_clients_in_child() -> None:
    # The parent's sockets stay the parent's: a child only drops its references (closing them
    # here could shut the parent's connections) and starts with a fresh lock.
    global _shared_lock
    _shared_lock = threading.Lock()
    _shared.clear()


os.register_at_fork(after_in_child=_forget_shared_clients_in_child)
atexit.register(close_shared_clients)
