"""Gives the roles their permissions on override requests, for the admin: QA decides them (the
admin's "Approve" and "Deny" actions need the change permission), operators on call see them,
admins hold every permission (README, "Roles")."""

from django.db import migrations

from portal.roles import grant_role_permissions

GRANTS = {
    "operators": ["escalation.view_overriderequest"],
    "qa": ["escalation.view_overriderequest", "escalation.change_overriderequest"],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    override_permissions = Permission.objects.filter(
        content_type__app_label="escalation", content_type__model="overriderequest"
    )
    for group in Group.objects.filter(name__in=["qa", "operators", "admins"]):
        group.permissions.remove(*override_permissions)


class Migration(migrations.Migration):
    dependencies = [("escalation", "0006_override_requests")]
    operations = [migrations.RunPython(grant, revoke)]
