"""The escalation admin: the configuration forms refuse what the classifier and the notifier
could not use, "Test this rule" tries an edit without saving it, the records are read-only with
their user text escaped, and "Reclassify" and "Resolve" go through an intermediate page (with
CSRF) to the services. Every change list answers in a bounded number of queries."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from escalation.models import (
    ClassificationRule,
    Escalation,
    EscalationEvent,
    FailureEvent,
    RoutingRule,
    SlaRecord,
    Team,
    WebhookDelivery,
)
from escalation.services.classify import classify
from escalation.services.ingest import FailureReport, report_failure
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("seed_matrix")]

SEED = importlib.import_module("escalation.migrations.0002_seed_matrix")
PYTEST_LOG = """\
2026-11-30T10:00:01.000Z ##[group]Run pytest
2026-11-30T10:00:02.000Z ============================= test session starts ==============
2026-11-30T10:00:09.000Z tests/test_cart.py::test_total_rounds FAILED                  [ 50%]
2026-11-30T10:00:09.500Z =========================== short test summary info ============
2026-11-30T10:00:09.600Z FAILED tests/test_cart.py::test_total_rounds - AssertionError: 3 != 2
2026-11-30T10:00:09.700Z ========================= 1 failed, 41 passed in 7.12s =========
"""
GITLEAKS_LOG = """\
    ○
    ░    gitleaks
