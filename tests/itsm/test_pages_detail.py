"""One ticket's page: every moment through {% timestamp %}, user text with bidi controls shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from pytest_django.asserts import assertContains

from tests.factories import UserFactory
from tests.itsm.test_pages import make_ticket

NOW = datetime(2025, 10, 12, 10, 0, tzinfo=UTC)


@pytest.fixture
def operator_page(client, db):
    client.force_login(UserFactory(username="detail-operator", roles=["operators"]))
    return client


def detail(client, ticket):
    return client.get(reverse("itsm:ticket-detail", args=[ticket.pk]))


@time_machine.travel(NOW, tick=False)
def test_every_moment_of_a_ticket_is_one_timestamp_with_the_iso_value_on_hover(operator_page):
    ticket = make_ticket(
        created_at=NOW - timedelta(minutes=3),
        sent_at=NOW - timedelta(minutes=2),
        sla_response_due_at=NOW + timedelta(hours=1, minutes=30),
        sla_due_at=NOW + timedelta(hours=8),
        first_response_at=NOW - timedelta(minutes=1),
        retry_metadata=[{"attempt": 1, "at": "2025-10-12T09:58:00+00:00", "outcome": "created"}],
    )

    response = detail(operator_page, ticket)

    html = response.content.decode()
    for iso, relative in [
        ("2025-10-12T09:57:00+00:00", "3 min ago"),  # created
        ("2025-10-12T09:58:00+00:00", "2 min ago"),  # sent, and the attempt (a JSON string)
        ("2025-10-12T11:30:00+00:00", "in 1 h"),  # response due
        ("2025-10-12T18:00:00+00:00", "in 8 h"),  # resolution due
        ("2025-10-12T09:59:00+00:00", "1 min ago"),  # first response
    ]:
        assert f'<time class="timestamp" datetime="{iso}" title="{iso}">' in html, iso
        assert f"({relative})" in html
    assert html.count('<time class="timestamp"') == 6
    assertContains(response, '<dt>Resolved</dt><dd><span class="muted">—</span></dd>', html=True)


def test_a_ticket_not_sent_yet_says_so(operator_page):
    response = detail(operator_page, make_ticket())

    assertContains(response, '<dt>Sent</dt><dd><span class="muted">not yet</span></dd>', html=True)


def test_bidi_controls_in_a_tickets_text_are_shown_as_code_points(operator_page):
    ticket = make_ticket(
        job_id="evil\u202eexe.txt",
        external_key="OPS\u20661",
        variables={"file\u202ename": "report\u202efdp.exe"},
        fields={"short_description": "RCA Required: evil\u202eexe.txt"},
        error={"message": "rejected \u200fhere"},
        retry_metadata=[{"attempt": 1, "error": "bad \u061cvalue", "outcome": "rejected"}],
    )

    response = detail(operator_page, ticket)

    html = response.content.decode()
    for control in ("\u202e", "\u2066", "\u200f", "\u061c"):
        assert control not in html, f"U+{ord(control):04X} shown raw"
    assertContains(response, '<dd id="ticket-job-id">evil&lt;U+202E&gt;exe.txt</dd>', html=True)
    assertContains(response, "<code>file&lt;U+202E&gt;name</code>")
    assertContains(response, "report&lt;U+202E&gt;fdp.exe")
    assertContains(response, "RCA Required: evil&lt;U+202E&gt;exe.txt")
    assertContains(response, "rejected &lt;U+200F&gt;here")
    assertContains(response, "bad &lt;U+061C&gt;value")
    assertContains(response, "OPS&lt;U+2066&gt;1")


def test_the_fields_shown_are_those_servicenow_receives_impact_and_urgency(operator_page):
    ticket = make_ticket(
        platform="servicenow",
        fields={"short_description": "RCA Required: nightly", "priority": "2"},
    )

    html = detail(operator_page, ticket).content.decode()
    sent = html.split('id="fields-heading"')[1].split("</section>")[0]

    assert "<code>impact</code>" in sent and "<code>urgency</code>" in sent
    assert "<code>priority</code>" not in sent
