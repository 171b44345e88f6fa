"""Read access for the roles to what the admin gained since 0007: recovery attempts (0008) and
background jobs with their history (0011). Operators and QA read them; admins hold everything
(README, "Roles"). Running a job stays with admins."""

from django.db import migrations

from portal.roles import grant_role_permissions

READ = [
    "escalation.view_recoveryattempt",
    "escalation.view_backgroundjob",
    "escalation.view_jobevent",
]
GRANTS = {"operators": READ, "qa": READ}


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    codenames = [name.split(".", 1)[1] for name in READ]
    permissions = Permission.objects.filter(
        content_type__app_label="escalation", codename__in=codenames
    )
    for group in Group.objects.filter(name__in=["qa", "operators"]):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [("escalation", "0014_catalog_sweep")]

    operations = [migrations.RunPython(grant, revoke)]
