"""Sections of the portal's overview page, registered by the apps that own the figures.

An app registers a callable from its ``AppConfig.ready`` (escalation's CI figures), so the
portal never imports an app to show them. A section returns
``{"title": str, "figures": [(label, value, url)]}`` and is shown only to users with one of the
roles it names (everyone signed in when it names none).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import DatabaseError

from portal.roles import user_has_any_role

logger = logging.getLogger(__name__)

Section = Callable[[], dict[str, Any]]
_SECTIONS: list[tuple[Section, tuple[str, ...]]] = []


def register_overview_section(section: Section, roles: Iterable[str] = ()) -> None:
    """Adds ``section`` to the overview page, for users with one of ``roles``. Idempotent."""
    if not any(existing is section for existing, _ in _SECTIONS):
        _SECTIONS.append((section, tuple(roles)))


def overview_sections(user: Any) -> list[dict[str, Any]]:
    """The sections ``user`` may see, computed now. A section whose database read fails is left
    out (and logged): the overview page still answers."""
    shown = []
    for section, roles in _SECTIONS:
        if not user_has_any_role(user, roles):
            continue
        try:
            shown.append(section())
        except DatabaseError:
            logger.exception("overview: the section %r could not be read", section)
    return shown
