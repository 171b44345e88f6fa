"""Gives each role explicit model permissions, so the admin shows each role what it works with.

QA reviews: it views tickets, outbox messages and ticket templates, and the portal's heartbeats
and leases, and changes nothing. Operators also edit ticket templates and may make outbox messages
due again ("Deliver now"). Admins hold every permission. (Listed in the README, "Roles".)
"""

from django.db import migrations

from portal.roles import grant_role_permissions

VIEW_RECORDS = [
    "itsm.view_ticket",
    "itsm.view_outboxmessage",
    "itsm.view_tickettemplate",
    "portal.view_heartbeat",
    "portal.view_lease",
]
GRANTS = {
    "qa": VIEW_RECORDS,
    "operators": [
        *VIEW_RECORDS,
        "itsm.change_outboxmessage",
        "itsm.add_tickettemplate",
        "itsm.change_tickettemplate",
        "itsm.delete_tickettemplate",
    ],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, GRANTS)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name__in=["qa", "operators", "admins"]):
        group.permissions.clear()


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0003_heartbeat_schedule"),
        ("itsm", "0005_outbox_claim_token"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
