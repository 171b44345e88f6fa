"""Celery beat scheduler that dispatches only while it holds the ``celery-beat`` lease.

Run as many beat processes as you like (one per machine, say); the one holding the lease sends
periodic tasks, the others wait. It is django-celery-beat's ``DatabaseScheduler`` with these
changes, which together make a handover send each due run once:

* ``tick`` does nothing unless the elector gives it a fencing token, and the first tick of every
  term re-reads the schedule (each entry's ``last_run_at``) from the database before it sends
  anything. The tick notices the new term itself, from the token: it cannot run ahead of a
  callback from the election thread and send from what a standby loaded long ago.
* a run is claimed before it is sent: one conditional ``UPDATE`` moves the entry's ``last_run_at``
  from the value the "is it due?" decision was based on to the time of this run. If the row holds
  another value, another beat (a previous leader, or one that still believes it leads after a lost
  renewal) has sent this run: the beat does not send, and re-reads the schedule. A crash between
  claim and send skips that one run; the next comes on schedule.
* the entry a send advances replaces the old one in the in-memory schedule. django-celery-beat
  keeps the old one there, so a heap rebuilt after a schedule change (an admin edit, another beat
  starting) sent again what had just been sent.
* each sent message carries the fencing token and beat identity as headers, for tasks that check.
"""

from __future__ import annotations

import logging

from django.db.models import F
from django.db.utils import DatabaseError, InterfaceError
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from portal.leader import LeaderElector, elector_from_settings

logger = logging.getLogger(__name__)

BEAT_LEASE_NAME = "celery-beat"


class StoredEntry(ModelEntry):
    """A schedule entry that remembers the ``last_run_at`` its database row held when read.

    ``ModelEntry`` fills an empty ``last_run_at`` with a default, and advancing an entry writes the
    new time into the same model object; the claim needs the value the row really holds.
    """

    def __init__(self, model, app=None):
        self.stored_last_run_at = model.last_run_at
        super().__init__(model, app=app)


class LeaderScheduler(DatabaseScheduler):
    Entry = StoredEntry
    _elector: LeaderElector | None = None

    def __init__(self, *args, **kwargs):
        # The fencing token of the term whose first tick re-read the schedule; None: re-read
        # before anything is sent (a standby's copy is stale, and so is one a claim contradicted).
        self._schedule_term: int | None = None
        super().__init__(*args, **kwargs)

    @property
    def elector(self) -> LeaderElector:
        # Started on first use, not in __init__: celery also builds a throw-away scheduler
        # (for its banner) that must never join the election.
        if self._elector is None:
            self._elector = elector_from_settings(BEAT_LEASE_NAME, "beat")
            self._elector.start()
        return self._elector

    @elector.setter
    def elector(self, elector: LeaderElector) -> None:
        """An elector of the caller's (tests step one by hand); it is used as it is, not started."""
        self._elector = elector

    def tick(self, *args, **kwargs) -> float:
        token = self.elector.fencing_token
        if token is None:
            self._schedule_term = None
            return min(self.elector.config.retry_period, self.max_interval)
        if token != self._schedule_term:
            self._reread_schedule()
            self._schedule_term = token
        return super().tick(*args, **kwargs)

    def _reread_schedule(self) -> None:
        """Start from what the database holds now: the previous leader's runs included."""
        # Take the current change stamp first, so the re-read is the baseline: otherwise the next
        # ``schedule`` access compares with the stamp seen when this process last looked (at
        # start-up, for a standby), reports a change and reloads while the heap is being built.
        self.schedule_changed()
        self._initial_read = True
        self._heap = None
        self._heap_invalidated = False

    def reserve(self, entry):
        # Unlike DatabaseScheduler, keep the advanced entry in the schedule: the heap may be
        # rebuilt from the schedule at any tick, and must not find this run still due there.
        # Nothing is marked for a later sync: the claim in apply_entry writes the run.
        next_entry = next(entry)
        self._schedule[entry.name] = next_entry
        return next_entry

    def apply_entry(self, entry, producer=None):
        token = self.elector.fencing_token
        if token is None or token != self._schedule_term:
            # Lost the lease (or a new term began) between tick and send: send nothing, and
            # re-read the schedule when leading again, since this run was advanced in memory only.
            self._schedule_term = None
            logger.info("beat: not leading, %s left to the leader", entry.name)
            return
        # reserve(), which tick() calls just before, put this run's successor in the schedule.
        if not self._claim(entry, run_at=self._schedule[entry.name].stored_last_run_at):
            self._schedule_term = None
            return
        options = entry.options
        headers = {
            **options.get("headers", {}),
            "portal_fencing_token": token,
            "portal_beat_identity": self.elector.config.identity,
        }
        # For this message only: the entry compares equal to the database's (options included)
        # when beat checks whether the schedule changed.
        entry.options = {**options, "headers": headers}
        try:
            super().apply_entry(entry, producer=producer)
        finally:
            entry.options = options

    def _claim(self, entry: StoredEntry, run_at) -> bool:
        """Record this run unless another beat recorded it (or a later one) first."""
        rows = self.Model._default_manager.filter(pk=entry.model.pk)
        if entry.stored_last_run_at is None:
            rows = rows.filter(last_run_at__isnull=True)
        else:
            rows = rows.filter(last_run_at=entry.stored_last_run_at)
        try:
            claimed = rows.update(last_run_at=run_at, total_run_count=F("total_run_count") + 1)
        except (DatabaseError, InterfaceError):
            logger.exception("beat: could not record the run of %s, so it was not sent", entry.name)
            return False
        if not claimed:
            logger.warning(
                "beat: %s was already sent by another beat; re-reading the schedule", entry.name
            )
        return bool(claimed)

    def close(self):
        if self._elector is not None:
            self._elector.stop(release=True)
        super().close()