Finding:     aws_secret_access_key = "REDACTEDREDACTEDREDACTEDREDACTEDREDACTED"
RuleID:      aws-access-token
10:04AM WRN leaks found: 1
tests/test_cart.py::test_total_rounds FAILED
"""
FAILURES_URL = "/admin/escalation/failureevent/"
ESCALATIONS_URL = "/admin/escalation/escalation/"
RULES_URL = "/admin/escalation/classificationrule/"


@pytest.fixture
def seed_matrix(db):
    """The seed's teams, routing matrix and rules (migration 0002, idempotent), also after a
    ``transactional_db`` test flushed them."""
    state = MigrationExecutor(connection).loader.project_state(("escalation", "0002_seed_matrix"))
    SEED.seed(state.apps, None)


def reported(run_id: str = "1", log: str = PYTEST_LOG, **overrides) -> FailureEvent:
    fields = {"repository": "acme/shop", "job": "unit-tests", "run_id": run_id, "exit_code": 1}
    fields.update(overrides)
    failure, _ = report_failure(FailureReport(**fields), [log.encode()])
    return FailureEvent.objects.select_related("escalation").get(pk=failure.pk)


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def rule_form(**overrides) -> dict[str, str]:
    data = {
        "name": "admin check: failed pytest",
        "failure_type": "test_failure",
        "position": "50",
        "enabled": "on",
        "exit_code": "",
        "log_pattern": r"^FAILED \S+::",
        "changed_file_glob": "",
        "description": "",
        "sample_log": "",
        "sample_exit_code": "",
        "sample_changed_files": "",
    }
    data.update(overrides)
    return data


def errors_of(response) -> str:
    html = response.content.decode()
    return " ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, re.S))


# --- classification rules ----------------------------------------------------------------------


def test_a_valid_rule_is_saved_and_the_classifier_uses_it(superuser_client):
    response = superuser_client.post(
        f"{RULES_URL}add/", rule_form(failure_type="build_failure", position="1")
    )

    assert response.status_code == 302, errors_of(response)
    rule = ClassificationRule.objects.get(name="admin check: failed pytest")
    assert rule.failure_type == "build_failure"
    assert classify([PYTEST_LOG], 1).rule_name == rule.name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"log_pattern": "database.*(connection"}, "Not a valid regular expression"),
        ({"log_pattern": "(a|)"}, "matches an empty line"),
        ({"log_pattern": "x*"}, "matches an empty line"),
        ({"log_pattern": r"^(\w+\s?)*failed$"}, "a repeated group holds another repetition"),
        ({"log_pattern": ""}, "Set at least one of exit code, log pattern or changed-file glob"),
        ({"description": "line\x07bell"}, "contains a control character (U+0007)"),
    ],
)
def test_a_rule_the_classifier_could_not_use_is_refused(superuser_client, overrides, message):
    response = superuser_client.post(f"{RULES_URL}add/", rule_form(**overrides))

    assert response.status_code == 200
    assert message in errors_of(response)
    assert not ClassificationRule.objects.filter(name="admin check: failed pytest").exists()


def test_a_pattern_without_a_literal_word_is_saved_with_a_warning(superuser_client):
    response = superuser_client.post(
        f"{RULES_URL}add/", rule_form(log_pattern=r"^[0-9]+ [0-9]+$"), follow=True
    )

    assert ClassificationRule.objects.filter(name="admin check: failed pytest").exists()
    assertContains(response, "The log pattern has no literal word of 4 or more characters")


def test_testing_an_edit_shows_the_matching_lines_and_saves_nothing(superuser_client):
    rule = ClassificationRule.objects.get(name="seed: test failed")
    before = (rule.log_pattern, rule.position, rule.updated_at)

    response = superuser_client.post(
        f"{RULES_URL}{rule.pk}/change/",
        rule_form(
            name=rule.name,
            failure_type=rule.failure_type,
            log_pattern=r"^FAILED \S+::",
            position="1",
            sample_log=PYTEST_LOG,
            sample_exit_code="1",
            _test_rule="Test this rule",
        ),
    )

    assert response.status_code == 200
    assertContains(response, '<span id="rule-test-verdict">matches</span> on 1 line')
    # The evidence keeps the line's number in the sample and its cleaned text.
    assertContains(response, '<td class="number">5</td>')
    assertContains(response, "<code>FAILED tests/test_cart.py::test_total_rounds")
    assertContains(response, '<code id="rule-test-decision">test_failure</code>')
    assertContains(response, "This rule decides.")
    assertNotContains(response, "Please correct the error")
    rule.refresh_from_db()
    assert (rule.log_pattern, rule.position, rule.updated_at) == before


def test_testing_says_why_a_rule_does_not_match(superuser_client):
    response = superuser_client.post(
        f"{RULES_URL}add/",
        rule_form(
            exit_code="2",
            log_pattern="",
            sample_log=PYTEST_LOG,
            sample_exit_code="1",
            _test_rule="Test this rule",
        ),
    )

    assertContains(response, '<span id="rule-test-verdict">does not match</span>')
    assertContains(response, "The sample has exit code 1; the rule wants 2.")
    assert not ClassificationRule.objects.filter(name="admin check: failed pytest").exists()


def test_testing_shows_a_protected_finding_winning_over_the_rule(superuser_client):
    ClassificationRule.objects.create(
        name="gitleaks", failure_type="security_secrets", log_pattern=r"leaks found: [1-9]"
    )

    response = superuser_client.post(
        f"{RULES_URL}add/",
        rule_form(
            position="1",
            log_pattern=r"\S+::\S+ FAILED$",
            sample_log=GITLEAKS_LOG,
            _test_rule="Test this rule",
        ),
    )

    assertContains(response, '<span id="rule-test-verdict">matches</span>')
    assertContains(response, '<code id="rule-test-decision">security_secrets</code>')
    assertContains(response, "another wins")


def test_the_rule_list_shows_position_type_and_criteria_escaped(superuser_client):
    ClassificationRule.objects.create(
        name="odd <b>name</b>\u202e", failure_type="build_failure", log_pattern="<i>x</i>"
    )

    response = superuser_client.get(RULES_URL, {"q": "odd"})

    assertContains(response, "odd &lt;b&gt;name&lt;/b&gt;&lt;U+202E&gt;")
    assertContains(response, "log <code>&lt;i&gt;x&lt;/i&gt;</code>")
    assertNotContains(response, "<b>name</b>")


# --- teams and the routing matrix ------------------------------------------------------------


def team_form(**overrides) -> dict[str, str]:
    data = {
        "name": "mobile_dev",
        "display_name": "Mobile developers",
        "slack_channel": "#mobile-dev",
        "slack_webhook_url": "",
        "oncall_handle": "@mobile-oncall",
        "tracker": "linear",
        "linear_team": "MOB",
        "jira_project": "",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("overrides", "field_message"),
    [
        ({"slack_channel": "mobile dev"}, "A Slack channel name"),
        ({"slack_webhook_url": "http://hooks.example.com/x"}, "starts with https://"),
        ({"linear_team": ""}, "name its Linear team"),
    ],
)
def test_a_team_that_could_not_be_reached_is_refused(superuser_client, overrides, field_message):
    response = superuser_client.post("/admin/escalation/team/add/", team_form(**overrides))

    assert field_message in errors_of(response)
    assert not Team.objects.filter(name="mobile_dev").exists()


def routing_form(rule: RoutingRule, **overrides) -> dict:
    data = {
        "failure_type": rule.failure_type,
        "title": rule.title,
        "priority": rule.priority,
        "sla_minutes": str(rule.sla_minutes),
        "teams": [str(team.pk) for team in rule.teams.all()],
        "ticket_team": str(rule.ticket_team_id or ""),
        "override_policy": rule.override_policy,
        "recovery_action": rule.recovery_action,
    }
    data.update(overrides)
    return data


def test_an_sla_of_zero_minutes_is_refused(superuser_client):
    rule = RoutingRule.objects.get(failure_type="build_failure")

    response = superuser_client.post(
        f"/admin/escalation/routingrule/{rule.pk}/change/", routing_form(rule, sla_minutes="0")
    )

    assert "at least one minute" in errors_of(response)
    rule.refresh_from_db()
    assert rule.sla_minutes == 120


def test_a_matrix_edit_routes_new_escalations_and_leaves_running_ones(superuser_client):
    running = reported().escalation
    rule = RoutingRule.objects.get(failure_type="test_failure")
    devops = Team.objects.get(name="devops")

    response = superuser_client.post(
        f"/admin/escalation/routingrule/{rule.pk}/change/",
        routing_form(rule, priority="HIGH", sla_minutes="30", teams=[str(devops.pk)]),
    )

    assert response.status_code == 302, errors_of(response)
    other = reported("2", PYTEST_LOG.replace("test_total_rounds", "test_tax")).escalation
    assert other.pk != running.pk
    assert (other.priority, [team.name for team in other.teams.all()]) == ("HIGH", ["devops"])
    running.refresh_from_db()
    assert running.priority == "MEDIUM"
    assert running.sla.deadline - running.sla.started_at == timedelta(hours=4)


# --- records: read-only, escaped ----------------------------------------------------------------


def test_the_failure_page_shows_evidence_and_excerpt_escaped_and_bidi_safe(superuser_client):
    hostile_log = PYTEST_LOG.replace(
        "AssertionError: 3 != 2", "AssertionError: <script>alert(1)</script> \u202eexe.txt"
    )
    failure = reported(log=hostile_log, job="unit <b>tests</b>")

    response = superuser_client.get(f"{FAILURES_URL}{failure.pk}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "\u202e" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;U+202E&gt;exe.txt" in html
    assert '<td class="number">5</td>' in html  # the evidence line's number
    assert '<pre class="log-excerpt">' in html
    assert "unit &lt;b&gt;tests&lt;/b&gt;" in html  # the subtitle and the field
    assert 'name="_save"' not in html  # read-only


def test_records_cannot_be_added_or_deleted_even_by_a_superuser(superuser_client):
    failure = reported()

    assert superuser_client.get(f"{FAILURES_URL}add/").status_code == 403
    assert superuser_client.get(f"{FAILURES_URL}{failure.pk}/delete/").status_code == 403
    event = EscalationEvent.objects.filter(failure=failure).first()
    assert (
        superuser_client.get(f"/admin/escalation/escalationevent/{event.pk}/delete/").status_code
        == 403
    )
    assert FailureEvent.objects.filter(pk=failure.pk).exists()


def test_the_escalation_page_shows_its_sla_routing_notifications_and_timeline(superuser_client):
    with time_machine.travel("2026-12-01 09:00:00Z", tick=False):
        escalation = reported().escalation
    with time_machine.travel("2026-12-01 09:30:00Z", tick=False):
        response = superuser_client.get(f"{ESCALATIONS_URL}{escalation.pk}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    sla_row = re.search(r'<tr class="form-row has_original"\s+id="sla-0">(.*?)</tr>', html, re.S)
    assert "<p>Active</p>" in sla_row[1]  # the SLA record, inline
    assert "<p>3 h 30 min</p>" in sla_row[1]  # time left
    assert "<dt>Teams</dt><dd>qa_analyst</dd><dt>Ticket team</dt><dd>qa_analyst</dd>" in html
    assert "<dt>SLA</dt><dd>4 h</dd>" in html
    assert "<td>Slack</td><td>opened</td><td>qa_analyst</td><td>#qa-team</td>" in html
    # The timeline: the escalation's events and its failures' classification.
    assert "<td><code>classified</code></td>" in html
    assert "<td><code>opened</code></td>" in html
    assert '<button type="submit">Resolve…</button>' in html


# --- actions: reclassify and resolve -----------------------------------------------------------


def test_reclassify_asks_for_the_type_and_a_justification_first(superuser_client):
    failure = reported()

    response = superuser_client.post(
        FAILURES_URL, {"action": "reclassify", "_selected_action": [failure.pk]}
    )

    assert response.status_code == 200
    assertContains(response, 'name="csrfmiddlewaretoken"')
    assertContains(response, 'name="justification"')
    assertContains(response, f'<input type="hidden" name="_selected_action" value="{failure.pk}">')
    failure.refresh_from_db()
    assert failure.failure_type == "test_failure"


def test_reclassify_without_a_justification_changes_nothing(superuser_client):
    failure = reported()

    response = superuser_client.post(
        FAILURES_URL,
        {
            "action": "reclassify",
            "_selected_action": [failure.pk],
            "failure_type": "infrastructure_timeout",
            "justification": "no",
            "apply": "Reclassify",
        },
    )

    assert response.status_code == 200
    assert "at least 5 characters" in errors_of(response)
    failure.refresh_from_db()
    assert failure.failure_type == "test_failure"


def test_reclassify_reroutes_and_audits_with_the_justification(superuser_client):
    failure = reported()
    old_escalation = failure.escalation

    response = superuser_client.post(
        FAILURES_URL,
        {
            "action": "reclassify",
            "_selected_action": [failure.pk],
            "failure_type": "infrastructure_timeout",
            "justification": "runner was killed by the host",
            "apply": "Reclassify",
        },
        follow=True,
    )

    failure.refresh_from_db()
    assert failure.failure_type == "infrastructure_timeout"
    assert failure.escalation_id != old_escalation.pk
    assert [team.name for team in failure.escalation.teams.all()] == ["devops"]
    event = EscalationEvent.objects.get(kind="reclassified", failure=failure)
    assert event.actor.username == "root"
    assert event.data["justification"] == "runner was killed by the host"
    assertContains(response, "Reclassified as infrastructure_timeout")


def test_reclassify_needs_a_valid_csrf_token(db):
    failure = reported()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    body = {
        "action": "reclassify",
        "_selected_action": [failure.pk],
        "failure_type": "build_failure",
        "justification": "compiler error, not a test",
        "apply": "Reclassify",
    }

    assert browser.post(FAILURES_URL, body).status_code == 403
    page = browser.post(
        FAILURES_URL,
        {"action": "reclassify", "_selected_action": [failure.pk]},
        HTTP_X_CSRFTOKEN=browser.get(FAILURES_URL).cookies["csrftoken"].value,
    )
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    assert browser.post(FAILURES_URL, {**body, "csrfmiddlewaretoken": token}).status_code == 302

    failure.refresh_from_db()
    assert failure.failure_type == "build_failure"


def test_resolve_closes_the_escalation_and_its_sla_with_the_reason(superuser_client):
    escalation = reported().escalation

    first = superuser_client.post(
        ESCALATIONS_URL, {"action": "resolve", "_selected_action": [escalation.pk]}
    )
    assertContains(first, 'name="reason"')
    superuser_client.post(
        ESCALATIONS_URL,
        {
            "action": "resolve",
            "_selected_action": [escalation.pk],
            "reason": "fixed by a1b2c3d",
            "apply": "Resolve",
        },
    )

    escalation.refresh_from_db()
    assert escalation.status == "resolved"
    assert escalation.resolution == "fixed by a1b2c3d"
    assert SlaRecord.objects.get(escalation=escalation).status == "resolved_within_sla"
    event = EscalationEvent.objects.get(kind="resolved", escalation=escalation)
    assert event.actor.username == "root"


def test_resolving_a_resolved_escalation_says_so(superuser_client):
    escalation = reported().escalation
    body = {
        "action": "resolve",
        "_selected_action": [escalation.pk],
        "reason": "fixed",
        "apply": "Resolve",
    }
    superuser_client.post(ESCALATIONS_URL, body)

    response = superuser_client.post(ESCALATIONS_URL, body, follow=True)

    assertContains(response, f"Already resolved: #{escalation.pk}.")
    assert EscalationEvent.objects.filter(kind="resolved", escalation=escalation).count() == 1


def test_correcting_the_sla_timer_recomputes_the_deadline_and_tells_the_teams(superuser_client):
    with time_machine.travel("2026-12-01 09:00:00Z", tick=False):
        escalation = reported().escalation
    body = {"action": "correct_sla_timer", "_selected_action": [escalation.pk]}

    with time_machine.travel("2026-12-01 09:30:00Z", tick=False):
        asked = superuser_client.post(ESCALATIONS_URL, body)
        assertContains(asked, 'name="started_at"')
        refused = superuser_client.post(
            ESCALATIONS_URL,
            {**body, "started_at": "2026-12-01 10:00", "reason": "clock skew", "apply": "Correct"},
        )
        assert "cannot start in the future" in errors_of(refused)
        superuser_client.post(
            ESCALATIONS_URL,
            {
                **body,
                "started_at": "2026-12-01 08:00",
                "reason": "the job was reported an hour late",
                "apply": "Correct",
            },
        )

    record = SlaRecord.objects.get(escalation=escalation)
    assert record.deadline.isoformat() == "2026-12-01T12:00:00+00:00"
    event = EscalationEvent.objects.get(kind="sla_corrected", escalation=escalation)
    assert event.actor.username == "root"
    assert "the job was reported an hour late" in event.message
    assert escalation.notifications.filter(kind="sla_corrected").count() == 1


def test_the_sla_timer_is_corrected_one_escalation_at_a_time(superuser_client):
    first = reported().escalation
    second = reported("2", GITLEAKS_LOG, exit_code=11).escalation
    deadlines = sorted(SlaRecord.objects.values_list("deadline", flat=True))

    response = superuser_client.post(
        ESCALATIONS_URL,
        {
            "action": "correct_sla_timer",
            "_selected_action": [first.pk, second.pk],
            "started_at": "2026-01-01 08:00",
            "reason": "the job was reported late",
            "apply": "Correct",
        },
        follow=True,
    )

    assertContains(response, "Select one escalation to correct its SLA timer.")
    assert sorted(SlaRecord.objects.values_list("deadline", flat=True)) == deadlines


# --- query counts ------------------------------------------------------------------------------

CHANGELISTS = [
    "classificationrule",
    "team",
    "routingrule",
    "failureevent",
    "escalation",
    "slarecord",
    "notification",
    "escalationevent",
    "webhookdelivery",
    "overriderequest",
]


@pytest.fixture
def many_records(db):
    logs = [PYTEST_LOG.replace("test_total_rounds", f"test_case_{n}") for n in range(12)] + [
        GITLEAKS_LOG.replace("leaks found: 1", f"leaks found: {n + 1}") for n in range(3)
    ]
    for n, log in enumerate(logs):
        reported(str(100 + n), log, exit_code=11 if "gitleaks" in log else 1)
    for n in range(15):
        WebhookDelivery.objects.create(source="github", delivery_id=f"d-{n}", event="workflow_job")
    assert FailureEvent.objects.count() == 15


@pytest.mark.parametrize("model_name", CHANGELISTS)
def test_changelists_answer_in_a_bounded_number_of_queries(
    superuser_client, many_records, model_name, django_assert_max_num_queries
):
    url = f"/admin/escalation/{model_name}/"
    superuser_client.get(url)  # the session and the user are loaded once per request anyway

    with django_assert_max_num_queries(10):
        response = superuser_client.get(url)

    assert response.status_code == 200


# --- roles (migration 0004) ----------------------------------------------------------------------

GRANTS = importlib.import_module("escalation.migrations.0004_role_permissions")
CATALOG_GRANTS = importlib.import_module("escalation.migrations.0013_catalog_permissions")
LATER_GRANTS = importlib.import_module("escalation.migrations.0015_role_permissions_recovery_jobs")
OVERRIDE_GRANTS = importlib.import_module("escalation.migrations.0007_override_permissions")
# What each role reads in the admin's index (migrations 0004, 0007, 0013 and 0015).
LATER_MODELS = {"recoveryattempt", "backgroundjob", "catalogbundle", "request"}
OPERATOR_MODELS = {
    "failureevent",
    "escalation",
    "slarecord",
    "notification",
    "escalationevent",
    "overriderequest",
    *LATER_MODELS,
}
ALL_MODELS = set(CHANGELISTS) | LATER_MODELS
# Read-only rows shown inside other admins (inlines, history), read by both roles too.
INLINE_ONLY = {"jobevent", "catalogcomponent", "requestfulfillment", "componentexecution"}
CATALOG_EDITS = {
    "add_catalogbundle",
    "change_catalogbundle",
    "add_catalogcomponent",
    "change_catalogcomponent",
    "delete_catalogcomponent",
}


@pytest.fixture
def role_permissions(db):
    """The grants of migrations 0004, 0007, 0013 and 0015 (idempotent), also after a
    ``transactional_db`` test flushed them."""
    state = MigrationExecutor(connection).loader.project_state(
        ("escalation", "0015_role_permissions_recovery_jobs")
    )
    GRANTS.grant(state.apps, None)
    OVERRIDE_GRANTS.grant(state.apps, None)
    CATALOG_GRANTS.grant(state.apps, None)
    LATER_GRANTS.grant(state.apps, None)


def escalation_codenames(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return set(
        group.permissions.filter(content_type__app_label="escalation").values_list(
            "codename", flat=True
        )
    )


def admin_models(client) -> set[str]:
    """The escalation models the admin's index offers the user."""
    return set(
        re.findall(
            r'<th scope="row" id="escalation-(\w+)">', client.get("/admin/").content.decode()
        )
    )


