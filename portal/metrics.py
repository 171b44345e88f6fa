"""Collectors that read current state at scrape time, registered by the apps that own the state.

``/metrics`` serves every process's counters (multiprocess files when configured) plus these:
an app registers a collector from its ``AppConfig.ready`` (itsm's SLA gauges read the tickets),
so the portal never imports an app to know what to scrape.
"""

from __future__ import annotations

from typing import Any

_SCRAPE_COLLECTORS: list[Any] = []


def register_scrape_collector(collector: Any) -> None:
    """Adds a prometheus_client collector (an object with ``collect()``) to every scrape."""
    if not any(existing is collector for existing in _SCRAPE_COLLECTORS):
        _SCRAPE_COLLECTORS.append(collector)


def scrape_collectors() -> list[Any]:
    return list(_SCRAPE_COLLECTORS)
