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


def user_has_any_role(user, roles: tuple[str, ...]) -> bool:
    """Any of ``roles``; no roles at all means any logged-in user."""
    if not roles:
        return user_has_role(user, None)
    return bool(user_roles(user) & set(roles))


class RoleRequiredMixin(LoginRequiredMixin):
    """Anonymous visitors go to the login page; a logged-in user without the role gets the
    styled 403 page, which names the role the page needs.

    ``required_role`` names one role; ``required_roles`` several, any of which opens the page
    (operators and QA both triage CI failures).
    """

    required_role: str | None = None
    required_roles: tuple[str, ...] = ()

    def roles_needed(self) -> tuple[str, ...]:
        return self.required_roles or ((self.required_role,) if self.required_role else ())

    def dispatch(self, request, *args, **kwargs):
        needed = self.roles_needed()
        if request.user.is_authenticated and not user_has_any_role(request.user, needed):
            raise PermissionDenied(f"This page needs the {' or '.join(needed)} role.")
        return super().dispatch(request, *args, **kwargs)


class OperatorRequiredMixin(RoleRequiredMixin):
    required_role = OPERATORS


class QARequiredMixin(RoleRequiredMixin):
    required_role = QA


class AdminRequiredMixin(RoleRequiredMixin):
    required_role = ADMINS


# --- model permissions of each role (for the admin) ------------------------------------------
# Each app's data migration grants its own models' permissions to the roles, with the function
# below (portal's 0004 grants the portal's and itsm's); README "Roles" lists what each role holds.


def grant_role_permissions(apps, grants: dict[str, list[str]], *, all_to_admins: bool = True):
    """Adds ``"app_label.codename"`` permissions to each role's group, in a data migration.

    ``apps`` is the migration's historical registry. Permissions are normally created after
    ``migrate`` finishes (``post_migrate``); they are created here first, so this works on a fresh
    database too. With ``all_to_admins``, the admins group gets every permission that exists.
    Idempotent: granting twice changes nothing.
    """
    from django.contrib.auth.management import create_permissions
    from django.contrib.contenttypes.management import create_contenttypes

    for app_config in apps.get_app_configs():
        # The historical app configs have no models module; both helpers skip such apps.
        app_config.models_module = True
        create_contenttypes(app_config, apps=apps, verbosity=0)
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, names in grants.items():
        group, _ = group_model.objects.get_or_create(name=role)
        for name in names:
            app_label, codename = name.split(".", 1)
            group.permissions.add(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )
    if all_to_admins:
        admins, _ = group_model.objects.get_or_create(name=ADMINS)
        admins.permissions.add(*permission_model.objects.all())