def staff_client(role: str) -> Client:
    browser = Client()
    browser.force_login(UserFactory(username=f"{role}-member", roles=[role], is_staff=True))
    return browser


def test_operators_view_failures_escalations_slas_notifications_and_the_timeline(
    role_permissions,
):
    assert escalation_codenames("operators") == {
        f"view_{model}" for model in OPERATOR_MODELS | INLINE_ONLY
    }


def test_qa_views_everything_edits_classification_and_routing_and_may_run_the_actions(
    role_permissions,
):
    assert escalation_codenames("qa") == {
        f"view_{model}" for model in ALL_MODELS | INLINE_ONLY
    } | CATALOG_EDITS | {
        "add_classificationrule",
        "change_classificationrule",
        "add_team",
        "change_team",
        "change_routingrule",
        "change_failureevent",
        "change_escalation",
        "change_overriderequest",
    }


def test_admins_hold_every_escalation_permission(role_permissions):
    every = set(
        Permission.objects.filter(content_type__app_label="escalation").values_list(
            "codename", flat=True
        )
    )
    assert escalation_codenames("admins") == every


def test_granting_again_changes_nothing(role_permissions):
    before = {role: escalation_codenames(role) for role in ("qa", "operators", "admins")}
    state = MigrationExecutor(connection).loader.project_state(
        ("escalation", "0004_role_permissions")
    )

    GRANTS.grant(state.apps, None)

    assert {role: escalation_codenames(role) for role in ("qa", "operators", "admins")} == before


