"""Role-based permissions: the groups ``operators``, ``qa`` and ``admins`` (data migration 0002).

A role is membership of its group; ``admins`` (and superusers) hold every role. Roles are checked
on the server for every request, whatever the page shows.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from portal.roles import ADMINS, OPERATORS, QA, user_has_any_role, user_has_role


class HasRole(BasePermission):
    """Grants access to authenticated users holding ``role``; subclass and set ``role``."""

    role: str = ""
    message = "Your account does not have the role this action needs."

    def has_permission(self, request, view) -> bool:
        return user_has_role(request.user, self.role)


class IsOperator(HasRole):
    role = OPERATORS
    message = "This needs the operators role."


class IsQA(HasRole):
    role = QA
    message = "This needs the qa role."


class IsPortalAdmin(HasRole):
    role = ADMINS
    message = "This needs the admins role."


class IsOperatorOrQA(BasePermission):
    """On-call engineers (operators) and QA: who triage CI failures and follow exports."""

    message = "This needs the operators or the qa role."

    def has_permission(self, request, view) -> bool:
        return user_has_any_role(request.user, (OPERATORS, QA))
