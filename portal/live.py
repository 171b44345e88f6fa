"""Live hints to open pages, sent off the request's path.

DESIGN.md: progress is state, pushes are hints. A page that receives a hint reloads the state it
shows; a page that misses one catches up on its next poll or reconnect. So a request need not wait
for the channel layer: :func:`publish` hands the message to one sender thread per process, which
sends in order on its own event loop. That spares each request a thread hop and a Redis round trip
(``async_to_sync(layer.group_send)`` cost an ingest about 1.5 ms, bench/ingest_bench.py).

Call :func:`publish` after commit (``transaction.on_commit``), never inside a transaction: a hint
about a change that rolls back would send pages to read state that never existed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger("portal.live")

_queue: queue.SimpleQueue[tuple[str, dict[str, Any]] | threading.Event] = queue.SimpleQueue()
_lock = threading.Lock()
_sender: tuple[int, threading.Thread] | None = None  # (pid, thread): a forked child starts its own


def publish(group: str, message: dict[str, Any]) -> None:
    """Queues ``message`` for the channel layer group ``group``; returns at once.

    The in-memory layer (no Redis: tests, a bare ``runserver``) keeps its messages in asyncio
    queues of the receivers' event loop, which another thread's loop cannot safely wake: there
    the message is sent from the caller, as ``async_to_sync`` routes it to that loop."""
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # a hint: pages poll and reload on reconnect
            logger.warning("live hint to %s not sent", group, exc_info=True)
        return
    _ensure_sender()
    _queue.put((group, message))


def flush(timeout: float = 5.0) -> bool:
    """Waits until every hint queued before this call was handed to the channel layer (for tests
    and for a process about to exit). True when it was in time."""
    _ensure_sender()
    done = threading.Event()
    _queue.put(done)
    return done.wait(timeout)


def _ensure_sender() -> None:
    global _sender
    pid = os.getpid()
    if _sender is not None and _sender[0] == pid and _sender[1].is_alive():
        return
    with _lock:
        if _sender is None or _sender[0] != pid or not _sender[1].is_alive():
            thread = threading.Thread(target=_run, name="portal-live-hints", daemon=True)
            thread.start()
            _sender = (pid, thread)


def _run() -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    while True:
        item = _queue.get()
        if isinstance(item, threading.Event):
            item.set()
            continue
        group, message = item
        layer = get_channel_layer()
        if layer is None:
            continue
        try:
            loop.run_until_complete(layer.group_send(group, message))
        except Exception:  # a hint: pages poll and reload on reconnect
            logger.warning("live hint to %s not sent", group, exc_info=True)
