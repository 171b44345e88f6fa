"""Credential masking on the formats the portal's integrations really issue and receive."""

from __future__ import annotations

import pytest

from portal.redaction import MASK, redact, redact_text

# Real shapes (random characters): prefixes and lengths as each vendor documents them.
GITHUB_CLASSIC = {
    "ghp": "ghp_" + "wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx",
    "gho": "gho_" + "16C7e42F292c6912E7710c838347Ae178B4a",
    "ghs": "ghs_" + "Yl3a8PqX0zR7mN2vB5cK9jH4gF6dS1wE3tUo",
}
GITHUB_FINE_GRAINED = (
    "github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01234"
)
SLACK_BOT = "xoxb-2244668800-1357924680135-ZyXwVuTsRqPoNmLkJiHgFeDc"
SLACK_USER = "xoxp-2244668800-1357924680135-2468013579246-8f3b2c1d0e9a8b7c6d5e4f3a2b1c0d9e"
SLACK_WEBHOOK_PATH = "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ATLASSIAN = "ATATT3xFfGF0T4nS2y9bY0p5m1Lq8K7jH6gF5dS4aZ3xC2vB1nM0=A1B2C3D4"
LINEAR = "lin_api_" + "Qx9Lr2Tz7Wm4Kp8Vn3Bc6Hj1Fd5Gs0Ay2Ue4Io6"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkNJIGJvdCIsImlhdCI6MTUxNjIzOTAyMn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM_BODY = "MIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi3m8v3hx7m4nQ9Kf0Zb1Xc2Vd3We4Rf5Tg6Yh7Uj8Ik9"
PASSWORD = "Tr0ub4dor&3x"


def assert_masked(text: str, secret: str) -> str:
    redacted = redact_text(text)
    assert secret not in redacted
    assert MASK in redacted
    return redacted


# --- tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", GITHUB_CLASSIC.values(), ids=GITHUB_CLASSIC.keys())
def test_github_classic_tokens_are_masked(token):
    redacted = assert_masked(f"git clone https://github.com/org/repo using {token}", token)

    assert redacted == f"git clone https://github.com/org/repo using {MASK}"


def test_github_fine_grained_token_is_masked():
    redacted = assert_masked(f"GH_TOKEN={GITHUB_FINE_GRAINED}", GITHUB_FINE_GRAINED)

    assert "github_pat_11ABC" not in redacted


@pytest.mark.parametrize("token", [SLACK_BOT, SLACK_USER], ids=["xoxb", "xoxp"])
def test_slack_tokens_are_masked(token):
    redacted = assert_masked(f"chat.postMessage with {token} failed", token)

    assert redacted == f"chat.postMessage with {MASK} failed"


def test_slack_webhook_url_keeps_its_host_and_loses_its_secret_path():
    url = f"https://hooks.slack.com/services/{SLACK_WEBHOOK_PATH}"

    redacted = assert_masked(f"posting to {url} timed out", SLACK_WEBHOOK_PATH)

    assert redacted == f"posting to https://hooks.slack.com/services/{MASK} timed out"


def test_aws_access_key_id_is_masked():
    redacted = assert_masked(f"aws_access_key_id = {AWS_KEY_ID}", AWS_KEY_ID)

    assert redacted == f"aws_access_key_id = {MASK}"


@pytest.mark.parametrize(
    "text",
    [
        f"aws_secret_access_key = {AWS_SECRET}",
        f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}",
        f'"aws_secret_access_key": "{AWS_SECRET}"',
    ],
    ids=["ini", "env", "json"],
)
def test_aws_secret_access_key_pair_is_masked(text):
    redacted = assert_masked(text, AWS_SECRET)

    assert "aws_secret_access_key" in redacted.lower()


def test_atlassian_api_token_is_masked():
    redacted = assert_masked(f"jira basic auth bot@example.com:{ATLASSIAN}", ATLASSIAN)

    assert "ATATT3x" not in redacted


def test_linear_api_key_is_masked():
    assert_masked(f"Authorization: {LINEAR}", LINEAR)


def test_jwt_is_masked():
    redacted = assert_masked(f"session cookie {JWT} expired", JWT)

    assert redacted == f"session cookie {MASK} expired"


