"""The portal's roles, the one rule that says who holds one, and the page mixins that apply it.

A role is a group: ``operators``, ``qa`` or ``admins`` (created by migration 0002; migration 0004
gives each its model permissions for the admin). ``admins`` and superusers hold every role. Pages
use the mixins below, the API ``portal.api.permissions``; both ask :func:`user_has_role`.
"""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied

OPERATORS = "operators"
QA = "qa"
ADMINS = "admins"
ROLES = (OPERATORS, QA, ADMINS)

# A request's user is asked several times per page (the view, the navigation): one query is enough.
_CACHE_ATTRIBUTE = "_portal_roles"


def user_roles(user) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    if user.is_superuser:
        return set(ROLES)
    cached = getattr(user, _CACHE_ATTRIBUTE, None)
    if cached is None:
        names = {group.name for group in user.groups.all()}
        cached = frozenset(ROLES) if ADMINS in names else frozenset(names & set(ROLES))
        setattr(user, _CACHE_ATTRIBUTE, cached)
    return set(cached)


def user_has_role(user, role: str | None) -> bool:
    """``role`` None means any logged-in user."""
    if role is None:
        return bool(user and user.is_authenticated)
    return role in user_roles(user)


class RoleRequiredMixin(LoginRequiredMixin):
    """Anonymous visitors go to the login page; a logged-in user without ``required_role`` gets
    the styled 403 page, which names the role the page needs."""

    required_role: str

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not user_has_role(request.user, self.required_role):
            raise PermissionDenied(f"This page needs the {self.required_role} role.")
        return super().dispatch(request, *args, **kwargs)


class OperatorRequiredMixin(RoleRequiredMixin):
    required_role = OPERATORS


class QARequiredMixin(RoleRequiredMixin):
    required_role = QA


class AdminRequiredMixin(RoleRequiredMixin):
    required_role = ADMINS
