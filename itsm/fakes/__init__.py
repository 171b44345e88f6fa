"""Strict local fakes of Jira, ServiceNow, Slack, Linear and GitHub for tests, the demo and benchmarks.

``python -m itsm.fakes --port 0`` serves all five on one loopback port (see ``docs/fakes.md``);
:class:`itsm.fakes.server.FakeServer` does the same in-process. Plain Python: no Django imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import FakeServer

__all__ = ["FakeServer"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``python -m itsm.fakes.adf_schema`` does not load the whole server.
    if name == "FakeServer":
        from .server import FakeServer

        return FakeServer
    raise AttributeError(name)