def test_qa_edits_rules_teams_and_the_matrix_but_deletes_nothing(role_permissions):
    qa = staff_client("qa")
    rule = ClassificationRule.objects.get(name="seed: test failed")
    routing_rule = RoutingRule.objects.get(failure_type="build_failure")

    assert admin_models(qa) == ALL_MODELS
    assert qa.post(f"{RULES_URL}add/", rule_form()).status_code == 302
    assert qa.get("/admin/escalation/team/add/").status_code == 200
    changed = qa.post(
        f"/admin/escalation/routingrule/{routing_rule.pk}/change/",
        routing_form(routing_rule, sla_minutes="90"),
    )
    assert changed.status_code == 302, errors_of(changed)
    assert qa.get("/admin/escalation/routingrule/add/").status_code == 403
    assert qa.get(f"{RULES_URL}{rule.pk}/delete/").status_code == 403
    assert qa.get("/admin/escalation/webhookdelivery/").status_code == 200
    routing_rule.refresh_from_db()
    assert routing_rule.sla_minutes == 90
    assert ClassificationRule.objects.filter(name="admin check: failed pytest").exists()


def test_qa_reads_a_failure_and_may_reclassify_and_resolve(role_permissions):
    qa = staff_client("qa")
    failure = reported()

    page = qa.get(f"{FAILURES_URL}{failure.pk}/change/")
    assertNotContains(page, 'name="_save"')
    assertContains(page, "Reclassify…")
    qa.post(
        FAILURES_URL,
        {
            "action": "reclassify",
            "_selected_action": [failure.pk],
            "failure_type": "build_failure",
            "justification": "the compiler failed first",
            "apply": "Reclassify",
        },
    )
    failure.refresh_from_db()
    assert failure.failure_type == "build_failure"
    qa.post(
        ESCALATIONS_URL,
        {
            "action": "resolve",
            "_selected_action": [failure.escalation_id],
            "reason": "fixed in main",
            "apply": "Resolve",
        },
    )
    assert Escalation.objects.get(pk=failure.escalation_id).status == "resolved"


