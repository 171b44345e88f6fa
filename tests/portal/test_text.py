"""portal.text: the one definition of the text the portal accepts from outside."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from portal.text import (
    MAX_JSON_DEPTH,
    TooDeep,
    check_text,
    query_string_problems,
    replace_invalid_text,
    request_text_problems,
    text_problems,
)


@pytest.mark.parametrize(
    "value",
    ["", "plain", "tab\tnew line\ncarriage\r", "é ü 日本 😀", "\u202e bidi is shown, not refused"],
)
def test_ordinary_text_has_no_problem(value):
    assert check_text(value) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a\ud800b", "contains a lone surrogate (U+D800) at position 1"),
        ("\udc00", "contains a lone surrogate (U+DC00) at position 0"),
        ("x\x00", "contains a NUL character (U+0000) at position 1"),
        ("\x1b[2J", "contains a control character (U+001B) at position 0"),
        ("form\x0cfeed", "contains a control character (U+000C) at position 4"),
    ],
)
def test_invalid_text_is_named_with_its_code_point_and_position(value, problem):
    assert check_text(value) == problem


def test_problems_carry_the_path_of_each_string_keys_included():
    data = {"variables": {"job_name": "a\ud800", "ok": "fine", "k\x00": "v"}, "tags": ["\x01"]}

    problems = dict(text_problems(data))

    assert set(problems) == {"variables.job_name", "variables", "tags.0"}
    assert problems["variables"].startswith("the key 'k\\x00' contains a NUL")


def test_data_nested_deeper_than_the_limit_is_refused_without_recursion():
    data: list = []
    for _ in range(50_000):
        data = [data]

    with pytest.raises(TooDeep, match=f"deeper than {MAX_JSON_DEPTH} levels"):
        list(text_problems(data))


def test_query_strings_are_checked_raw_before_django_repairs_them():
    problems = dict(query_string_problems("a=%ED%A0%80&b=ok&c=%00&d=caf%C3%A9&e=x+y"))

    assert problems == {
        "a": "the value is not valid UTF-8 (byte 0)",
        "c": "the value contains a NUL character (U+0000) at position 0",
    }


def test_a_form_body_and_the_query_string_are_checked_together():
    request = RequestFactory().post(
        "/itsm/tickets/new/?page=%FF",
        data=b"job_name=a%ED%A0%80b&priority=2",
        content_type="application/x-www-form-urlencoded",
    )

    assert set(request_text_problems(request)) == {"page", "job_name"}
    assert set(request_text_problems(request, read_form=False)) == {"page"}


def test_stored_lone_surrogates_are_replaced_for_display():
    assert replace_invalid_text({"a\ud800": ["x\udfffy", 3]}) == {"a\ufffd": ["x\ufffdy", 3]}
