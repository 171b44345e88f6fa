"""Tables shared by the whole portal: leases for leader election, and beat heartbeats."""

from django.db import models


class Lease(models.Model):
    """A named lease, with the fields of Kubernetes' ``coordination.k8s.io/v1`` LeaseSpec.

    ``lease_transitions`` counts changes of holder and doubles as the fencing token: work done on
    behalf of a leader carries the count it was elected with, and is refused once it moved on.
    """

    name = models.CharField(max_length=128, unique=True)
    holder_identity = models.CharField(max_length=255, blank=True, default="")
    lease_duration_seconds = models.FloatField(default=15)
    acquire_time = models.DateTimeField(null=True, blank=True)
    renew_time = models.DateTimeField(null=True, blank=True)
    lease_transitions = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder_identity or 'nobody'}"


class Heartbeat(models.Model):
    """One run of the periodic ``portal.record_heartbeat`` task.

    It shows operators that beat dispatches and a worker executes, and lets tests count how many
    times a periodic job fired: one row per tick, whichever beat process was leading.
    """

    beat_identity = models.CharField(max_length=255, blank=True, default="")
    fencing_token = models.PositiveBigIntegerField(null=True, blank=True)
    worker = models.CharField(max_length=255)
    ran_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-ran_at"]

    def __str__(self) -> str:
        return f"heartbeat at {self.ran_at:%Y-%m-%d %H:%M:%S} by {self.worker}"
