"""Tickets in dependency order: a ticket comes after every ticket it depends on.

Ties keep the session's own order, so a session without dependencies exports in ``order``.
A cycle is a validation error that names it (``DependencyCycle``).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from exports.errors import DependencyCycle, UnknownDependency

T = TypeVar("T")


def order_by_dependencies(
    orders: Iterable[int], depends_on: Mapping[int, Iterable[int]]
) -> list[int]:
    """``orders`` sorted so that each comes after everything it ``depends_on`` (Kahn's algorithm
    with a heap: among the ready ones, the smallest order first)."""
    nodes = sorted(set(orders))
    known = set(nodes)
    blockers: dict[int, set[int]] = {node: set() for node in nodes}
    dependents: dict[int, list[int]] = {node: [] for node in nodes}
    for node in nodes:
        for blocker in depends_on.get(node, ()):
            if blocker not in known:
                raise UnknownDependency(node, blocker)
            if blocker == node:
                raise DependencyCycle([node])
            if blocker not in blockers[node]:
                blockers[node].add(blocker)
                dependents[blocker].append(node)
    waiting = {node: len(blockers[node]) for node in nodes}
    ready = [node for node in nodes if waiting[node] == 0]
    heapq.heapify(ready)
    result: list[int] = []
    while ready:
        node = heapq.heappop(ready)
        result.append(node)
        for dependent in dependents[node]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(result) < len(nodes):
        raise DependencyCycle(_find_cycle({n: blockers[n] for n in nodes if waiting[n] > 0}))
    return result


def _find_cycle(blockers: Mapping[int, set[int]]) -> list[int]:
    """One cycle among nodes that all wait on something: walk blockers until a node repeats."""
    node = min(blockers)
    seen: dict[int, int] = {}
    path: list[int] = []
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(b for b in blockers[node] if b in blockers)
    cycle = path[seen[node] :]
    cycle.reverse()  # blocker first: "#1 -> #2" reads "#1 blocks #2"
    return cycle


def dependency_order(tickets: Sequence[T], depends_on: Mapping[int, Iterable[int]]) -> list[T]:
    """``tickets`` (objects with an ``order``) in dependency order."""
    by_order = {ticket.order: ticket for ticket in tickets}  # type: ignore[attr-defined]
    return [by_order[order] for order in order_by_dependencies(by_order, depends_on)]
