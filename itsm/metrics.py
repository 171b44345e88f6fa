"""The five metrics of seed 003, with exactly its names and labels.

Defined once here and counted wherever the work happens (web or worker). Under
``PROMETHEUS_MULTIPROC_DIR`` (set by ``make run`` and in production) prometheus_client writes
them to shared files, and ``/metrics`` (django-prometheus) aggregates every process.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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

# SLA tracking (seed 003 phase 3). The gauges are set by the leader's periodic SLA check; in
# multiprocess mode the most recent value wins.
SLA_BREACHES_TOTAL = Counter(
    "itsm_sla_breaches",  # exported as itsm_sla_breaches_total
    "Tickets found past their SLA deadline by the periodic check.",
    ["platform"],
)
SLA_BREACHED = Gauge(
    "itsm_tickets_sla_breached",
    "Open tickets currently past their SLA deadline.",
    ["platform"],
    multiprocess_mode="mostrecent",
)
SLA_OPEN = Gauge(
    "itsm_tickets_sla_open",
    "Open tickets whose SLA is tracked.",
    ["platform"],
    multiprocess_mode="mostrecent",
)
