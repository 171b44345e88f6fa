"""The ticket service as other apps use it through ``itsm.public``."""

from __future__ import annotations

import pytest

from itsm import public
from itsm.errors import TemplateError
from itsm.services import tickets as ticket_service
from tests.factories import RCA_VARIABLES
from tests.itsm.deliveries import sweep_now

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_itsm_config")]


def test_open_ticket_records_once_per_key_and_the_worker_creates_it_once(itsm_endpoints, fakes):
    fields = {
        "project": "OPS",
        "summary": "CI failure: test_export",
        "issue_type": "Task",
        "priority": "2",
    }

    first, created = public.open_ticket(
        "jira", fields, idempotency_key="escalation:42", source="escalation"
    )
    again, created_again = public.open_ticket(
        "jira", fields, idempotency_key="escalation:42", source="escalation"
    )
    sweep_now()

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    first.refresh_from_db()
    assert first.status == public.Ticket.Status.CREATED
    assert first.sla_due_at is not None
    [issue] = fakes.state("jira")["issues"]
    assert issue["key"] == first.external_key


def test_open_ticket_with_invalid_fields_records_nothing(itsm_endpoints):
    with pytest.raises(public.ValidationFailed):
        public.open_ticket("jira", {"project": "OPS", "summary": "a\nb"}, idempotency_key="x")

    assert not public.Ticket.objects.exists()


def test_a_required_variable_of_only_spaces_counts_as_missing(itsm_endpoints):
    variables = {**RCA_VARIABLES, "job_name": "   "}

    with pytest.raises(TemplateError) as refused:
        ticket_service.create_from_template(
            job_id="7", platform="jira", template_name="rca_issue", variables=variables
        )
    preview = ticket_service.preview("jira", "rca_issue", variables)

    assert refused.value.missing == ["job_name"]
    assert preview.missing == ["job_name"]


def test_sent_fields_show_what_servicenow_receives(itsm_endpoints):
    ticket, _ = ticket_service.create_from_template(
        job_id="7", platform="servicenow", template_name="rca_incident", variables=RCA_VARIABLES
    )

    sent = public.sent_fields(ticket)

    assert "priority" not in sent
    assert (sent["impact"], sent["urgency"]) == ("1", "2")
