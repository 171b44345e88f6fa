"""The dashboard's navigation: one list, so every page shows the same sections.

A section whose URL name is not routed yet (its capability has not landed) is shown greyed out
rather than as a link to a missing page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class Section:
    label: str
    url_name: str
    staff_only: bool = False
    prefix: str = ""  # the section is current for every path under this prefix (default: its URL)


SECTIONS = (
    Section("Overview", "dashboard"),
    Section("CI health", "escalation:ci-health"),
    Section("Exports", "exports:session-list"),
    Section("Requests", "escalation:request-list"),
    Section("ITSM templates", "itsm:template-new-ticket", prefix="/itsm/"),
    Section("API docs", "api-docs"),
    Section("Admin", "admin:index", staff_only=True),
)


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    items = []
    for section in SECTIONS:
        if section.staff_only and not (user and user.is_staff):
            continue
        try:
            url = reverse(section.url_name)
        except NoReverseMatch:
            url = None
        active = url is not None and (
            request.path == url if url == "/" else request.path.startswith(section.prefix or url)
        )
        items.append({"label": section.label, "url": url, "active": active})
    return {"navigation": items}
