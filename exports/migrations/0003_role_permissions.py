"""The roles' permissions on the exports admin, as on its pages and API (docs/exports-sessions.md):
operators add sessions, edit tickets and start or retry exports ("change" on sessions is the
export permission; a session's fields still change only through the export); QA reads every
table; admins hold everything (README, "Roles")."""

from django.db import migrations

from portal.roles import grant_role_permissions

READ = [
    "exports.view_exportsession",
    "exports.view_exportticket",
    "exports.view_ticketdependency",
    "exports.view_manualfix",
    "exports.view_orphanedissue",
    "exports.view_exportevent",
]
GRANTS = {
    "operators": [
        *READ,
        "exports.add_exportsession",
        "exports.change_exportsession",
        "exports.change_exportticket",
    ],
    "qa": READ,
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="exports")
    for group in Group.objects.filter(name__in=["qa", "operators"]):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [("exports", "0002_reap_stuck_exports")]

    operations = [migrations.RunPython(grant, revoke)]
