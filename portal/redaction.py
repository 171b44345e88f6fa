"""Masks credentials in anything that leaves the portal: outbound payloads, logs, error texts.

One list of patterns, applied to strings and, recursively, to JSON-like structures. Each pattern
keeps enough context (a key name, a token prefix) for a reader to see *what* was removed.

Patterns only know credentials by their shape; a password such as ``Winter2026!`` has none. So the
configuration also registers the literal values it reads (:func:`register_secrets`), and
:func:`redact_text` masks those wherever they appear, whatever surrounds them.
"""

from __future__ import annotations

import base64
import functools
import re
import threading
from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"


def _mask_value(match: re.Match[str]) -> str:
    """Keeps the key (group 1) and the quotes around the value (group 2), masks the value."""
    value = match.group(2)
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match.group(1)}{quote}{MASK}{quote}"


# (pattern, replacement). Replacements keep group 1 (the prefix or key) where the pattern has one.
_PATTERNS: list[tuple[re.Pattern[str], Any]] = [
    # PEM private keys, whole block.
    (
        re.compile(
            r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----.*?-----END (?:[A-Z]+ )*PRIVATE KEY-----",
            re.S,
        ),
        MASK,
    ),
    # AWS access key ids and secret keys given as pairs.
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"), MASK),
    (
        re.compile(r"(?i)(aws_secret_access_key[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{40}"),
        r"\1" + MASK,
    ),
    # GitHub tokens: classic (ghp_, gho_, ghu_, ghs_, ghr_) and fine-grained (github_pat_).
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"), MASK),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b"), MASK),
    # Slack tokens and incoming-webhook URLs.
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), MASK),
    (re.compile(r"\bxapp-\d-[A-Za-z0-9-]{10,}"), MASK),
    (
        re.compile(r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]+"),
        r"\1" + MASK,
    ),
    # Atlassian API tokens (ATATT3x...), Linear API keys, Google API keys.
    (re.compile(r"\bATATT[A-Za-z0-9_\-=]{20,}"), MASK),
    (re.compile(r"\blin_(?:api|oauth)_[A-Za-z0-9]{20,}\b"), MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), MASK),
    # JSON Web Tokens.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), MASK),
    # Authorization headers: Basic / Bearer / Token schemes; after the header name, always.
    (
        re.compile(
            r"(?i)\b(authorization[\"']?\s*[=:]\s*[\"']?(?:basic|bearer|token)\s+)"
            r"[A-Za-z0-9._~+/=-]+"
        ),
        r"\1" + MASK,
    ),
    # The same schemes elsewhere (curl lines, error texts) only before something with a digit,
    # so that prose such as "token expiration" or "basic authentication" stays readable.
    (
        re.compile(
            r"(?i)\b((?:basic|bearer|token)\s+)(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{8,}"
        ),
        r"\1" + MASK,
    ),
    # Credentials inside URLs: scheme://user:password@host (the user may be empty: redis://:pw@).
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(@)"), r"\1" + MASK + r"\2"),
    # key=value / key: value pairs whose key names a secret, also as the last word of a compound
    # name (DB_PASSWORD, JIRA_API_TOKEN, x-api-key). A quoted value is masked up to its quote; an
    # unquoted one up to a space, or to a & , ; that ends it (before a space or the next key=).
    (
        re.compile(
            r"(?i)(?<![\w-])((?:[A-Za-z0-9]+[_-])*(?:password|passwd|pwd|secret|token|"
            r"secret[_-]?key|api[_-]?key|private[_-]?key)[\"']?\s*[=:]\s*)"
            r"(\"[^\"\n]+\"|'[^'\n]+'|(?:[^\s\"'&,;]|[&,;](?!\s|[A-Za-z_][\w.-]*=))+)"
        ),
        _mask_value,
    ),
]

# For case-sensitive patterns: literals of which every match contains at least one (a match
# starts with one of them), so a text without any of them needs no regex scan. A pattern not
# listed here (every case-insensitive one) is always scanned.
_NEEDLES: dict[str, tuple[str, ...]] = {
    _PATTERNS[0][0].pattern: ("-----BEGIN ",),
    _PATTERNS[1][0].pattern: ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA"),
    _PATTERNS[3][0].pattern: ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    _PATTERNS[4][0].pattern: ("github_pat_",),
    _PATTERNS[5][0].pattern: ("xox",),
    _PATTERNS[6][0].pattern: ("xapp-",),
    _PATTERNS[7][0].pattern: ("https://hooks.slack.com/",),
    _PATTERNS[8][0].pattern: ("ATATT",),
    _PATTERNS[9][0].pattern: ("lin_api_", "lin_oauth_"),
    _PATTERNS[10][0].pattern: ("AIza",),
    _PATTERNS[11][0].pattern: ("eyJ",),
    _PATTERNS[14][0].pattern: ("://",),
}

