"""The API's one request parser: JSON, read within the size limit, every string checked.

Set as ``DEFAULT_PARSER_CLASSES``, so every endpoint of every app gets the same edge: a body over
``DATA_UPLOAD_MAX_MEMORY_SIZE`` answers 413 ``request_too_large``, malformed or too deeply
nested JSON 400 ``parse_error``, and invalid text anywhere in it (keys included; see
:mod:`portal.text`) 400 ``invalid`` naming each field by its path (``variables.job_name``).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from portal.errors import RequestTooLarge
from portal.text import MAX_JSON_DEPTH, TooDeep, text_problems

# Enough to show what is wrong without building an answer as large as the request.
MAX_REPORTED_PROBLEMS = 20


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        size = -1 if limit is None else limit + 1
        raw = b"" if stream is None else stream.read(size)
        if limit is not None and len(raw) > limit:
            # A chunked body has no Content-Length for Django to refuse it by.
            raise RequestTooLarge()
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_refuse_constant)
        except RecursionError as exc:
            raise ParseError(
                f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels"
            ) from exc
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from exc
        problems: dict[str, str] = {}
        try:
            for path, problem in text_problems(data):
                problems.setdefault(path or "non_field_errors", problem)
                if len(problems) >= MAX_REPORTED_PROBLEMS:
                    break
        except TooDeep as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        if problems:
            raise ValidationError(problems, code="invalid_text")
        return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