def test_an_operator_reads_the_records_and_changes_nothing(role_permissions):
    operator = staff_client("operators")
    failure = reported()
    escalation = failure.escalation

    assert admin_models(operator) == OPERATOR_MODELS
    for model in ("classificationrule", "team", "routingrule", "webhookdelivery"):
        assert operator.get(f"/admin/escalation/{model}/").status_code == 403, model
    page = operator.get(f"{FAILURES_URL}{failure.pk}/change/")
    assert page.status_code == 200
    assertNotContains(page, "Reclassify…")
    assertNotContains(operator.get(FAILURES_URL), 'name="action"')  # no actions offered
    assertNotContains(operator.get(ESCALATIONS_URL), 'name="action"')
    assertNotContains(operator.get(f"{ESCALATIONS_URL}{escalation.pk}/change/"), "Resolve…")

    operator.post(
        FAILURES_URL,
        {
            "action": "reclassify",
            "_selected_action": [failure.pk],
            "failure_type": "build_failure",
            "justification": "the compiler failed first",
            "apply": "Reclassify",
        },
    )
    operator.post(
        ESCALATIONS_URL,
        {
            "action": "resolve",
            "_selected_action": [escalation.pk],
            "reason": "fixed in main",
            "apply": "Resolve",
        },
    )

    failure.refresh_from_db()
    escalation.refresh_from_db()
    assert (failure.failure_type, escalation.status) == ("test_failure", "open")
    assert not EscalationEvent.objects.filter(kind__in=["reclassified", "resolved"]).exists()


