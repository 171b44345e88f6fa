"""The escalation monitoring artefacts: the Grafana dashboard and the Prometheus alerts of the CI
failure escalation matrix, checked as tests/itsm/test_deploy_artifacts.py checks the ITSM ones
(and with its helpers): promtool checks the rules, runs their unit tests and parses every
dashboard query; every query names only metrics the portal exports; the required panels and
alerts exist; each alert is tested firing and silent and has a runbook in docs/observability.md.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import Counter

from tests.itsm import test_deploy_artifacts as itsm_artifacts
from tests.itsm.test_deploy_artifacts import (
    dashboard_queries_as_rules,
    exported_names,
    github_anchor,
    metric_names,
    run_promtool,
)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "escalation-dashboard.json"
RULES = ROOT / "deploy" / "prometheus" / "escalation-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "escalation-alerts.test.yml"
DOCS = ROOT / "docs" / "observability.md"

# escalation/metrics.py as exported (counters get _total; the gauges come from the collector).
ESCALATION_METRICS = {
    "escalation_failures_ingested_total",
    "escalation_escalations_opened_total",
    "escalation_sla_misses_total",
    "escalation_notifications_delivered_total",
    "escalation_open",
    "escalation_sla_overdue",
}
# Outbound retries of the clients that deliver the notifications (the ITSM metric).
ITSM_METRICS = {"itsm_ticket_retry_attempts_total"}
KNOWN_METRICS = ESCALATION_METRICS | ITSM_METRICS
GAUGES = {"escalation_open", "escalation_sla_overdue"}
WITHOUT_FAILURE_TYPE = {"escalation_notifications_delivered_total", *ITSM_METRICS}

REQUIRED_PANELS = (
    "failures ingested by type",
    "open escalations",
    "past sla",
    "sla misses",
    "notifications delivered",
)
REQUIRED_ALERTS = (
    "EscalationCriticalSlaMissed",
    "EscalationSlaMissed",
    "EscalationsOverdue",
    "EscalationSlackNotificationsStalled",
    "EscalationTicketsStalled",
)
GRAFANA_VARIABLES = {**itsm_artifacts.GRAFANA_VARIABLES, "$failure_type": ".*"}

promtool = itsm_artifacts.promtool  # the same fixture: promtool, or skip (fail if required)


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def query_panels(dashboard) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def alerts(rules) -> dict[str, dict]:
    return {rule["alert"]: rule for rule in rules if "alert" in rule}


def queries(panels: list[dict]):
    for panel in panels:
        for target in panel["targets"]:
            yield panel, target["expr"]


# ---------------------------------------------------------------- promtool


def test_rules_pass_promtool_check(promtool):
    result = run_promtool(promtool, "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool):
    result = run_promtool(promtool, "test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_parse(promtool, query_panels, tmp_path):
    rules_file = dashboard_queries_as_rules(
        query_panels, GRAFANA_VARIABLES, tmp_path / "dashboard-queries.yml"
    )

    result = run_promtool(promtool, "check", "rules", rules_file)

    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- the metric names


@pytest.mark.django_db
def test_known_metrics_are_the_ones_the_code_exports():
    from escalation import metrics
    from escalation.services import reports

    exported = set().union(
        *(exported_names(value) for value in vars(metrics).values() if isinstance(value, Counter))
    )
    collector = metrics.OpenEscalationsCollector(reports.open_by_type)
    exported |= {family.name for family in collector.collect()}

    assert exported == ESCALATION_METRICS


# ---------------------------------------------------------------- the dashboard


def test_dashboard_is_importable_with_a_prometheus_input(dashboard):
    assert dashboard["title"] == "CI failure escalation"
    assert dashboard["uid"] == "ci-escalation"
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["id"] is None
    inputs = {i["name"]: i for i in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"


def test_failure_type_variable_lists_the_types(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    failure_type = variables["failure_type"]

    # A counter created at zero for every type when the app starts, so every type is listed.
    assert failure_type["query"]["query"] == (
        "label_values(escalation_escalations_opened_total, failure_type)"
    )
    assert failure_type["datasource"]["uid"] == "${DS_PROMETHEUS}"
    assert failure_type["includeAll"] and failure_type["multi"]


def test_every_panel_queries_the_prometheus_input(query_panels):
    assert len({p["id"] for p in query_panels}) == len(query_panels)
    for panel in query_panels:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"])["uid"] == "${DS_PROMETHEUS}"


def test_panels_do_not_overlap(dashboard):
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_query_names_only_exported_metrics(query_panels):
    for panel, expr in queries(query_panels):
        names = metric_names(expr)
        assert names, f"{panel['title']}: no metric in {expr!r}"
        assert names <= KNOWN_METRICS, f"{panel['title']}: unknown {names - KNOWN_METRICS}"


def test_every_escalation_metric_has_a_panel(query_panels):
    used = {name for _panel, expr in queries(query_panels) for name in metric_names(expr)}

    assert used >= ESCALATION_METRICS


def test_required_panels_exist(query_panels):
    titles = [p["title"].lower() for p in query_panels]
    for required in REQUIRED_PANELS:
        assert any(required in title for title in titles), f"no panel titled like {required!r}"


def test_queries_use_the_grafana_intervals_and_the_failure_type_filter(query_panels):
    for panel, expr in queries(query_panels):
        durations = re.findall(r"\[([^\]]*)\]", expr)
        assert set(durations) <= {"$__rate_interval", "$__range"}, panel["title"]
        if metric_names(expr) - WITHOUT_FAILURE_TYPE:
            assert 'failure_type=~"$failure_type"' in expr, panel["title"]


def test_gauges_are_read_with_max_so_machines_count_once(query_panels, rules):
    """Every machine exports the same gauge values (read from the database at scrape time)."""
    expressions = [expr for _panel, expr in queries(query_panels)] + [r["expr"] for r in rules]
    for expr in expressions:
        for gauge in GAUGES & metric_names(expr):
            assert re.search(rf"max by \(failure_type\) \({gauge}\b", expr), expr


# ---------------------------------------------------------------- the alert rules


def test_required_alerts_exist(alerts):
    assert set(REQUIRED_ALERTS) <= set(alerts)


def test_alerts_have_severity_and_annotations(alerts):
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = alert["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        assert annotations["runbook_url"] == f"docs/observability.md#{name.lower()}"


def test_runbooks_exist_for_every_alert(alerts):
    headings = re.findall(r"^#+\s+(.+)$", DOCS.read_text(), flags=re.MULTILINE)
    anchors = {github_anchor(h) for h in headings}
    for name, alert in alerts.items():
        assert alert["annotations"]["runbook_url"].split("#", 1)[1] in anchors, name


def test_rules_name_only_exported_metrics(rules):
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule
        assert names <= KNOWN_METRICS, names - KNOWN_METRICS


def test_the_critical_sla_alert_covers_the_seeds_critical_types(alerts):
    """The types whose miss pages someone are the seed's CRITICAL, zero-tolerance rows; the
    other SLA alert takes every other type."""
    seed = importlib.import_module("escalation.migrations.0002_seed_matrix")
    critical = {
        failure_type
        for failure_type, row in seed.ROUTING.items()
        if row[2] == "CRITICAL" and row[6] == "zero_tolerance"
    }
    critical_expr = alerts["EscalationCriticalSlaMissed"]["expr"]
    other_expr = alerts["EscalationSlaMissed"]["expr"]

    selected = re.search(r'failure_type=~"([^"]+)"', critical_expr)[1]
    excluded = re.search(r'failure_type!~"([^"]+)"', other_expr)[1]
    assert set(selected.split("|")) == critical
    assert excluded == selected


def test_every_alert_is_tested_firing_and_silent(alerts):
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == [RULES.name]
    cases = [case for test in tests["tests"] for case in test.get("alert_rule_test", [])]
    for name in alerts:
        expected = [case.get("exp_alerts") or [] for case in cases if case["alertname"] == name]
        assert any(expected), f"{name} is never tested firing"
        assert not all(expected), f"{name} is never tested silent"
