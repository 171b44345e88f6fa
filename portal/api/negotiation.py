"""The first step of every API request: refuse an oversized body and invalid text in the path and
the query string, before authentication, filters, pagination or a database see them.

DRF runs content negotiation first in every view of every app, and it is the first step that
reads the query string (``?format=``), so the checks sit here: one place, no view can forget
them. A declared body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` answers 413 ``request_too_large``
whatever its type (a multipart body sent to a JSON endpoint is never parsed, so Django's own
check would never run), except an upload to a view that takes files;
invalid text (see :mod:`portal.text`) answers 400 ``invalid`` naming the parameter. The body's
text is checked by the parser (:class:`portal.api.parsers.StrictJSONParser`).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation

from portal.errors import RequestTooLarge
from portal.text import request_text_problems


class EdgeContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and _declared_length(request) > limit and not _takes_uploads(request):
            raise RequestTooLarge()
        if problems := request_text_problems(request, read_form=False):
            raise ValidationError(problems, code="invalid_text")
        return super().select_renderer(request, renderers, format_suffix)


def _takes_uploads(request) -> bool:
    """A multipart request to a view that parses multipart: its files stream to temporary files
    and are the view's to limit; Django still refuses form fields over the limit while parsing
    (RequestDataTooBig, answered 413 by the exception handler)."""
    return (request.content_type or "").startswith("multipart/form-data") and any(
        (parser.media_type or "").startswith("multipart/") for parser in request.parsers
    )


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