def test_qa_decides_overrides_in_the_admin_and_operators_only_see_them(role_permissions):
    from escalation.models import OverrideRequest

    failure = reported()
    OverrideRequest.objects.create(
        failure=failure, escalation=failure.escalation, justification="hotfix for the release",
        requested_by=UserFactory(username="requester"), policy="hotfix_approval",
    )  # fmt: skip
    qa, operator = staff_client("qa"), staff_client("operators")

    assert "overriderequest" in admin_models(qa)
    assert "overriderequest" in admin_models(operator)
    qa_page = qa.get("/admin/escalation/overriderequest/").content.decode()
    operator_page = operator.get("/admin/escalation/overriderequest/").content.decode()
    assert 'value="approve"' in qa_page and 'value="deny"' in qa_page
    assert 'value="approve"' not in operator_page


# --- recovery attempts ---------------------------------------------------------------------------

RUNNER_LOG = "Starting job\nError: container startup timeout after 600s\n"
RECOVERY_URL = "/admin/escalation/recoveryattempt/"


@pytest.fixture
def recovery_attempts(db):
    """Twelve escalations of runner timeouts, each with its first re-run scheduled; three failed
    (one with user-looking text in its outcome), two succeeded."""
    from escalation.models import RecoveryAttempt

    for n in range(12):
        failure = reported(str(200 + n), RUNNER_LOG, repository=f"acme/service-{n}")
        assert failure.failure_type == "infrastructure_timeout"
    attempts = list(RecoveryAttempt.objects.order_by("id"))
    assert len(attempts) == 12
    for attempt in attempts[:3]:
        RecoveryAttempt.objects.filter(pk=attempt.pk).update(
            status="failed", detail="timed out: <b>no report</b> \u202egnp.exe"
        )
    for attempt in attempts[3:5]:
        RecoveryAttempt.objects.filter(pk=attempt.pk).update(
            status="succeeded", detail="attempt 2 of unit-tests passed"
        )
    return attempts


