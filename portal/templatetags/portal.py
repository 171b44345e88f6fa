"""``{% load portal %}``: how every page shows a moment and user-supplied text.

- ``{% timestamp value %}`` is the one way a page shows a date and time: the local time with its
  zone, how long ago (or how far ahead) it is, and the ISO value on hover. ``static/portal/time.js``
  refreshes the relative part while the page stays open; without the script the page is still right
  as of the moment it was served.
- ``{{ text|bidi_safe }}`` makes Unicode bidirectional controls visible (``<U+202E>``), so a name
  like ``evil<U+202E>exe.txt`` cannot display as ``eviltxt.exe``. Apply it to every value a user
  (or an upstream platform) supplied.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time

from django import template
from django.utils import dateformat, timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI; LRM, RLM; the Arabic letter mark.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
LOCAL_FORMAT = "Y-m-d H:i:s T"


def visible_bidi(text: str) -> str:
    """``text`` with each bidi control replaced by its code point, written out: ``<U+202E>``."""
    return BIDI_CONTROLS.sub(lambda match: f"<U+{ord(match.group()):04X}>", text)


@register.filter(needs_autoescape=True)
def bidi_safe(value, autoescape: bool = True) -> str:
    """Escapes like ``{{ value }}`` would, and shows bidi controls instead of obeying them.

    Works on text already marked safe (the output of ``join``, say): the controls are not HTML
    syntax, so they are replaced after escaping, and the brackets of the marker are escaped too.
    """
    if value is None:
        return ""
    if not autoescape:
        return visible_bidi(str(value))
    escaped = conditional_escape(value)
    return mark_safe(  # noqa: S308 - escaped above; the markers are escaped entities
        BIDI_CONTROLS.sub(lambda match: f"&lt;U+{ord(match.group()):04X}&gt;", escaped)
    )


def relative_phrase(moment: datetime, now: datetime) -> str:
    """``3 min ago``, ``in 2 h``, ``just now``: the coarsest unit that says it in one number.

    ``static/portal/time.js`` applies the same rule in the browser.
    """
    seconds = (moment - now).total_seconds()
    distance = abs(seconds)
    if distance < 10:
        return "just now"
    if distance < 60:
        amount, unit = int(distance), "s"
    elif distance < 3600:
        amount, unit = int(distance // 60), "min"
    elif distance < 86400 * 2:
        amount, unit = int(distance // 3600), "h"
    else:
        amount, unit = int(distance // 86400), "d"
    return f"in {amount} {unit}" if seconds > 0 else f"{amount} {unit} ago"


def as_moment(value) -> datetime | None:
    """An aware datetime from a datetime, a date (its midnight) or an ISO 8601 string."""
    if isinstance(value, str):
        try:
            value = parse_datetime(value.strip())
        except ValueError:
            return None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    if not isinstance(value, datetime):
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


@register.simple_tag
def timestamp(value, empty: str = "—") -> SafeString:
    """``<time>`` with the local time and zone, the relative time, and the ISO value on hover.

    ``None`` or ``""`` renders ``empty`` (muted); text that is not a date is shown as it is.
    """
    if value is None or value == "":
        return format_html('<span class="muted">{}</span>', empty)
    moment = as_moment(value)
    if moment is None:
        return bidi_safe(str(value))
    local_moment = timezone.localtime(moment)
    iso = local_moment.isoformat(timespec="seconds")
    local = dateformat.format(local_moment, LOCAL_FORMAT)
    return format_html(
        '<time class="timestamp" datetime="{}" title="{}">{} '
        '<span class="relative" data-relative>({})</span></time>',
        iso,
        iso,
        local,
        relative_phrase(moment, timezone.now()),
    )


@register.filter
def pairs(mapping) -> list[tuple]:
    """A dict's ``(key, value)`` pairs. ``{% for k, v in d.items %}`` reads the *key* ``items``
    first, so user data with such a key (a template variable named ``items``) broke the page."""
    return list(mapping.items()) if isinstance(mapping, dict) else []
