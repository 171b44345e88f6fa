"""What text the portal accepts from outside, checked once at every edge (DESIGN.md).

A string that cannot be encoded as UTF-8 (a lone surrogate such as ``"\\ud800"``, which JSON's
``\\u`` escapes can carry), a NUL, or another C0 control character other than tab, line feed and
carriage return is refused where it enters: the API's JSON parser and query strings, and forms
through :func:`request_text_problem`. Once stored, such text breaks every page and answer that
shows it (UTF-8 encoding fails, PostgreSQL refuses NUL) and hides in logs and tickets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

# Lone surrogates (a valid pair never survives decoding as two code points), NUL and the C0
# controls other than \t \n \r.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")

_SURROGATES = re.compile("[\ud800-\udfff]")

# Deeper JSON than this is refused: no request of the portal needs it, and walking or rendering
# it recursively would hit Python's recursion limit (a 500 before this check existed).
MAX_JSON_DEPTH = 32


def check_text(value: str) -> str | None:
    """What is wrong with ``value`` as text, or None when it is acceptable.

    >>> check_text("a\\ud800b")
    'contains a lone surrogate (U+D800) at position 1'
    """
    match = _INVALID.search(value)
    if match is None:
        return None
    char = match.group()
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        kind = f"a lone surrogate ({code})"
    elif char == "\x00":
        kind = f"a NUL character ({code})"
    else:
        kind = f"a control character ({code})"
    return f"contains {kind} at position {match.start()}"


def shown(value: str) -> str:
    """``value`` quoted with its invalid characters escaped, safe to put in a message."""
    return repr(value) if _INVALID.search(value) else f"'{value}'"


class TooDeep(ValueError):
    """JSON-like data nested deeper than :data:`MAX_JSON_DEPTH`."""


def text_problems(data: Any, *, max_depth: int = MAX_JSON_DEPTH) -> Iterator[tuple[str, str]]:
    """``(path, problem)`` for every invalid string in JSON-like data, keys included.

    Paths join keys and list indexes with dots (``variables.job_name``, ``items.0``); a problem in
    a key is reported at the key's parent. Walks without recursion; :class:`TooDeep` past
    ``max_depth`` levels.
    """
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, str):
            if problem := check_text(value):
                yield path, problem
            continue
        if not isinstance(value, dict | list | tuple):
            continue
        if depth >= max_depth:
            raise TooDeep(f"JSON nested deeper than {max_depth} levels")
        if isinstance(value, dict):
            items = []
            for key, item in value.items():
                key_text = str(key)
                if problem := check_text(key_text):
                    yield path, f"the key {shown(key_text)} {problem}"
                    continue
                items.append((f"{path}.{key_text}" if path else key_text, item))
        else:
            items = [
                (f"{path}.{index}" if path else str(index), item)
                for index, item in enumerate(value)
            ]
        stack.extend((child, item, depth + 1) for child, item in reversed(items))


def query_string_problems(query_string: str) -> Iterator[tuple[str, str]]:
    """``(name, problem)`` for each parameter of a raw query string that is not valid text.

    Works on the raw string because Django decodes invalid UTF-8 into U+FFFD, which would hide
    the problem (and silently change what the caller sent). ``query_string`` is the WSGI
    ``QUERY_STRING`` (bytes as Latin-1 characters) or its ASGI equivalent.
    """
    for part in query_string.split("&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition("=")
        name_bytes = _unquote(raw_name)
        name = name_bytes.decode("utf-8", "replace")
        for what, raw in (("name", name_bytes), ("value", _unquote(raw_value))):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield name, f"the {what} is not valid UTF-8 (byte {exc.start})"
                break
            if problem := check_text(text):
                yield name, f"the {what} {problem}"
                break


def _unquote(raw: str) -> bytes:
    # WSGI hands the query string over as Latin-1 text of the raw bytes.
    return unquote_to_bytes(raw.replace("+", " ").encode("latin-1", "replace"))


def request_text_problems(request: Any, *, read_form: bool = True) -> dict[str, str]:
    """``{field: problem}`` for invalid text in a request's path, query string and (with
    ``read_form``) URL-encoded form body; empty when all is well.

    For pages and the API alike: a view answers 400 when this finds something, instead of working
    on text that Django has already repaired with U+FFFD (or storing a control character).
    """
    problems: dict[str, str] = {}
    if problem := check_text(request.path):
        problems["path"] = problem
    sources = [request.META.get("QUERY_STRING", "")]
    content_type = request.META.get("CONTENT_TYPE", "")
    if (
        read_form
        and request.method == "POST"
        and content_type.startswith("application/x-www-form-urlencoded")
    ):
        sources.append(request.body.decode("latin-1"))
    for source in sources:
        for name, problem in query_string_problems(source):
            problems.setdefault(name, problem)
    return problems


def replace_invalid_text(data: Any) -> Any:
    """A copy of JSON-like data with lone surrogates replaced by U+FFFD, for text already stored
    before the edge refused it: an answer must still encode as UTF-8."""
    if isinstance(data, str):
        return _SURROGATES.sub("\ufffd", data)
    if isinstance(data, dict):
        return {
            replace_invalid_text(key): replace_invalid_text(value) for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [replace_invalid_text(item) for item in data]
    return data