def listed_attempts(html: str) -> set[str]:
    return set(re.findall(r'href="/admin/escalation/recoveryattempt/(\d+)/change/', html))


def test_recovery_attempts_are_listed_filtered_and_linked_to_their_escalation(
    superuser_client, recovery_attempts
):
    failed = superuser_client.get(RECOVERY_URL, {"status__exact": "failed"})
    html = failed.content.decode()

    assert failed.status_code == 200
    assert len(listed_attempts(html)) == 3
    assert "&lt;b&gt;no report&lt;/b&gt;" in html and "<b>no report</b>" not in html
    assert "\u202e" not in html  # the bidi control is shown, not applied
    first = recovery_attempts[0]
    assert f'href="/admin/escalation/escalation/{first.escalation_id}/change/"' in html
    assert f'href="/admin/escalation/failureevent/{first.failure_id}/change/"' in html
    for name, value, count in [
        ("status__exact", "succeeded", 2),
        ("status__exact", "scheduled", 7),
        ("action__exact", "rerun_failed_jobs", 12),
        ("action__exact", "database_probe", 0),
    ]:
        page = superuser_client.get(RECOVERY_URL, {name: value}).content.decode()
        assert len(listed_attempts(page)) == count, (name, value)


def test_a_recovery_attempt_is_read_only_even_for_a_superuser(superuser_client, recovery_attempts):
    attempt = recovery_attempts[0]

    page = superuser_client.get(f"{RECOVERY_URL}{attempt.pk}/change/")

    assert page.status_code == 200
    assertNotContains(page, 'name="_save"')
    assertContains(page, "Re-run the failed jobs")
    assertContains(page, "&lt;b&gt;no report&lt;/b&gt;")
    assert superuser_client.get(f"{RECOVERY_URL}add/").status_code == 403
    assert superuser_client.get(f"{RECOVERY_URL}{attempt.pk}/delete/").status_code == 403


