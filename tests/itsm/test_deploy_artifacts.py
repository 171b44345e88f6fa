"""The ITSM monitoring artefacts: Prometheus rules (promtool) and the Grafana dashboard.

``promtool`` (Debian package ``prometheus``) checks the rules and runs their unit tests
(``deploy/prometheus/itsm-alerts.test.yml``) and parses every dashboard query. Without it those
tests skip, or fail under ``REQUIRE_SERVICES=1`` as in tests/conftest.py. The rest reads the files:
every query names only metrics the portal exports, the required panels and alerts exist, and each
alert has a runbook section in docs/observability.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram, Summary

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "itsm-dashboard.json"
RULES = ROOT / "deploy" / "prometheus" / "itsm-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "itsm-alerts.test.yml"
DOCS = ROOT / "docs" / "observability.md"

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
PROMTOOL = os.environ.get("PROMTOOL_PATH", "promtool")

# Seed 003's five metrics as exported (counters get _total, the histogram its three series) and
# the SLA metrics; nothing else may appear in a query.
SEED_METRICS = {
    "itsm_ticket_creation_total",
    "itsm_ticket_creation_duration_seconds_bucket",
    "itsm_ticket_creation_duration_seconds_sum",
    "itsm_ticket_creation_duration_seconds_count",
    "itsm_ticket_retry_attempts_total",
    "itsm_validation_errors_total",
    "itsm_template_rendering_errors_total",
}
SLA_METRICS = {"itsm_tickets_sla_breached", "itsm_tickets_sla_open", "itsm_sla_breaches_total"}
KNOWN_METRICS = SEED_METRICS | SLA_METRICS

REQUIRED_PANELS = (
    "throughput",
    "error rate",
    "retry rate",
    "p95",
    "validation errors",
    "validation error ratio",
    "template rendering errors",
    "sla compliance",
    "sla breaches",
)
REQUIRED_ALERTS = (
    "ItsmHighErrorRate",
    "ItsmCreationLatencyP95High",
    "ItsmValidationErrorRateHigh",
    "ItsmSlaBreaches",
)

# Grafana's variables, replaced by plausible values before promtool parses a dashboard query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "6h",
    "$platform": ".*",
}
PROMQL_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "group_left",
    "group_right",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    text = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # grouping labels
    text = re.sub(r"\$\w+", " ", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*", text):
        followed_by_call = re.match(r"\s*\(", text[match.end() :])
        if not followed_by_call and match.group().lower() not in PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which(PROMTOOL)
    if path is None:
        reason = f"needs {PROMTOOL} (apt-get install -y prometheus)"
        if REQUIRE_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES=1 but this test {reason}", pytrace=False)
        pytest.skip(reason)
    return path


def run_promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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


# ---------------------------------------------------------------- promtool


def test_rules_pass_promtool_check(promtool):
    result = run_promtool(promtool, "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool):
    result = run_promtool(promtool, "test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def dashboard_queries_as_rules(query_panels, variables: dict[str, str], path: Path) -> Path:
    """Every dashboard query, its Grafana variables filled in, as a recording rule in ``path``,
    for ``promtool check rules`` to parse (shared with the other apps' dashboards)."""
    recording = []
    for panel in query_panels:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in variables.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: unknown variable in {target['expr']!r}"
            record = f"dashboard:panel_{panel['id']}_{target['refId']}:check"
            recording.append({"record": record, "expr": expr})
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": recording}]}))
    return path


def test_dashboard_queries_parse(promtool, query_panels, tmp_path):
    """Every dashboard query, its Grafana variables filled in, is valid PromQL for promtool."""
    rules_file = dashboard_queries_as_rules(
        query_panels, GRAFANA_VARIABLES, tmp_path / "dashboard-queries.yml"
    )

    result = run_promtool(promtool, "check", "rules", rules_file)

    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- the metric names


def exported_names(collector) -> set[str]:
    names = set()
    for family in collector.describe():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
        elif family.type == "summary":
            names |= {family.name, f"{family.name}_sum", f"{family.name}_count"}
        else:
            names.add(family.name)
    return names


@pytest.mark.django_db
def test_known_metrics_are_the_ones_the_code_exports():
    from itsm import metrics

    collectors = [
        value
        for value in vars(metrics).values()
        if isinstance(value, Counter | Gauge | Histogram | Summary)
    ]
    exported = set().union(*(exported_names(c) for c in collectors))
    # The SLA gauges are read from the database at scrape time by a custom collector.
    from itsm.services import sla

    collector = metrics.SlaCollector(sla.open_and_breached_by_platform)
    exported |= {family.name for family in collector.collect()}

    assert exported >= SEED_METRICS
    assert exported >= SLA_METRICS, "itsm/metrics.py lacks the SLA metrics the dashboard reads"
    assert {name for name in exported if name.startswith("itsm_")} <= KNOWN_METRICS


def test_metric_names_are_found_in_promql():
    expr = (
        'histogram_quantile(0.95, sum by (le, platform) (rate(a_bucket{x="b c", le!="1e3"}'
        "[$__rate_interval]))) / on (platform) group_left b_total offset 5m > bool 1e3 "
        "or rule:x:rate5m"
    )

    assert metric_names(expr) == {"a_bucket", "b_total", "rule:x:rate5m"}


# ---------------------------------------------------------------- the dashboard


def test_dashboard_is_importable_with_a_prometheus_input(dashboard):
    assert dashboard["title"] == "ITSM integrations"
    assert dashboard["uid"]
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["id"] is None
    inputs = {i["name"]: i for i in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"


def test_platform_variable_lists_the_platforms(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    platform = variables["platform"]
    query = platform["query"]
    query = query["query"] if isinstance(query, dict) else query

    assert query == "label_values(itsm_ticket_creation_total, platform)"
    assert platform["datasource"]["uid"] == "${DS_PROMETHEUS}"
    assert platform["includeAll"] and platform["multi"]


def test_every_panel_queries_the_prometheus_input(query_panels):
    assert len({p["id"] for p in query_panels}) == len(query_panels)
    for panel in query_panels:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target.get("datasource", panel["datasource"])["uid"] == "${DS_PROMETHEUS}"


def test_every_query_names_only_exported_metrics(query_panels):
    for panel in query_panels:
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, f"{panel['title']}: no metric in {target['expr']!r}"
            assert names <= KNOWN_METRICS, f"{panel['title']}: unknown {names - KNOWN_METRICS}"


def test_queries_use_the_rate_interval_and_the_platform_filter(query_panels):
    for panel in query_panels:
        for target in panel["targets"]:
            expr = target["expr"]
            durations = re.findall(r"\[([^\]]*)\]", expr)
            assert set(durations) <= {"$__rate_interval", "$__range"}, panel["title"]
            if metric_names(expr) - {"itsm_template_rendering_errors_total"}:
                assert 'platform=~"$platform"' in expr, panel["title"]


def test_every_metric_has_a_panel(query_panels):
    used = {
        name for panel in query_panels for t in panel["targets"] for name in metric_names(t["expr"])
    }

    assert used == KNOWN_METRICS


def test_required_panels_exist(query_panels):
    titles = [p["title"].lower() for p in query_panels]
    for required in REQUIRED_PANELS:
        assert any(required in title for title in titles), f"no panel titled like {required!r}"


@pytest.mark.parametrize(
    ("title", "threshold"),
    [("p95 creation latency", 2), ("Error rate", 0.05), ("Validation error ratio", 0.01)],
)
def test_target_lines_are_drawn(query_panels, title, threshold):
    panel = next(p for p in query_panels if p["title"] == title)
    defaults = panel["fieldConfig"]["defaults"]

    assert threshold in [step["value"] for step in defaults["thresholds"]["steps"]]
    assert defaults["custom"]["thresholdsStyle"]["mode"] != "off"


def test_p95_panel_is_a_histogram_quantile_by_platform(query_panels):
    panel = next(p for p in query_panels if p["title"] == "p95 creation latency")
    expr = re.sub(r"\s+", "", panel["targets"][0]["expr"])

    assert expr.startswith("histogram_quantile(0.95,sumby(le,platform)(rate(")
    assert "itsm_ticket_creation_duration_seconds_bucket" in expr


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


def test_rules_name_only_exported_metrics_and_recorded_series(rules):
    recorded = {rule["record"] for rule in rules if "record" in rule}
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule
        assert names <= KNOWN_METRICS | recorded, names - KNOWN_METRICS - recorded


def test_every_alert_is_tested_firing_and_silent(alerts):
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == [RULES.name]
    cases = [case for test in tests["tests"] for case in test.get("alert_rule_test", [])]
    for name in alerts:
        expected = [case.get("exp_alerts") or [] for case in cases if case["alertname"] == name]
        assert any(expected), f"{name} is never tested firing"
        assert not all(expected), f"{name} is never tested silent"
