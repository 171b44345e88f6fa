"""The page kit's pieces on their own: forgiving page numbers, the one timestamp rendering, and
the bidi filter. Their use on a real list page is tested with the itsm ticket list
(``tests/itsm/test_pages_list.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.template import Context, Template
from django.test import override_settings

from portal.pages import clamp_page
from portal.templatetags.portal import relative_phrase

NOW = datetime(2025, 10, 12, 10, 0, 0, tzinfo=UTC)


def render(source: str, **context) -> str:
    return Template("{% load portal %}" + source).render(Context(context))


# --- page numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, 1),
        ("", 1),
        ("abc", 1),
        ("1.5", 1),
        ("0", 1),
        ("-1", 1),
        ("2", 2),
        (" 3 ", 3),
        ("4", 4),
        ("999", 4),
        ("99999999999999999999999", 4),
    ],
)
def test_a_page_number_is_clamped_to_the_pages_that_exist(raw, expected):
    assert clamp_page(raw, num_pages=4) == expected


def test_an_empty_list_still_has_its_first_page():
    assert clamp_page("7", num_pages=0) == 1


# --- relative time --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "phrase"),
    [
        (timedelta(seconds=-3), "just now"),
        (timedelta(seconds=5), "just now"),
        (timedelta(seconds=-42), "42 s ago"),
        (timedelta(minutes=-3, seconds=-20), "3 min ago"),
        (timedelta(minutes=59), "in 59 min"),
        (timedelta(hours=2, minutes=10), "in 2 h"),
        (timedelta(hours=-47), "47 h ago"),
        (timedelta(days=-3, hours=-5), "3 d ago"),
        (timedelta(days=10), "in 10 d"),
    ],
)
def test_relative_phrase_uses_the_coarsest_unit_that_fits(offset, phrase):
    assert relative_phrase(NOW + offset, NOW) == phrase


# --- {% timestamp %} ------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_timestamp_shows_local_time_with_zone_relative_time_and_iso_on_hover():
    html = render("{% timestamp moment %}", moment=NOW - timedelta(minutes=3))

    assert html == (
        '<time class="timestamp" datetime="2025-10-12T09:57:00+00:00" '
        'title="2025-10-12T09:57:00+00:00">2025-10-12 09:57:00 UTC '
        '<span class="relative" data-relative>(3 min ago)</span></time>'
    )


@time_machine.travel(NOW, tick=False)
@override_settings(TIME_ZONE="Europe/Berlin")
def test_timestamp_shows_the_local_zone_and_keeps_the_exact_moment_in_the_iso_value():
    html = render("{% timestamp moment %}", moment=NOW + timedelta(hours=2))

    assert "2025-10-12 14:00:00 CEST" in html
    assert 'datetime="2025-10-12T14:00:00+02:00"' in html
    assert "(in 2 h)" in html


@time_machine.travel(NOW, tick=False)
def test_timestamp_reads_an_iso_string_as_stored_in_json():
    html = render("{% timestamp moment %}", moment="2025-10-12T08:00:00+00:00")

    assert 'datetime="2025-10-12T08:00:00+00:00"' in html
    assert "(2 h ago)" in html


def test_timestamp_of_nothing_is_a_muted_dash_or_the_text_given():
    assert render("{% timestamp moment %}", moment=None) == '<span class="muted">—</span>'
    assert render('{% timestamp moment "not yet" %}', moment="") == (
        '<span class="muted">not yet</span>'
    )


def test_timestamp_of_text_that_is_not_a_date_shows_it_escaped():
    assert render("{% timestamp moment %}", moment="<b>soon</b>") == "&lt;b&gt;soon&lt;/b&gt;"


# --- bidi controls --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "control",
    [
        "\u202a",
        "\u202b",
        "\u202c",
        "\u202d",
        "\u202e",
        "\u2066",
        "\u2067",
        "\u2068",
        "\u2069",
        "\u200e",
        "\u200f",
        "\u061c",
    ],
)
def test_bidi_safe_shows_every_bidi_control_as_its_code_point(control):
    html = render("{{ name|bidi_safe }}", name=f"evil{control}exe.txt")

    assert html == f"evil&lt;U+{ord(control):04X}&gt;exe.txt"
    assert control not in html


def test_bidi_safe_still_escapes_html():
    assert render("{{ name|bidi_safe }}", name="<script>\u202e") == ("&lt;script&gt;&lt;U+202E&gt;")


def test_bidi_safe_works_on_text_another_filter_already_escaped():
    html = render('{{ names|join:", "|bidi_safe }}', names=["a\u202eb", "<c>"])

    assert html == "a&lt;U+202E&gt;b, &lt;c&gt;"


def test_bidi_safe_leaves_other_text_alone():
    assert render("{{ name|bidi_safe }}", name="Grüße, 東京, שלום") == "Grüße, 東京, שלום"
