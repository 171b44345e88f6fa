"""Recording a ticket, the request's hot path (issue #8): one insert, one outbox message, no
lookups that the answer does not need."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from itsm.models import OutboxMessage, Ticket
from itsm.services import tickets as ticket_service
from tests.factories import RCA_VARIABLES

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_itsm_config")]


def new_ticket(key: str = "k" * 40) -> Ticket:
    return Ticket(platform="jira", idempotency_key=key, job_id="7", fields={"summary": "s"})


def test_a_twin_that_passed_the_replay_check_gets_the_first_record_and_no_second_message():
    first, created = ticket_service.record_ticket(new_ticket())
    with transaction.atomic():
        twin, twin_created = ticket_service.record_ticket(new_ticket())
        # The clash undid only the twin's insert: the caller's transaction goes on.
        assert Ticket.objects.count() == 1

    assert (created, twin_created) == (True, False)
    assert twin.pk == first.pk
    assert OutboxMessage.objects.filter(ticket=first).count() == 1


def test_another_integrity_error_is_not_mistaken_for_a_replay():
    broken = new_ticket()
    broken.platform = None

    with pytest.raises(IntegrityError):
        ticket_service.record_ticket(broken)

    assert not Ticket.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_a_new_ticket_answers_with_its_creator_without_fetching_it_again(
    itsm_endpoints, operator, django_assert_num_queries
):
    ticket, created = ticket_service.create_from_template(
        job_id="7", platform="jira", template_name="rca_issue", variables=RCA_VARIABLES,
        user=operator,
    )  # fmt: skip

    assert created
    with django_assert_num_queries(0):
        assert ticket.created_by.username == operator.username
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.created_by_id == operator.pk
    assert stored.sla_due_at == ticket.sla_due_at
    assert OutboxMessage.objects.get(ticket=stored).payload == {"ticket_id": stored.pk}