def test_the_escalation_page_shows_its_recovery_attempts_inline(
    superuser_client, recovery_attempts
):
    attempt = recovery_attempts[3]

    page = superuser_client.get(f"{ESCALATIONS_URL}{attempt.escalation_id}/change/")

    assertContains(page, "Recovery attempts")
    assertContains(page, f'href="{RECOVERY_URL}{attempt.pk}/change/"')
    assertContains(page, "attempt 2 of unit-tests passed")


def test_recovery_attempts_need_their_view_permission(recovery_attempts):
    attempt = recovery_attempts[0]
    holder = UserFactory(username="recovery-viewer", is_staff=True)
    holder.user_permissions.add(Permission.objects.get(codename="view_recoveryattempt"))
    browser = Client()
    browser.force_login(holder)
    outsider = Client()
    outsider.force_login(UserFactory(username="staff-without", is_staff=True))

    assert browser.get(RECOVERY_URL).status_code == 200
    assert browser.get(f"{RECOVERY_URL}{attempt.pk}/change/").status_code == 200
    assertNotContains(browser.get(RECOVERY_URL), 'name="action"')  # nothing to run
    assert outsider.get(RECOVERY_URL).status_code == 403
    assert outsider.get(f"{RECOVERY_URL}{attempt.pk}/change/").status_code == 403


def test_the_recovery_pages_answer_in_a_bounded_number_of_queries(
    superuser_client, recovery_attempts, django_assert_max_num_queries
):
    attempt = recovery_attempts[0]
    for url in (RECOVERY_URL, f"{RECOVERY_URL}{attempt.pk}/change/"):
        superuser_client.get(url)
        with django_assert_max_num_queries(10):
            assert superuser_client.get(url).status_code == 200