@pytest.mark.parametrize("kind", ["RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", ""])
def test_pem_private_key_block_is_masked_whole(kind):
    block = f"-----BEGIN {kind}PRIVATE KEY-----\n{PEM_BODY}\n{PEM_BODY}\n-----END {kind}PRIVATE KEY-----"

    redacted = assert_masked(f"deploy key:\n{block}\nend of config", PEM_BODY)

    assert redacted == f"deploy key:\n{MASK}\nend of config"


def test_public_certificate_is_not_mistaken_for_a_private_key():
    certificate = f"-----BEGIN CERTIFICATE-----\n{PEM_BODY}\n-----END CERTIFICATE-----"

    assert redact_text(certificate) == certificate


# --- headers, URLs and key=value pairs --------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "credential"),
    [
        (
            "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0",
            "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        ),
        (
            "Authorization: Basic Ym90QGV4YW1wbGUuY29tOnMzY3IzdA==",
            "Ym90QGV4YW1wbGUuY29tOnMzY3IzdA==",
        ),
        ("authorization: token 0123456789abcdef0123", "0123456789abcdef0123"),
    ],
    ids=["bearer", "basic", "token"],
)
def test_authorization_header_keeps_its_scheme_and_loses_its_credential(header, credential):
    redacted = assert_masked(header, credential)

    assert redacted == header.replace(credential, MASK)


def test_authorization_header_credential_is_masked_even_when_it_looks_like_a_word():
    header = "Authorization: Basic dXNlcjpwYXNz"

    assert redact_text(header) == f"Authorization: Basic {MASK}"


def test_bearer_credential_outside_a_header_is_masked():
    command = "curl -H 'X-Trace: 1' --oauth2-bearer x -H Bearer 9f8e7d6c5b4a3928 https://api"

    assert redact_text(command) == command.replace("9f8e7d6c5b4a3928", MASK)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"https://deploy:{PASSWORD}@git.example.com/org/repo.git",
            f"https://deploy:{MASK}@git.example.com/org/repo.git",
        ),
        (
            f"postgres://portal:{PASSWORD}@db.internal:5432/portal",
            f"postgres://portal:{MASK}@db.internal:5432/portal",
        ),
        (
            f"redis://:{PASSWORD}@cache.internal:6379/0",
            f"redis://:{PASSWORD}@cache.internal:6379/0".replace(PASSWORD, MASK),
        ),
    ],
    ids=["https", "postgres", "redis-password-only"],
)
def test_password_in_a_url_is_masked_and_the_user_and_host_kept(url, expected):
    assert redact_text(f"cannot reach {url}") == f"cannot reach {expected}"


@pytest.mark.parametrize(
    "text",
    [
        f"password={PASSWORD}",
        f"PASSWORD = {PASSWORD}",
        f'{{"password": "{PASSWORD}"}}',
        f"db_password: {PASSWORD}",
        f"/login?user=ci&password={PASSWORD}&next=/",
        f"api_key={PASSWORD}",
        f"client_secret: {PASSWORD}",
        f"access_token={PASSWORD}",
        f"?token={PASSWORD}",
        f"x-api-key: {PASSWORD}",
    ],
    ids=[
        "plain",
        "upper-spaced",
        "json",
        "yaml-suffix",
        "query",
        "api-key",
        "client-secret",
        "access-token",
        "bare-token",
        "header",
    ],
)
def test_secret_named_key_value_pairs_are_masked(text):
    redacted = assert_masked(text, PASSWORD)

    assert redacted == text.replace(PASSWORD, MASK)


@pytest.mark.parametrize(
    "name", ["DB_PASSWORD", "JIRA_API_TOKEN", "GITHUB_TOKEN", "DJANGO_SECRET_KEY", "SMTP_PASSWD"]
)
def test_environment_variables_naming_a_secret_are_masked(name):
    assert redact_text(f"env: {name}={PASSWORD} HOME=/root") == f"env: {name}={MASK} HOME=/root"


def test_quoted_value_is_masked_up_to_its_closing_quote():
    text = '{"password": "correct horse battery staple", "user": "ci"}'

    assert redact_text(text) == f'{{"password": "{MASK}", "user": "ci"}}'


def test_unquoted_value_with_separators_inside_is_masked_whole():
    text = "login password=a;b,c&d&next=/home, user=ci"

    assert redact_text(text) == f"login password={MASK}&next=/home, user=ci"


def test_several_credentials_in_one_text_are_all_masked():
    text = (
        f"curl -H 'Authorization: Bearer {JWT}' "
        f"https://ci:{PASSWORD}@ci.example.com/hook?token=abc123 # {GITHUB_CLASSIC['ghp']}"
    )

    redacted = redact_text(text)

    for secret in (JWT, PASSWORD, GITHUB_CLASSIC["ghp"]):
        assert secret not in redacted


