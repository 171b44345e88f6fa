"""The itsm pages without a browser: "New ticket from template", the ticket records and one ticket.

The form is exercised as a browser without JavaScript would post it; ``test_pages_browser.py``
covers the live preview.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from itsm.models import OutboxMessage, Ticket
from itsm.services.tickets import idempotency_key_for
from tests.factories import UserFactory

NEW_TICKET = reverse("itsm:template-new-ticket")
TICKET_LIST = reverse("itsm:ticket-list")


@pytest.fixture(autouse=True)
def configured_platforms(settings):
    """Both ticket platforms configured (nothing is called: delivery is the worker's job), and a
    Jira project key so that ``rca_issue`` needs no ``project`` variable."""
    settings.ITSM_ENDPOINTS = {
        **settings.ITSM_ENDPOINTS,
        "SERVICENOW_BASE_URL": "https://servicenow.invalid",
        "JIRA_BASE_URL": "https://jira.invalid",
        "JIRA_PROJECT_KEY": "OPS",
    }


@pytest.fixture
def operator_page(client, db):
    client.force_login(UserFactory(username="page-operator", roles=["operators"]))
    return client


def rca_incident(**changes) -> dict[str, str]:
    data = {
        "platform": "servicenow",
        "template_name": "rca_incident",
        "job_id": "build-42",
        "var_job_name": "build-42",
        "var_job_id": "build-42",
        "var_severity": "high",
        "var_details": "The nightly build failed twice.",
        "var_priority": "2",
        "action": "create",
    }
    data.update(changes)
    return data


def make_ticket(**fields) -> Ticket:
    values = {
        "platform": "servicenow",
        "job_id": "job-1",
        "template_name": "rca_incident",
        "template_source": "file",
        "fields": {"short_description": "RCA Required: job-1"},
        "priority": "2",
    }
    values.update(fields)
    values.setdefault(
        "idempotency_key",
        idempotency_key_for(values["platform"], values["template_name"], values["job_id"]),
    )
    return Ticket.objects.create(**values)


def error_beside(input_id: str, message: str) -> str:
    return f'<p class="field-error" id="{input_id}-error">{message}</p>'


def error_under_field(field: str, message: str) -> str:
    """A message under a ticket field in the preview: the one place it is shown."""
    return f'<p class="field-error" id="preview-{field}-error">{message}</p>'


def assert_marked_for(response, variable: str, field: str) -> None:
    """The input is marked invalid, described by the field's message, and points at it without
    repeating it."""
    html = response.content.decode()
    control = re.search(rf'<(?:input|textarea)[^>]* id="var-{variable}"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in control
    assert f"preview-{field}-error" in control
    note = re.search(rf'<p class="field-affects" id="var-{variable}-affects">([^<]*)</p>', html)
    assert note is not None and field in note.group(1), note
    assert re.search(rf'<p class="field-error" id="var-{variable}-error" hidden></p>', html)


def problems_counted(response) -> int:
    status = re.search(r'id="preview-status"[^>]*>(.*?)</p>', response.content.decode(), re.S)
    match = re.search(r"(\d+) problems? to fix", status.group(1))
    return int(match.group(1)) if match else 0


# --- who may open the pages ------------------------------------------------------------------

PAGES = [NEW_TICKET, TICKET_LIST, "/itsm/tickets/1/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitor_is_sent_to_the_login_page(client, url):
    response = client.get(url)

    assertRedirects(response, f"{reverse('login')}?next={url}", fetch_redirect_response=False)


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_user_without_the_operators_role_is_forbidden(client, url):
    client.force_login(UserFactory(roles=["qa"]))

    assert client.get(url).status_code == 403


@pytest.mark.django_db
def test_user_without_the_operators_role_cannot_post_a_ticket(client):
    client.force_login(UserFactory(roles=["qa"]))

    response = client.post(NEW_TICKET, rca_incident())

    assert response.status_code == 403
    assert not Ticket.objects.exists()


# --- the form --------------------------------------------------------------------------------


def test_operator_sees_the_platform_and_template_dropdowns_and_the_variables(operator_page):
    response = operator_page.get(NEW_TICKET)

    assert response.status_code == 200
    assertContains(response, '<option value="servicenow" selected>ServiceNow</option>', html=True)
    assertContains(response, '<option value="jira">Jira</option>', html=True)
    assertContains(
        response, '<option value="rca_incident" selected>rca_incident (file)</option>', html=True
    )
    for name in ("job_name", "job_id", "severity", "priority"):
        assertContains(response, f'name="var_{name}"')
        assertContains(response, f'<label for="var-{name}">{name}</label>', html=True)
    assertContains(response, '<textarea id="var-details" name="var_details"')
    assertContains(response, '<input type="text" id="job-id" name="job_id"')
    assertContains(response, '<button type="submit" name="action" value="dry_run"')
    assertContains(
        response,
        '<button type="submit" name="action" value="create">Create ticket</button>',
        html=True,
    )


def test_form_offers_the_priority_values_servicenow_accepts(operator_page):
    response = operator_page.get(NEW_TICKET)

    assertContains(response, 'list="var-priority-options"')
    assertContains(response, "Used in priority; one of 1, 2, 3, 4, 5")


def test_an_empty_form_shows_placeholders_in_the_preview_but_no_errors_yet(operator_page):
    response = operator_page.get(NEW_TICKET)

    assertContains(response, "RCA Required: {job_name}")
    assertContains(response, "Still needed: details, job_id, job_name, priority, severity.")
    assertNotContains(response, "is required by this template")
    assertContains(response, 'aria-live="polite"')


def test_page_embeds_the_template_catalog_for_its_script(operator_page):
    response = operator_page.get(NEW_TICKET)

    catalog = json.loads(
        response.content.decode()
        .split('id="itsm-template-catalog" type="application/json">')[1]
        .split("</script>")[0]
    )
    names = {(t["platform"], t["name"]) for t in catalog["templates"]}
    assert {("servicenow", "rca_incident"), ("jira", "rca_issue")} <= names
    incident = next(t for t in catalog["templates"] if t["name"] == "rca_incident")
    assert incident["uses"]["short_description"] == ["job_name"]
    assert catalog["urls"]["preview"] == "/api/v1/tickets/preview"


def test_choosing_jira_with_a_get_shows_its_template_and_the_configured_project(operator_page):
    response = operator_page.get(NEW_TICKET, {"platform": "jira", "template": "rca_issue"})

    assertContains(response, '<option value="jira" selected>Jira</option>', html=True)
    assertContains(
        response, '<option value="rca_issue" selected>rca_issue (file)</option>', html=True
    )
    assertContains(response, '<input type="hidden" name="platform" value="jira">', html=True)
    assertNotContains(response, 'name="var_project"')
    assertContains(response, "<code>project</code> = OPS")


def test_without_a_jira_project_key_the_project_is_a_variable(operator_page, settings):
    settings.ITSM_ENDPOINTS = {**settings.ITSM_ENDPOINTS, "JIRA_PROJECT_KEY": ""}

    response = operator_page.get(NEW_TICKET, {"platform": "jira"})

    assertContains(response, 'name="var_project"')


def test_unknown_platform_and_template_fall_back_to_the_first_ones(operator_page):
    response = operator_page.get(NEW_TICKET, {"platform": "slack", "template": "nope"})

    assert response.status_code == 200
    assertContains(
        response, '<input type="hidden" name="template_name" value="rca_incident">', html=True
    )


def test_a_link_may_prefill_the_draft(operator_page):
    response = operator_page.get(NEW_TICKET, {"job_id": "build-7", "var_job_name": "build-7"})

    assertContains(response, 'value="build-7"', count=2)
    assertContains(response, "RCA Required: build-7")


# --- dry run ---------------------------------------------------------------------------------


def test_dry_run_shows_the_rendered_fields_and_records_nothing(operator_page):
    response = operator_page.post(NEW_TICKET, rca_incident(action="dry_run"))

    assert response.status_code == 200
    assertContains(response, "RCA Required: build-42")
    assertContains(response, "Job ID: build-42\nSeverity: high\n\nThe nightly build failed twice.")
    assertContains(response, "Dry run passed")
    assert not Ticket.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_dry_run_says_when_a_ticket_for_the_job_already_exists(operator_page):
    first = make_ticket(job_id="build-42")

    response = operator_page.post(NEW_TICKET, rca_incident(action="dry_run"))

    assertContains(response, "A ticket for this job already exists")
    assertContains(response, reverse("itsm:ticket-detail", args=[first.pk]))
    assert Ticket.objects.count() == 1


def test_dry_run_with_a_missing_variable_shows_it_beside_the_input(operator_page):
    response = operator_page.post(NEW_TICKET, rca_incident(action="dry_run", var_severity=""))

    assert response.status_code == 422
    assertContains(
        response,
        error_beside("var-severity", "severity is required by this template"),
        html=True,
        status_code=422,
    )


# --- create ----------------------------------------------------------------------------------


def test_create_records_one_ticket_and_one_outbox_message_and_shows_it(operator_page):
    response = operator_page.post(NEW_TICKET, rca_incident(), follow=True)

    ticket = Ticket.objects.get()
    assertRedirects(response, reverse("itsm:ticket-detail", args=[ticket.pk]))
    assert ticket.status == Ticket.Status.PENDING
    assert ticket.fields["short_description"] == "RCA Required: build-42"
    assert ticket.created_by.username == "page-operator"
    assert OutboxMessage.objects.get().ticket_id == ticket.pk
    assertContains(response, f"Ticket #{ticket.pk} recorded")
    assertContains(
        response, '<span class="badge pending" id="ticket-status">Pending</span>', html=True
    )


def test_creating_again_for_the_same_job_returns_the_first_ticket(operator_page):
    first = operator_page.post(NEW_TICKET, rca_incident())
    ticket = Ticket.objects.get()

    again = operator_page.post(NEW_TICKET, rca_incident(var_details="Another text"), follow=True)

    assertRedirects(again, first.url)
    assertContains(again, "already exists")
    assert Ticket.objects.count() == 1
    assert OutboxMessage.objects.count() == 1
    ticket.refresh_from_db()
    assert "Another text" not in ticket.fields["description"]


def test_a_missing_variable_is_shown_beside_its_input_and_nothing_is_recorded(operator_page):
    response = operator_page.post(NEW_TICKET, rca_incident(var_details=""))

    assert response.status_code == 422
    assertContains(
        response,
        error_beside("var-details", "details is required by this template"),
        html=True,
        status_code=422,
    )
    assertContains(response, 'aria-invalid="true"', count=1, status_code=422)
    assert not Ticket.objects.exists()


def test_a_summary_over_jiras_limit_is_shown_once_under_the_summary_and_marks_the_job_name(
    operator_page,
):
    data = rca_incident(platform="jira", template_name="rca_issue", var_job_name="x" * 300)
    data["var_priority"] = "High"

    response = operator_page.post(NEW_TICKET, data)

    message = "summary is 314 characters; the limit is 255"
    assert response.status_code == 422
    assertContains(response, message, count=1, status_code=422)
    assertContains(response, error_under_field("summary", message), html=True, status_code=422)
    assert_marked_for(response, "job_name", "summary")
    assert not Ticket.objects.exists()


def test_a_line_break_in_the_job_name_breaks_the_one_line_short_description(operator_page):
    response = operator_page.post(NEW_TICKET, rca_incident(var_job_name="build\n42"))

    assert response.status_code == 422
    message = "short_description must be one line"
    assertContains(response, message, count=1, status_code=422)
    assertContains(
        response, error_under_field("short_description", message), html=True, status_code=422
    )
    assert_marked_for(response, "job_name", "short_description")
    assert not Ticket.objects.exists()


def test_a_priority_servicenow_does_not_accept_is_shown_under_the_priority_field(operator_page):
    response = operator_page.post(NEW_TICKET, rca_incident(var_priority="urgent"))

    message = "priority must be one of 1, 2, 3, 4, 5; got &#x27;urgent&#x27;"
    assertContains(response, error_under_field("priority", message), html=True, status_code=422)
    assert_marked_for(response, "priority", "priority")


def test_a_description_over_the_limit_is_shown_once_and_marks_its_three_inputs(operator_page):
    response = operator_page.post(NEW_TICKET, rca_incident(var_details="x" * 33_000))

    message = "description is 33033 characters; the limit is 4000"
    assertContains(response, message, count=1, status_code=422)
    assertContains(response, error_under_field("description", message), html=True, status_code=422)
    for name in ("job_id", "severity", "details"):
        assert_marked_for(response, name, "description")
    assertNotContains(response, 'id="var-job_name-affects">Feeds', status_code=422)
    assert problems_counted(response) == 1


def test_the_status_line_counts_every_message_shown_and_nothing_else(operator_page):
    response = operator_page.post(
        NEW_TICKET, rca_incident(job_id=" ", var_severity="", var_details="x" * 5_000)
    )

    html = response.content.decode()
    shown = len(re.findall(r'<(?:p|li) class="field-error"(?: id="[^"]+")?>[^<]+</', html))
    # The missing job id, the missing severity (the description cannot be checked without it).
    assert shown == 2
    assert problems_counted(response) == shown


def test_the_job_id_is_required_to_create(operator_page):
    response = operator_page.post(NEW_TICKET, rca_incident(job_id="  "))

    assertContains(
        response,
        error_beside("job-id", "Enter the job id this ticket is about."),
        html=True,
        status_code=422,
    )
    assert not Ticket.objects.exists()


def test_textarea_line_breaks_arrive_as_newlines(operator_page):
    operator_page.post(NEW_TICKET, rca_incident(var_details="first line\r\nsecond line"))

    assert Ticket.objects.get().fields["description"].endswith("first line\nsecond line")


def test_an_unconfigured_platform_is_refused_before_anything_is_recorded(operator_page, settings):
    settings.ITSM_ENDPOINTS = {**settings.ITSM_ENDPOINTS, "SERVICENOW_BASE_URL": ""}

    response = operator_page.post(NEW_TICKET, rca_incident())

    assertContains(response, "servicenow is not configured", status_code=503)
    assert not Ticket.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(db):
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(roles=["operators"]))

    response = client.post(NEW_TICKET, rca_incident())

    assert response.status_code == 403
    assert not Ticket.objects.exists()


def test_user_text_is_escaped_in_the_form_and_the_preview(operator_page):
    response = operator_page.post(
        NEW_TICKET, rca_incident(action="dry_run", var_details="<script>alert(1)</script>")
    )

    assertNotContains(response, "<script>alert(1)</script>")
    assertContains(response, "&lt;script&gt;alert(1)&lt;/script&gt;")


def test_bidi_controls_in_a_variable_are_shown_as_code_points_in_the_preview(operator_page):
    response = operator_page.post(
        NEW_TICKET,
        rca_incident(
            action="dry_run", var_details="see evil\u202eexe.txt", var_job_name="a\u2067b"
        ),
    )

    html = response.content.decode()
    assert "RCA Required: a&lt;U+2067&gt;b" in html
    assert "see evil&lt;U+202E&gt;exe.txt" in html
    # Only the inputs keep the text as typed, so that submitting again sends what was typed.
    preview = html.split('id="preview"')[1]
    assert "\u202e" not in preview
    assert "\u2067" not in preview


def test_the_message_after_creating_again_shows_bidi_controls_as_code_points(operator_page):
    operator_page.post(NEW_TICKET, rca_incident(job_id="job\u202e1"))

    response = operator_page.post(NEW_TICKET, rca_incident(job_id="job\u202e1"), follow=True)

    messages = re.search(r'<ul class="messages">(.*?)</ul>', response.content.decode(), re.S)
    assert "A ticket for job job&lt;U+202E&gt;1 from rca_incident already exists" in messages.group(
        1
    )
    assert "\u202e" not in messages.group(1)


# --- ticket records --------------------------------------------------------------------------


def test_ticket_list_shows_the_records_with_their_sla_state(operator_page):
    make_ticket(
        job_id="job-open",
        external_key="INC0010001",
        external_url="https://servicenow.invalid/incident/1",
    )
    make_ticket(job_id="job-late", sla_breached=True)
    make_ticket(job_id="job-done", resolved_at=timezone.now())

    response = operator_page.get(TICKET_LIST)

    assertContains(
        response,
        '<a href="https://servicenow.invalid/incident/1" rel="noopener noreferrer">INC0010001</a>',
        html=True,
    )
    for state in ("open", "breached", "met"):
        assertContains(response, f'<span class="badge {state}">{state}</span>', html=True)
    assertContains(response, f'href="{NEW_TICKET}"')


def test_ticket_list_links_only_web_addresses(operator_page):
    make_ticket(external_key="EVIL-1", external_url="javascript:alert(1)")

    response = operator_page.get(TICKET_LIST)

    assertContains(response, "EVIL-1")
    assertNotContains(response, "javascript:alert")


def test_ticket_list_filters_by_platform_and_status(operator_page):
    make_ticket(job_id="sn-pending")
    make_ticket(job_id="sn-failed", status=Ticket.Status.FAILED)
    make_ticket(job_id="jira-failed", platform="jira", template_name="rca_issue", status="failed")

    response = operator_page.get(TICKET_LIST, {"platform": "servicenow", "status": "failed"})

    assertContains(response, "sn-failed")
    assertNotContains(response, "sn-pending")
    assertNotContains(response, "jira-failed")
    assertContains(response, '<option value="failed" selected>Failed</option>', html=True)


def test_ticket_list_ignores_unknown_filter_values(operator_page):
    make_ticket(job_id="sn-pending")

    response = operator_page.get(TICKET_LIST, {"platform": "nope", "status": "bogus"})

    assertContains(response, "sn-pending")
    assertContains(response, "Select a valid choice. nope is not one of the available choices.")


def test_ticket_list_pages_by_fifty_and_keeps_the_filters(operator_page):
    for number in range(55):
        make_ticket(job_id=f"job-{number}")

    first = operator_page.get(TICKET_LIST, {"platform": "servicenow"})
    second = operator_page.get(TICKET_LIST, {"platform": "servicenow", "page": 2})

    assert len(first.context["tickets"]) == 50
    assertContains(first, 'href="?platform=servicenow&amp;page=2" rel="next"')
    assert len(second.context["tickets"]) == 5


def test_ticket_list_queries_do_not_grow_with_the_rows(
    operator_page, django_assert_max_num_queries
):
    for number in range(30):
        make_ticket(job_id=f"job-{number}", created_by=UserFactory())

    # session, user, the user's groups (role check), count, one page of tickets with their creators
    with django_assert_max_num_queries(5):
        response = operator_page.get(TICKET_LIST)

    assert response.status_code == 200


# --- one ticket ------------------------------------------------------------------------------


def test_ticket_detail_shows_fields_sla_error_and_retry_metadata(operator_page):
    due = timezone.now() + timedelta(hours=8)
    ticket = make_ticket(
        status=Ticket.Status.FAILED,
        attempts=2,
        sla_due_at=due,
        fields={"short_description": "RCA Required: job-1", "description": "line one\nline two"},
        retry_metadata=[
            {
                "attempt": 1,
                "at": "2025-10-12T10:00:00+00:00",
                "outcome": "retryable",
                "status_code": 503,
                "error": "Service Unavailable",
                "delay_seconds": 5.0,
            },
            {
                "attempt": 2,
                "at": "2025-10-12T10:00:05+00:00",
                "outcome": "rejected",
                "status_code": 400,
                "error": "Bad Request",
                "delay_seconds": 0.0,
            },
        ],
        error={"code": "upstream_rejected", "message": "Bad Request", "status_code": 400},
    )

    response = operator_page.get(reverse("itsm:ticket-detail", args=[ticket.pk]))

    assertContains(
        response, '<span class="badge failed" id="ticket-status">Failed</span>', html=True
    )
    assertContains(response, "line one\nline two")
    assertContains(response, "<td>Service Unavailable</td>", html=True)
    assertContains(response, "<td>5.0 s</td>", html=True)
    assertContains(response, "<td>503</td>", html=True)
    assertContains(response, "<td>rejected</td>", html=True)
    assertContains(response, "upstream_rejected")
    assertContains(response, '<span class="badge open" id="sla-state">open</span>', html=True)


def test_ticket_detail_of_an_unknown_ticket_is_not_found(operator_page):
    assert operator_page.get(reverse("itsm:ticket-detail", args=[999])).status_code == 404


def test_after_a_refused_submit_focus_starts_on_the_first_input_to_fix(operator_page):
    response = operator_page.post(NEW_TICKET, rca_incident(var_severity="", var_details=""))

    html = response.content.decode()
    assert html.count(" autofocus") == 1
    assert 'id="var-severity"' in html.split(" autofocus")[0].rsplit("<input", 1)[1]


def test_a_post_naming_an_unknown_template_is_refused_not_replaced(operator_page):
    response = operator_page.post(NEW_TICKET, rca_incident(template_name="rca_gone"))

    assertContains(response, "There is no template rca_gone for ServiceNow", status_code=422)
    assert not Ticket.objects.exists()


def test_a_post_naming_another_platforms_template_is_refused(operator_page):
    response = operator_page.post(NEW_TICKET, rca_incident(platform="jira"))

    assertContains(response, "There is no template rca_incident for Jira", status_code=422)
    assert not Ticket.objects.exists()


def test_the_itsm_section_is_current_in_the_navigation_on_every_itsm_page(operator_page):
    response = operator_page.get(TICKET_LIST)

    assertContains(response, f'<a href="{NEW_TICKET}" aria-current="page">ITSM templates</a>')


def test_ticket_detail_shows_a_variable_named_items(operator_page):
    """``{% for k, v in d.items %}`` would read the variable ``items``: the page iterates pairs."""
    ticket = make_ticket(variables={"items": "three laptops", "job_id": "job-1"})

    response = operator_page.get(reverse("itsm:ticket-detail", args=[ticket.pk]))

    assert response.status_code == 200
    assertContains(response, "three laptops")
