"""The dashboard's navigation: one list, so every page shows the same sections.

Each section names the roles its page opens to (any of them; none: any logged-in user), and a
user sees only the sections they can open: a link that answers 403 is not offered. A section whose URL name is not
routed yet (its capability has not landed) is shown greyed out rather than as a link to a missing
page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from portal.roles import OPERATORS, QA, user_has_any_role


@dataclass(frozen=True)
class Section:
    label: str
    url_name: str
    roles: tuple[str, ...] = ()  # any of these opens the page; () for any logged-in user
    staff_only: bool = False  # the Django admin: staff, whatever their role
    prefix: str = ""  # the section is current for every path under this prefix (default: its URL)


SECTIONS = (
    Section("Overview", "dashboard"),
    Section("CI health", "escalation:ci-health", roles=(OPERATORS, QA)),
    Section("CI reports", "escalation:reports", roles=(OPERATORS, QA)),
    Section("CI help", "escalation:help"),
    Section("Exports", "exports:session-list", roles=(OPERATORS, QA)),
    Section("Requests", "escalation:request-list"),
    Section("ITSM templates", "itsm:template-new-ticket", roles=(OPERATORS,), prefix="/itsm/"),
    Section("API docs", "api-docs"),
    Section("Admin", "admin:index", staff_only=True),
)


def visible_sections(user) -> list[Section]:
    """The sections ``user`` may open."""
    if not (user and user.is_authenticated):
        return []
    return [
        section
        for section in SECTIONS
        if user_has_any_role(user, section.roles) and (user.is_staff or not section.staff_only)
    ]


def navigation(request) -> dict:
    items = []
    for section in visible_sections(getattr(request, "user", None)):
        try:
            url = reverse(section.url_name)
        except NoReverseMatch:
            url = None
        prefix = section.prefix or url
        active = url is not None and (
            request.path == url if url == "/" else request.path.startswith(prefix)
        )
        items.append({"label": section.label, "url": url, "active": active, "prefix": prefix})
    # One current section: the most specific (/ci/help/ is CI help's, not CI health's /ci/).
    current = [item for item in items if item["active"]]
    if len(current) > 1:
        best = max(current, key=lambda item: len(item["prefix"]))
        for item in current:
            item["active"] = item is best
    return {"navigation": items}
