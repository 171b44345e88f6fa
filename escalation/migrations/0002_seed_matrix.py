"""Seeds seed 004's values: its teams (notify-teams.sh), its routing matrix (route-failure.sh and
the SLA quick reference) and its classification table (classify-ci-failure.sh); schedules the SLA
sweep and the tracker refresh (every minute, leader-only via beat)."""

from django.db import migrations

from portal.schedules import schedule_periodic_tasks, unschedule_periodic_tasks

TASKS = {
    "escalation SLA sweep": ("escalation.sweep_due_slas", 60),
    "escalation tracker refresh": ("escalation.refresh_trackers", 60),
}

TEAMS = [
    # name, display, channel, on-call, Linear team
    ("backend_dev", "Backend developers", "#backend-dev", "@backend-oncall", "PLT"),
    ("frontend_dev", "Frontend developers", "#frontend-dev", "@frontend-oncall", "PLT"),
    ("security_team", "Security team", "#security-alerts", "@security-oncall", "PLT"),
    ("devops", "DevOps", "#devops-alerts", "@devops-oncall", "PLT"),
    ("database_specialist", "Database specialists", "#devops-alerts", "@dba-oncall", "PLT"),
    ("qa_analyst", "QA analysts", "#qa-team", "@qa-lead", "QA"),
    ("scrum_master", "Scrum master", "#scrum", "@scrum-master", "QA"),
]

# failure type: title, teams, priority, SLA minutes, urgent, notify author, override, recovery
ROUTING = {
    "generator_drift": ("Generator Drift", ["backend_dev", "frontend_dev"], "CRITICAL", 120,
                        True, False, "zero_tolerance", "none"),
    "security_secrets": ("Secret Exposure", ["security_team"], "CRITICAL", 60,
                         True, False, "zero_tolerance", "none"),
    "security_critical": ("Critical Vulnerability", ["security_team"], "CRITICAL", 60,
                          True, False, "zero_tolerance", "none"),
    "security_high": ("High Vulnerability", ["security_team"], "HIGH", 24 * 60,
                      False, False, "qa_approval", "none"),
    "security_advisory": ("Security Advisory", ["security_team"], "LOW", 24 * 60,
                          False, False, "qa_approval", "none"),
    "dependency_vulnerability": ("Dependency Vulnerability", ["security_team"], "MEDIUM", 24 * 60,
                                 False, False, "qa_approval", "none"),
    "database_connectivity": ("Database Connectivity", ["devops", "database_specialist"], "HIGH",
                              30, True, False, "infrastructure_confirmed", "database_probe"),
    "infrastructure_timeout": ("Infrastructure Timeout", ["devops"], "HIGH", 60,
                               False, False, "infrastructure_confirmed", "rerun_failed_jobs"),
    "test_failure": ("Test Failure", ["qa_analyst"], "MEDIUM", 4 * 60,
                     False, True, "hotfix_approval", "none"),
    "build_failure": ("Build Failure", ["backend_dev"], "MEDIUM", 2 * 60,
                      False, False, "hotfix_approval", "none"),
    "unknown": ("Unclassified Failure", ["qa_analyst"], "LOW", 8 * 60,
                False, False, "qa_approval", "none"),
}  # fmt: skip

# The seed's own table: its log patterns (tried first, as its script lets them overwrite the
# exit-code type) and its exit codes.
RULES = [
    ("seed: database connection", "database_connectivity", None, r"database.*connection", 110),
    ("seed: container timeout", "infrastructure_timeout", None, r"container.*timeout", 120),
    ("seed: npm audit failed", "dependency_vulnerability", None, r"npm.*audit.*failed", 130),
    ("seed: test failed", "test_failure", None, r"test.*failed", 140),
    ("seed: compilation error", "build_failure", None, r"compilation.*error", 150),
    ("seed: exit 2 generator drift", "generator_drift", 2, "", 900),
    ("seed: exit 10 security critical", "security_critical", 10, "", 910),
    ("seed: exit 11 security secrets", "security_secrets", 11, "", 920),
    ("seed: exit 12 security high", "security_high", 12, "", 930),
    ("seed: exit 13 security advisory", "security_advisory", 13, "", 940),
]


def seed(apps, schema_editor):
    Team = apps.get_model("escalation", "Team")
    RoutingRule = apps.get_model("escalation", "RoutingRule")
    ClassificationRule = apps.get_model("escalation", "ClassificationRule")
    teams = {}
    for name, display, channel, oncall, linear in TEAMS:
        teams[name], _ = Team.objects.get_or_create(
            name=name,
            defaults={
                "display_name": display,
                "slack_channel": channel,
                "oncall_handle": oncall,
                "tracker": "linear",
                "linear_team": linear,
            },
        )
    for failure_type, row in ROUTING.items():
        title, names, priority, minutes, urgent, author, override, recovery = row
        rule, created = RoutingRule.objects.get_or_create(
            failure_type=failure_type,
            defaults={
                "title": title,
                "priority": priority,
                "sla_minutes": minutes,
                "urgent": urgent,
                "notify_author": author,
                "override_policy": override,
                "recovery_action": recovery,
                "ticket_team": teams[names[0]],
            },
        )
        if created:
            rule.teams.set([teams[name] for name in names])
    for name, failure_type, exit_code, pattern, position in RULES:
        ClassificationRule.objects.get_or_create(
            name=name,
            defaults={
                "failure_type": failure_type,
                "exit_code": exit_code,
                "log_pattern": pattern,
                "position": position,
                "description": "From seed 004 (classify-ci-failure.sh).",
            },
        )


def schedule(apps, schema_editor):
    schedule_periodic_tasks(apps, TASKS)


def unschedule(apps, schema_editor):
    unschedule_periodic_tasks(apps, TASKS)


def unseed(apps, schema_editor):
    apps.get_model("escalation", "ClassificationRule").objects.filter(
        name__in=[row[0] for row in RULES]
    ).delete()
    apps.get_model("escalation", "RoutingRule").objects.filter(failure_type__in=ROUTING).delete()
    apps.get_model("escalation", "Team").objects.filter(
        name__in=[row[0] for row in TEAMS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("escalation", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(seed, unseed), migrations.RunPython(schedule, unschedule)]
