"""Demo data for a local install: one user per role, a CI bot with an API token, and each app's
demo data (``settings.PORTAL_DEMO_LOADERS``).

Idempotent: running it again resets the demo passwords and keeps the token. Refuses to run with
``DJANGO_HTTPS`` set (production) unless ``--force`` is given.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.module_loading import import_string
from rest_framework.authtoken.models import Token

from portal.roles import ADMINS, OPERATORS, QA

DEMO_PASSWORD = "portal-demo"  # noqa: S105 - a documented local demo login, refused in production
DEMO_USERS = (
    # username, group, is_staff, is_superuser
    ("operator", OPERATORS, False, False),
    ("qa", QA, True, False),
    ("admin", ADMINS, True, True),
)
CI_USER = "ci-bot"


class Command(BaseCommand):
    help = "Create demo users (operator, qa, admin; password portal-demo) and a CI bot token."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="run even with DJANGO_HTTPS set")

    @transaction.atomic
    def handle(self, *args, force: bool = False, **options):
        if settings.HTTPS and not force:
            raise CommandError("refusing to create demo users on a production (HTTPS) install")
        User = get_user_model()
        for username, group_name, is_staff, is_superuser in DEMO_USERS:
            user, _ = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            user.is_staff, user.is_superuser = is_staff, is_superuser
            user.set_password(DEMO_PASSWORD)
            user.save()
            user.groups.add(Group.objects.get(name=group_name))
        if qa_group := Group.objects.filter(name=QA).first():
            # QA reviews in the admin: let it see what the portal records.
            from django.contrib.auth.models import Permission

            qa_group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label__in=["portal"], codename__startswith="view_"
                )
            )
        bot, _ = User.objects.get_or_create(username=CI_USER, defaults={"email": "ci@example.com"})
        bot.set_unusable_password()
        bot.save()
        bot.groups.add(Group.objects.get(name=OPERATORS))
        token, _ = Token.objects.get_or_create(user=bot)
        self.stdout.write(
            f"Demo users: operator, qa, admin (password: {DEMO_PASSWORD}); "
            f"CI token for {CI_USER}: {token.key}"
        )
        # Each app's demo data (settings.PORTAL_DEMO_LOADERS), after the users it may refer to.
        for path in getattr(settings, "PORTAL_DEMO_LOADERS", []):
            self.stdout.write(import_string(path)())
