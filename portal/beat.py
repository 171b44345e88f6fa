"""Celery beat scheduler that dispatches only while it holds the ``celery-beat`` lease.

Run as many beat processes as you like (one per machine, say); the one holding the lease sends
periodic tasks, the others wait. It is django-celery-beat's ``DatabaseScheduler`` with three changes:

* ``tick`` does nothing unless the elector says this process leads;
* every sent task is written back to the database at once (``sync_every_tasks = 1``) and a new
  leader re-reads the schedule when it takes over, so a handover neither repeats nor skips a tick;
* each sent message carries the fencing token and beat identity as headers, for tasks that check.
"""

from __future__ import annotations

import logging

from django_celery_beat.schedulers import DatabaseScheduler

from portal.leader import LeaderElector, elector_from_settings

logger = logging.getLogger(__name__)

BEAT_LEASE_NAME = "celery-beat"


class LeaderScheduler(DatabaseScheduler):
    _elector: LeaderElector | None = None

    def __init__(self, *args, **kwargs):
        self._reload_on_next_tick = False
        super().__init__(*args, **kwargs)
        self.sync_every_tasks = 1

    @property
    def elector(self) -> LeaderElector:
        # Started on first use, not in __init__: celery also builds a throw-away scheduler
        # (for its banner) that must never join the election.
        if self._elector is None:
            self._elector = elector_from_settings(
                BEAT_LEASE_NAME, "beat", on_started_leading=self._on_started_leading
            )
            self._elector.start()
        return self._elector

    def _on_started_leading(self, fencing_token: int) -> None:
        self._reload_on_next_tick = True

    def tick(self, *args, **kwargs) -> float:
        if not self.elector.is_leader:
            return min(self.elector.config.retry_period, self.max_interval)
        if self._reload_on_next_tick:
            # The previous leader wrote last_run_at of everything it sent; start from that.
            self._reload_on_next_tick = False
            # Take the current change stamp first, so the re-read is the baseline: otherwise the
            # next ``schedule`` access compares with the stamp seen when this process last looked
            # (at start-up, for a standby), reports a change, reloads while the heap is being
            # built and invalidates it; the heap is then rebuilt from entries that predate the
            # sends of the tick in between, and every task due at takeover is sent twice.
            self.schedule_changed()
            self._initial_read = True
            self._heap = None
        return super().tick(*args, **kwargs)

    def apply_entry(self, entry, producer=None):
        token = self.elector.fencing_token
        if token is None:
            # Lost the lease between tick and send: do not send, and do not record it as run.
            self._dirty.discard(entry.name)
            logger.info("beat: not leading, %s left to the leader", entry.name)
            return
        headers = {
            **entry.options.get("headers", {}),
            "portal_fencing_token": token,
            "portal_beat_identity": self.elector.config.identity,
        }
        entry.options = {**entry.options, "headers": headers}
        super().apply_entry(entry, producer=producer)

    def close(self):
        if self._elector is not None:
            self._elector.stop(release=True)
        super().close()
