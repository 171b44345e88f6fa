"""Gives the roles their permissions on the service catalog, for the admin: QA edits the catalog
(bundles and their components, configuration as data) and reads requests, operators read both,
admins hold every permission (README, "Roles"). Requests are written by the engine only."""

from django.db import migrations

from portal.roles import grant_role_permissions

READ = [
    "escalation.view_catalogbundle",
    "escalation.view_catalogcomponent",
    "escalation.view_request",
    "escalation.view_requestfulfillment",
    "escalation.view_componentexecution",
]
GRANTS = {
    "operators": READ,
    "qa": [
        *READ,
        "escalation.add_catalogbundle",
        "escalation.change_catalogbundle",
        "escalation.add_catalogcomponent",
        "escalation.change_catalogcomponent",
        "escalation.delete_catalogcomponent",
    ],
}
MODELS = [
    "catalogbundle",
    "catalogcomponent",
    "request",
    "requestfulfillment",
    "componentexecution",
]


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    catalog_permissions = Permission.objects.filter(
        content_type__app_label="escalation", content_type__model__in=MODELS
    )
    for group in Group.objects.filter(name__in=["qa", "operators", "admins"]):
        group.permissions.remove(*catalog_permissions)


class Migration(migrations.Migration):
    dependencies = [("escalation", "0011_background_jobs")]

    operations = [migrations.RunPython(grant, revoke)]
