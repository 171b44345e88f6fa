"""Gives the roles their permissions on the escalation app's models, for the admin.

QA owns classification and routing: it views every escalation model, adds and changes
classification rules and teams, changes the routing matrix, and holds the change permission on
failures and escalations that the admin's "Reclassify" and "Resolve" actions ask for (the records
themselves stay read-only there). Operators on call view failures, escalations, SLA records,
notifications and the timeline. Admins hold every permission. Nobody but admins deletes: a rule is
disabled rather than deleted. (Listed in the README, "Roles".)
"""

from django.db import migrations

from portal.roles import grant_role_permissions

OPERATOR_VIEWS = [
    "escalation.view_failureevent",
    "escalation.view_escalation",
    "escalation.view_slarecord",
    "escalation.view_notification",
    "escalation.view_escalationevent",
]
GRANTS = {
    "operators": OPERATOR_VIEWS,
    "qa": [
        *OPERATOR_VIEWS,
        "escalation.view_webhookdelivery",
        "escalation.view_classificationrule",
        "escalation.add_classificationrule",
        "escalation.change_classificationrule",
        "escalation.view_team",
        "escalation.add_team",
        "escalation.change_team",
        "escalation.view_routingrule",
        "escalation.change_routingrule",
        "escalation.change_failureevent",  # the "Reclassify" action
        "escalation.change_escalation",  # the "Resolve" action
    ],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    escalation_permissions = Permission.objects.filter(content_type__app_label="escalation")
    for group in Group.objects.filter(name__in=["qa", "operators", "admins"]):
        group.permissions.remove(*escalation_permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("escalation", "0003_real_world_rules"),
        ("portal", "0004_role_permissions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
