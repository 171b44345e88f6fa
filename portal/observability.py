"""Request ids and log hygiene: every log line carries the request id and no credentials."""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid

from portal.redaction import redact_text

access_logger = logging.getLogger("portal.access")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Accept a caller's id (a load balancer's or a CI system's) only if it is short and plain.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUEST_ID_HEADER = "X-Request-ID"


class RequestIdMiddleware:
    """Takes ``X-Request-ID`` from the request (or makes one), echoes it on the response, and
    writes one structured access-log line per request (the ASGI server's own is turned off)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            access_logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
        finally:
            request_id_var.reset(token)
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class RedactingFilter(logging.Filter):
    """Masks credentials in the rendered message and in the exception text of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = encodable(redact_text(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        # Formatters print exc_info afresh when it is set; leave them only the masked text.
        record.exc_info = None
        if record.exc_text:
            record.exc_text = encodable(redact_text(record.exc_text))
        return True


def encodable(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (lone surrogates) replaced: a log line must never
    fail to be written."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
