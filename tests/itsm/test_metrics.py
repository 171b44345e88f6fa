"""The five Prometheus metrics of seed 003: exact names and labels, and what ``/metrics`` shows.

Events are produced for real (the Jira client against the fake, the template service), then
``/metrics`` is scraped with Django's test client and parsed with prometheus_client's parser.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from itsm.clients import client_for
from itsm.config import parse_config
from itsm.errors import TemplateError, UpstreamRejected, ValidationFailed
from itsm.services.tickets import create_from_template

pytestmark = pytest.mark.django_db

# Seed 003, "Required Prometheus metrics": family name -> (type, label names).
SEED_METRICS = {
    "itsm_ticket_creation": ("counter", {"platform", "outcome"}),
    "itsm_ticket_creation_duration_seconds": ("histogram", {"platform", "outcome"}),
    "itsm_ticket_retry_attempts": ("counter", {"platform"}),
    "itsm_validation_errors": ("counter", {"platform", "field"}),
    "itsm_template_rendering_errors": ("counter", {"template_name"}),
}

Scrape = dict[tuple[str, frozenset], float]


def scrape(client) -> Scrape:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def grew(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in after, f"{name}{labels} is not exported"
    return after[key] - before.get(key, 0.0)


@pytest.fixture
def jira(itsm_endpoints):
    raw = json.loads(Path(settings.ITSM_CONFIG_PATH).read_text(encoding="utf-8"))
    raw["retry_policy"].update(retry_delay_seconds=0.01)
    with client_for("jira", config=parse_config(raw, environ={})) as client:
        yield client


def produce_one_of_each_outcome(jira, fakes) -> None:
    fakes.faults(platform="jira", status=503, count=1, path_contains="/issue", method="POST")
    jira.create_ticket("OPS", "RCA Required: nightly", "Job ID: 7")
    with pytest.raises(UpstreamRejected):
        jira.create_ticket("NOPE", "RCA Required: nightly", "Job ID: 7")
    with pytest.raises(ValidationFailed):
        jira.create_ticket("OPS", "two\nlines", "Job ID: 7")
    with pytest.raises(TemplateError):
        create_from_template(
            job_id="7", platform="servicenow", template_name="rca_incident", variables={}
        )


def test_metrics_endpoint_shows_each_seed_metric_after_real_tickets(client, jira, fakes):
    before = scrape(client)

    produce_one_of_each_outcome(jira, fakes)
    after = scrape(client)

    created = {"platform": "jira", "outcome": "created"}
    assert grew(before, after, "itsm_ticket_creation_total", **created) == 1
    assert (
        grew(before, after, "itsm_ticket_creation_total", platform="jira", outcome="rejected") == 1
    )
    assert (
        grew(
            before, after, "itsm_ticket_creation_total", platform="jira", outcome="validation_error"
        )
        == 1
    )
    assert grew(before, after, "itsm_ticket_creation_duration_seconds_count", **created) == 1
    assert (
        grew(before, after, "itsm_ticket_creation_duration_seconds_bucket", le="+Inf", **created)
        == 1
    )
    assert grew(before, after, "itsm_ticket_retry_attempts_total", platform="jira") == 1
    assert (
        grew(before, after, "itsm_validation_errors_total", platform="jira", field="summary") == 1
    )
    assert (
        grew(before, after, "itsm_template_rendering_errors_total", template_name="rca_incident")
        == 1
    )


def test_metric_names_types_and_labels_are_exactly_the_seeds(jira, fakes):
    produce_one_of_each_outcome(jira, fakes)

    exported = {
        family.name: (family.type, {k for s in family.samples for k in s.labels} - {"le"})
        for family in REGISTRY.collect()
        if family.name in SEED_METRICS
    }

    assert exported == SEED_METRICS


def test_the_itsm_app_exports_no_ticket_metric_beyond_the_seeds():
    ticket_families = {
        family.name
        for family in REGISTRY.collect()
        if family.name.startswith(("itsm_ticket", "itsm_validation", "itsm_template"))
    }

    assert ticket_families == set(SEED_METRICS)


def test_creation_series_exist_at_zero_before_the_first_ticket(client):
    scraped = scrape(client)

    for outcome in ("created", "existing", "validation_error", "rejected", "failed"):
        key = (
            "itsm_ticket_creation_total",
            frozenset({"platform": "jira", "outcome": outcome}.items()),
        )
        assert key in scraped


def test_sla_gauges_are_exported_by_platform(client):
    scraped = scrape(client)

    for name in ("itsm_tickets_sla_open", "itsm_tickets_sla_breached"):
        for platform in ("jira", "servicenow"):
            assert scraped[(name, frozenset({"platform": platform}.items()))] == 0.0


COUNT_IN_CHILD = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
import django
django.setup()
from itsm import metrics
metrics.TICKET_CREATION_TOTAL.labels(platform="jira", outcome=sys.argv[1]).inc(int(sys.argv[2]))
"""


def test_metrics_aggregate_the_counts_of_every_process_sharing_the_multiprocess_directory(
    client, tmp_path, monkeypatch
):
    """Web and worker processes each write their samples to PROMETHEUS_MULTIPROC_DIR; one scrape
    of any web process shows their sum. Two child processes stand in for a web and a worker."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for outcome, count in (("created", 2), ("created", 3), ("rejected", 1)):
        subprocess.run(
            [sys.executable, "-c", COUNT_IN_CHILD, outcome, str(count)],
            cwd=settings.BASE_DIR, env=env, check=True, timeout=60,
        )  # fmt: skip
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    samples = scrape(client)

    created = (
        "itsm_ticket_creation_total",
        frozenset({"platform": "jira", "outcome": "created"}.items()),
    )
    rejected = (
        "itsm_ticket_creation_total",
        frozenset({"platform": "jira", "outcome": "rejected"}.items()),
    )
    assert samples[created] == 5
    assert samples[rejected] == 1
    # The SLA gauges come from the database, whatever the processes wrote.
    assert ("itsm_tickets_sla_open", frozenset({"platform": "jira"}.items())) in samples
