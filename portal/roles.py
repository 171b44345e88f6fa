"""The portal's roles and the one rule that says who holds one."""

from __future__ import annotations

OPERATORS = "operators"
QA = "qa"
ADMINS = "admins"
ROLES = (OPERATORS, QA, ADMINS)


def user_roles(user) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    if user.is_superuser:
        return set(ROLES)
    names = {group.name for group in user.groups.all()}
    return set(ROLES) if ADMINS in names else names & set(ROLES)


def user_has_role(user, role: str) -> bool:
    return role in user_roles(user)