_SECRET_KEY_NAMES = re.compile(
    r"(?i)^(?:.*[_-])?(?:password|passwd|secret|token|api[_-]?key|authorization|cookie|"
    r"secret[_-]?(?:access[_-]?)?key|"
    r"private[_-]?key|credentials?)$"
)


# --- literal secrets ----------------------------------------------------------------------------

# Shorter values would mask ordinary words and numbers in ticket texts.
MIN_SECRET_LENGTH = 6


class _SecretRegistry(NamedTuple):
    """One immutable snapshot: readers take it with a single attribute read, without the lock."""

    values: frozenset[str]  # what was registered (and derived): decides whether to rebuild
    forms: tuple[str, ...]  # every literal to mask, longest first
    pattern: re.Pattern[str] | None  # one alternation of ``forms``


_EMPTY_REGISTRY = _SecretRegistry(frozenset(), (), None)
_registry = _EMPTY_REGISTRY
_registry_lock = threading.Lock()


def _literal_forms(value: str, username: str | None) -> Iterable[str]:
    """The value as written, URL-quoted (a password in a query string or a URL's userinfo), and
    the base64 ``user:value`` of an ``Authorization: Basic`` header when the user is known."""
    yield value
    yield quote(value, safe="")
    yield quote_plus(value, safe="")
    if username:
        yield base64.b64encode(f"{username}:{value}".encode()).decode("ascii")


def register_secrets(*values: str | None, username: str | None = None) -> None:
    """Masks these literal values in everything :func:`redact_text` sees from now on.

    Empty values and values shorter than ``MIN_SECRET_LENGTH`` are ignored. With ``username``, the
    base64 ``username:value`` form (HTTP basic auth) is masked too. Safe to call from any thread
    and cheap to call again with values already registered (``endpoints()`` runs per client).
    """
    global _registry
    wanted = {
        form
        for value in values
        if value and len(value) >= MIN_SECRET_LENGTH
        for form in _literal_forms(value, username)
    }
    if wanted <= _registry.values:
        return
    with _registry_lock:
        known = _registry.values | wanted
        if known == _registry.values:  # another thread registered them meanwhile
            return
        forms = tuple(sorted(known, key=lambda form: (-len(form), form)))
        pattern = re.compile("|".join(re.escape(form) for form in forms))
        _registry = _SecretRegistry(frozenset(known), forms, pattern)


def _mask_literals(text: str) -> str:
    registry = _registry
    # The ``in`` scan is C-speed and, for the handful of secrets a deployment has, cheaper than
    # running the alternation over every payload string that contains none of them.
    if registry.pattern is not None and any(form in text for form in registry.forms):
        return registry.pattern.sub(MASK, text)
    return text


def redact_text(text: str) -> str:
    """``text`` with every registered secret and every credential the patterns know replaced by
    ``[REDACTED]``. Literals first, so that a pattern never leaves part of a secret behind."""
    text = _mask_literals(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with credentials masked, in strings and under secret-named keys."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            key: (
                MASK
                if isinstance(key, str) and _SECRET_KEY_NAMES.match(key) and value_is_set(item)
                else redact(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(item) for item in value)
    return value


def value_is_set(item: Any) -> bool:
    return item not in (None, "", [], {})


# --- a cheap test before the copy ----------------------------------------------------------------
# Joins the strings of a structure for one scan. Not a word character, not whitespace, not ``-``,
# ``=``, a letter or a digit: at a string's start or end every assertion of the patterns (``\b``,
# ``(?<![\w-])``, the lookaheads) sees it exactly as it sees the string's own start or end, so a
# pattern matching inside one string also matches in the joined text. The converse need not hold
# (a match across two strings only sends the value through :func:`redact`, which decides).
_JOIN = "\x00"


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    return bool(_SECRET_KEY_NAMES.match(key))


def needs_redaction(value: Any) -> bool:
    """Whether :func:`redact` could change ``value``; False only when it would return an equal
    copy: no secret-named key holds a value, and no registered secret or credential pattern
    occurs in any of its strings. One scan over all strings instead of every pattern per string
    (an ADF document is hundreds of small strings): senders redact only when this says so."""
    texts: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _secret_key(key) and value_is_set(child):
                    return True
                stack.append(child)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    if not texts:
        return False
    text = _JOIN.join(texts)
    registry = _registry
    if registry.pattern is not None and any(form in text for form in registry.forms):
        return True
    for pattern, _ in _PATTERNS:
        needles = _NEEDLES.get(pattern.pattern)
        if needles is not None and not any(needle in text for needle in needles):
            continue  # it cannot match: none of the literals every match starts with is there
        if pattern.search(text):
            return True
    return False
