"""The edge of every request that is not the API's own business (DRF checks its requests in its
content negotiation): text that cannot be valid is refused before a view sees it, and an API path
never answers an HTML stack page.

- Pages: a path, query string or URL-encoded form carrying invalid UTF-8, a lone surrogate, NUL or
  a control character answers 400, naming the field (``portal.text``), instead of a view working
  on text Django has already repaired with U+FFFD.
- ``/api/``: a 500 that a middleware raised (before DRF's handler could answer) is replaced by the
  JSON envelope, even under DEBUG, so a client never parses Django's debug page.
"""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponseBadRequest
from django.template import loader

from portal.api.errors import api_server_error
from portal.text import request_text_problems

logger = logging.getLogger("portal.edge")

API_PREFIX = "/api/"


class EdgeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(API_PREFIX):
            try:
                problems = request_text_problems(request)
            except RequestDataTooBig:
                problems = {}  # answered by Django's own limit where the body is read
            if problems:
                logger.info("portal.edge.refused: %s", sorted(problems))
                return HttpResponseBadRequest(
                    loader.render_to_string("400.html", {"problems": sorted(problems.items())})
                )
        response = self.get_response(request)
        if (
            request.path_info.startswith(API_PREFIX)
            and response.status_code == 500
            and response.get("Content-Type", "").startswith("text/html")
        ):
            return api_server_error(request)
        return response
