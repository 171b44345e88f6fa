"""``needs_redaction``: the one scan that lets an outgoing body skip the redacting copy. It may say
True for a clean body (``redact`` then decides) but never False for a body ``redact`` would change:
every pattern, a registered secret and a secret-named key are found wherever they sit in an ADF
document, and for any structure False means ``redact`` returns it unchanged."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import redaction
from portal.redaction import MASK, needs_redaction, redact, register_secrets

# One text per pattern of portal.redaction, in the order of the patterns (random characters).
EXAMPLES = [
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA3Tz2\n-----END RSA PRIVATE KEY-----",
    "key id AKIAIOSFODNN7EXAMPLE in the log",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "ghp_" + "wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx",
    "github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789",
    "xoxb-2244668800-1357924680135-ZyXwVuTsRqPoNmLkJiHgFeDc",
    "xapp-1-A0123456789-abcdefghij",
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "ATATT3xFfGF0T4nS2y9bY0p5m1Lq8K7jH6gF5dS4aZ3xC2vB1nM0=A1B2C3D4",
    "lin_api_" + "Qx9Lr2Tz7Wm4Kp8Vn3Bc6Hj1Fd5Gs0Ay2Ue4Io6",
    "AIza" + "SyD3mQ9xK2vL7pR4tW8zB1nC6fH0jG5aE3s",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fw",
    "Authorization: Basic dXNlcjpwYXNz",
    "curl -H 'x: bearer abc123def456ghi'",
    "postgres://admin:hunter22@db.internal:5432/app",
    "DB_PASSWORD=Tr0ub4dor&3x",
]


@pytest.fixture
def no_registered_secrets(monkeypatch):
    """An empty secret registry for the test (whatever earlier tests registered), restored after."""
    monkeypatch.setattr(redaction, "_registry", redaction._EMPTY_REGISTRY)


def adf_with(text: str) -> dict:
    """An issue body as the export sends it: the text deep in an ADF document."""
    return {
        "fields": {
            "project": {"key": "OPS"},
            "summary": "Configure the product fields",
            "labels": ["planning", "portal-idem-export-1"],
            "description": {
                "type": "doc",
                "version": 1,
                "content": [
                    {"type": "heading", "attrs": {"level": 2},
                     "content": [{"type": "text", "text": "Notes"}]},
                    {"type": "bulletList", "content": [{"type": "listItem", "content": [
                        {"type": "paragraph", "content": [
                            {"type": "text", "text": "see "},
                            {"type": "text", "text": text, "marks": [{"type": "strong"}]},
                        ]},
                    ]}]},
                ],
            },
        }
    }  # fmt: skip


def test_there_is_an_example_for_every_pattern():
    assert len(EXAMPLES) == len(redaction._PATTERNS)
    for (pattern, _), example in zip(redaction._PATTERNS, EXAMPLES, strict=True):
        assert pattern.search(example), pattern.pattern


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_credential_pattern_is_found_inside_an_adf_text_node(example):
    body = adf_with(example)

    assert needs_redaction(body)
    assert redact(body) != body


def test_a_registered_secret_inside_an_adf_text_node_is_found_and_masked(no_registered_secrets):
    secret = "Qz7-winter-Portal-2026"  # no shape any pattern knows
    body = adf_with(f"the staging password is {secret} (rotate it)")
    assert needs_redaction(body) is False  # not registered yet: nothing to find

    register_secrets(secret)

    assert needs_redaction(body)
    text = redact(body)["fields"]["description"]["content"][1]["content"][0]["content"][0]
    assert text["content"][1]["text"] == f"the staging password is {MASK} (rotate it)"


def test_a_secret_named_key_with_a_value_is_found_anywhere(no_registered_secrets):
    body = adf_with("plain")
    body["fields"]["description"]["content"][0]["attrs"]["api_token"] = "x"

    assert needs_redaction(body)
    assert needs_redaction({"password": ""}) is False  # empty: redact keeps it as it is


def test_a_clean_document_needs_no_redaction_and_redact_would_keep_it(no_registered_secrets):
    body = adf_with("Add the weight and dimensions fields; see https://example.com/spec/3")

    assert needs_redaction(body) is False
    assert redact(body) == body


# Fragments that come near the patterns (prefixes, key names, schemes) without being credentials,
# mixed with real credentials and arbitrary text: False must always mean "redact keeps it".
FRAGMENTS = [
    *EXAMPLES, "gh", "ghp_", "xox", "eyJ", "AKIA", "token", "Token ", "bearer ", "basic 1",
    "password", "=", ": ", "://", "@", "user:", "-----BEGIN ", "hooks.slack.com", "api-key=",
    "\x00", "\n", " ", "\u00e9", "\u017f", "\u212a",  # é, long s, Kelvin sign (case folding)
]  # fmt: skip
texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=6).map(
    "".join
)
keys = st.one_of(st.sampled_from(["type", "text", "password", "X-Api-Key", "attrs"]), texts)
values = st.recursive(
    st.one_of(texts, st.integers(), st.none(), st.booleans()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_no_redaction_needed_means_redact_changes_nothing(value):
    if not needs_redaction(value):
        assert redact(value) == value


@settings(max_examples=200, deadline=None)
@given(st.lists(texts, min_size=1, max_size=5), st.sampled_from(EXAMPLES), st.data())
def test_a_credential_among_other_strings_is_always_found(others, example, data):
    position = data.draw(st.integers(0, len(others)))
    strings = [*others[:position], example, *others[position:]]

    assert needs_redaction({"content": [{"type": "text", "text": s} for s in strings]})
