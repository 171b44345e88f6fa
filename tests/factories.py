"""factory-boy factories for every model the tests build."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from portal.models import Heartbeat, Lease


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        """``UserFactory(roles=["qa"])`` adds the user to those role groups.

        The groups come from migration 0002; they are created here if missing because a
        ``transactional_db`` test flushes every table, seeded rows included, for the tests after it.
        """
        if create and extracted:
            self.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in extracted))


class LeaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lease

    name = factory.Sequence(lambda n: f"lease-{n}")
    holder_identity = factory.Sequence(lambda n: f"holder-{n}")
    lease_transitions = 1


class HeartbeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Heartbeat

    worker = "celery@test"


# The variables of the seed templates rca_incident / rca_issue (config/itsm_config.json).
RCA_VARIABLES = {
    "job_name": "nightly-build",
    "job_id": "7",
    "severity": "high",
    "details": "Step 3 failed.",
    "priority": "2",
}


# --- exports (seed 001) ---------------------------------------------------------------------------


class ExportSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "exports.ExportSession"

    name = factory.Sequence(lambda n: f"Planning session {n}")
    jira_project_key = "OPS"


class ExportTicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "exports.ExportTicket"

    session = factory.SubFactory(ExportSessionFactory)
    order = factory.Sequence(lambda n: n + 1)
    title = factory.Sequence(lambda n: f"Ticket {n}")
    description_html = "<p>Do the <strong>thing</strong>.</p>"