def test_redacting_twice_changes_nothing_more():
    text = f"password={PASSWORD} {SLACK_BOT} https://u:{PASSWORD}@h.example.com"

    once = redact_text(text)

    assert redact_text(once) == once


# --- ordinary text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "PROJ-123 blocked by OPS-9",
        "fix landed in 3f786850e387550fdab836ed7e6dc881de23001b",
        "see https://github.com/org/repo/pull/42#issuecomment-1",
        "https://ci.example.com:8443/job/build/123/console",
        "ssh://git@github.com/org/repo.git",
        "mailto:ops@example.com",
        "duration: 12s, exit code: 137",
        "the ghp_ prefix marks classic tokens",
        "token expired",
        "Token expiration handling is flaky",
        "use basic authentication for the proxy",
        "the bearer credentials were rotated",
        "token_count=5 max_tokens=4096",
        "secrets are stored in Vault",
    ],
    ids=[
        "jira-keys",
        "commit-sha",
        "github-url",
        "url-with-port",
        "ssh-user-no-password",
        "mailto",
        "key-value-not-secret",
        "prefix-alone",
        "short-word-after-token",
        "token-then-long-word",
        "basic-authentication",
        "bearer-prose",
        "token-counters",
        "secrets-prose",
    ],
)
def test_ordinary_text_is_left_untouched(text):
    assert redact_text(text) == text


# --- structures -------------------------------------------------------------------------------


def test_values_under_secret_named_keys_are_masked_whatever_they_look_like():
    payload = {
        "api_token": "abc",
        "password": "hunter2",
        "Authorization": "Bearer x",
        "X-Api-Key": "k",
        "client_secret": "s",
        "cookie": "sessionid=1",
        "summary": "Nightly build failed",
    }

    assert redact(payload) == {
        "api_token": MASK,
        "password": MASK,
        "Authorization": MASK,
        "X-Api-Key": MASK,
        "client_secret": MASK,
        "cookie": MASK,
        "summary": "Nightly build failed",
    }


@pytest.mark.parametrize("key", ["SECRET_KEY", "aws_secret_access_key", "JIRA_API_TOKEN"])
def test_settings_style_secret_keys_are_masked(key):
    assert redact({key: "value"}) == {key: MASK}


def test_secrets_are_masked_in_nested_dicts_and_lists():
    payload = {
        "ticket": {
            "fields": {"summary": "deploy failed", "description": f"log: password={PASSWORD}"},
            "links": [f"https://hooks.slack.com/services/{SLACK_WEBHOOK_PATH}", "PROJ-7"],
        },
        "integrations": [{"name": "github", "credentials": {"token": GITHUB_CLASSIC["ghp"]}}],
    }

    redacted = redact(payload)

    assert redacted["ticket"]["fields"] == {
        "summary": "deploy failed",
        "description": f"log: password={MASK}",
    }
    assert redacted["ticket"]["links"] == [f"https://hooks.slack.com/services/{MASK}", "PROJ-7"]
    assert redacted["integrations"] == [{"name": "github", "credentials": MASK}]


def test_empty_secret_fields_stay_empty_so_a_reader_sees_they_were_unset():
    payload = {"password": "", "api_token": None, "secret": {}}

    assert redact(payload) == payload


def test_redact_leaves_numbers_booleans_and_tuples_in_shape():
    payload = {"count": 3, "ok": True, "ratio": 0.5, "pair": ("PROJ-1", SLACK_BOT), "none": None}

    assert redact(payload) == {
        "count": 3,
        "ok": True,
        "ratio": 0.5,
        "pair": ("PROJ-1", MASK),
        "none": None,
    }


def test_redact_does_not_modify_its_argument():
    payload = {"password": "hunter2", "items": [f"token {GITHUB_CLASSIC['ghp']}"]}

    redact(payload)

    assert payload == {"password": "hunter2", "items": [f"token {GITHUB_CLASSIC['ghp']}"]}


def test_a_log_line_with_a_lone_surrogate_is_written_with_a_replacement(caplog):
    import logging

    from portal.observability import RedactingFilter

    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "bad %s", ("\ud800",), None)

    assert RedactingFilter().filter(record)
    assert record.getMessage() == "bad ?"
    record.getMessage().encode("utf-8")
