"""Prometheus metrics of the CI failure escalation matrix (issue 9).

Counters are counted where the work happens (web or worker); the open-escalation gauge is read
from the database at scrape time (registered with ``portal.metrics`` by the app), so every
machine reports the same current number.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

FAILURES_INGESTED = Counter(
    "escalation_failures_ingested",  # exported as escalation_failures_ingested_total
    "CI failures reported and classified, by failure type and source.",
    ["failure_type", "source"],
)
ESCALATIONS_OPENED = Counter(
    "escalation_escalations_opened",
    "Escalations opened (a new fingerprint in a repository), by failure type.",
    ["failure_type"],
)
SLA_MISSES = Counter(
    "escalation_sla_misses",
    "Escalation SLAs that ran out before resolution, by failure type.",
    ["failure_type"],
)
NOTIFICATIONS_DELIVERED = Counter(
    "escalation_notifications_delivered",
    "Notifications delivered by the worker (Slack messages, tickets, comments), by channel.",
    ["channel"],
)


class OpenEscalationsCollector:
    """``escalation_open`` and ``escalation_sla_overdue`` by failure type."""

    def __init__(self, source: Callable[[], dict[str, tuple[int, int]]]) -> None:
        self.source = source

    def collect(self):
        opened = GaugeMetricFamily(
            "escalation_open", "Open escalations by failure type.", labels=["failure_type"]
        )
        overdue = GaugeMetricFamily(
            "escalation_sla_overdue",
            "Open escalations whose SLA ran out, by failure type.",
            labels=["failure_type"],
        )
        for failure_type, (open_count, overdue_count) in sorted(self.source().items()):
            opened.add_metric([failure_type], open_count)
            overdue.add_metric([failure_type], overdue_count)
        yield opened
        yield overdue


SOURCES = ("api", "github", "gitlab")


def initialise_series(failure_types: list[str]) -> None:
    """Every label combination at zero, so the first event after a deploy shows in increase()."""
    for failure_type in failure_types:
        for source in SOURCES:
            FAILURES_INGESTED.labels(failure_type=failure_type, source=source)
        ESCALATIONS_OPENED.labels(failure_type=failure_type)
        SLA_MISSES.labels(failure_type=failure_type)
    for channel in ("slack", "linear", "jira"):
        NOTIFICATIONS_DELIVERED.labels(channel=channel)
