"""The five metrics of seed 003, with exactly its names and labels.

Defined once here and counted wherever the work happens (web or worker). Under
``PROMETHEUS_MULTIPROC_DIR`` (set by ``make run`` and in production) prometheus_client writes
them to shared files, and ``/metrics`` (django-prometheus) aggregates every process.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

TICKET_CREATION_TOTAL = Counter(
    "itsm_ticket_creation",  # exported as itsm_ticket_creation_total
    "Ticket creation attempts by platform and final outcome.",
    ["platform", "outcome"],
)
TICKET_CREATION_DURATION = Histogram(
    "itsm_ticket_creation_duration_seconds",
    "Wall time of one ticket creation, retries and reconciliation included.",
    ["platform", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0),
)
TICKET_RETRY_ATTEMPTS = Counter(
    "itsm_ticket_retry_attempts",  # exported as itsm_ticket_retry_attempts_total
    "Retries of outbound ITSM calls (each retry after the first attempt counts once).",
    ["platform"],
)
VALIDATION_ERRORS = Counter(
    "itsm_validation_errors",  # exported as itsm_validation_errors_total
    "Payload validation failures before any call, by platform and field.",
    ["platform", "field"],
)
TEMPLATE_RENDERING_ERRORS = Counter(
    "itsm_template_rendering_errors",  # exported as itsm_template_rendering_errors_total
    "Template renders that failed (missing variables, unsafe or invalid syntax).",
    ["template_name"],
)

# Outcomes of TICKET_CREATION_TOTAL / TICKET_CREATION_DURATION.
OUTCOME_CREATED = "created"  # a new external object
OUTCOME_EXISTING = "existing"  # reconciliation found the object an earlier attempt made
OUTCOME_VALIDATION_ERROR = "validation_error"
OUTCOME_REJECTED = "rejected"  # a 4xx from the platform
OUTCOME_FAILED = "failed"  # retries exhausted (429/5xx/timeouts)
OUTCOMES = (
    OUTCOME_CREATED,
    OUTCOME_EXISTING,
    OUTCOME_VALIDATION_ERROR,
    OUTCOME_REJECTED,
    OUTCOME_FAILED,
)

# SLA tracking (seed 003 phase 3). The breach counter is incremented by the periodic check; the two
# gauges are read from the database at scrape time (SlaCollector), so every machine reports the
# same current numbers and none keeps exporting a stale value.
SLA_BREACHES_TOTAL = Counter(
    "itsm_sla_breaches",  # exported as itsm_sla_breaches_total
    "Tickets found past their SLA deadline by the periodic check.",
    ["platform"],
)


class SlaCollector:
    """``itsm_tickets_sla_open`` and ``itsm_tickets_sla_breached`` by platform, from the tickets.

    ``source`` returns ``{platform: (open, breached)}``; the app passes the SLA service's
    function when it registers the collector, so this module imports no service.
    """

    def __init__(self, source: Callable[[], dict[str, tuple[int, int]]]) -> None:
        self.source = source

    def collect(self):
        opened = GaugeMetricFamily(
            "itsm_tickets_sla_open", "Open tickets whose SLA is tracked.", labels=["platform"]
        )
        breached = GaugeMetricFamily(
            "itsm_tickets_sla_breached",
            "Open tickets currently past their SLA deadline.",
            labels=["platform"],
        )
        for platform, (open_count, breached_count) in self.source().items():
            opened.add_metric([platform], open_count)
            breached.add_metric([platform], breached_count)
        yield opened
        yield breached


def initialise_series() -> None:
    """Creates every label combination at zero, so the first event after a deploy is visible
    to ``rate()``/``increase()`` (a series that appears at 1 has no increase)."""
    for platform in ("jira", "servicenow", "linear"):
        for outcome in OUTCOMES:
            TICKET_CREATION_TOTAL.labels(platform=platform, outcome=outcome)
            TICKET_CREATION_DURATION.labels(platform=platform, outcome=outcome)
    for platform in ("jira", "servicenow", "slack", "linear", "github"):
        TICKET_RETRY_ATTEMPTS.labels(platform=platform)
    for platform in ("jira", "servicenow"):
        SLA_BREACHES_TOTAL.labels(platform=platform)
