"""The exports pages: the sessions list (the page kit on the API's FilterSet), a session's page,
a ticket's review page (edit the HTML with CSRF, see the ADF result), the new-session form."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from exports.models import ExportSession, ExportTicket, TicketDependency
from tests.factories import ExportSessionFactory, ExportTicketFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("exports:session-list")
NEW = reverse("exports:session-new")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def operator_page(client):
    user = UserFactory(roles=["operators"])
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def qa_page(client):
    client.force_login(UserFactory(roles=["qa"]))
    return client


def review_url(ticket: ExportTicket) -> str:
    return reverse("exports:ticket-review", args=[ticket.session_id, ticket.pk])


# --- the list -------------------------------------------------------------------------------------


def test_the_list_shows_sessions_with_their_counts_and_links_to_each(operator_page):
    session = ExportSessionFactory(name="Checkout revamp")
    ExportTicketFactory.create_batch(2, session=session)

    html = operator_page.get(LIST).content.decode()

    assert "Checkout revamp" in html
    assert reverse("exports:session-detail", args=[session.pk]) in html
    assert 'href="/exports/new/"' in html  # operators may create


def test_the_list_filters_with_the_apis_filterset(operator_page):
    ExportSessionFactory(name="Checkout revamp")
    ExportSessionFactory(name="Billing", status=ExportSession.Status.EXPORT_FAILED)

    failed = operator_page.get(LIST, {"status": "failed"}).content.decode()
    searched = operator_page.get(LIST, {"q": "checkout"}).content.decode()

    assert "Billing" in failed and "Checkout revamp" not in failed
    assert "Checkout revamp" in searched and "Billing" not in searched


def test_an_invalid_filter_value_is_shown_beside_its_input_not_an_error_page(operator_page):
    response = operator_page.get(LIST, {"status": "nonsense", "page": "abc"})

    assert response.status_code == 200
    assert "field-error" in response.content.decode()


def test_the_list_page_queries_a_bounded_number_of_times(
    operator_page, django_assert_max_num_queries
):
    for _ in range(30):
        ExportTicketFactory.create_batch(2, session=ExportSessionFactory(created_by=UserFactory()))

    # session, user, the user's groups, the count, one page of sessions with counts and creators
    with django_assert_max_num_queries(5):
        response = operator_page.get(LIST, {"q": "session", "ordering": "-ticket_count"})

    assert response.status_code == 200


def test_qa_reads_the_list_without_the_new_session_button(qa_page):
    response = qa_page.get(LIST)

    assert response.status_code == 200
    assert 'href="/exports/new/"' not in response.content.decode()


def test_a_user_without_a_role_is_refused_and_anonymous_visitors_log_in(client):
    assert client.get(LIST).status_code == 302
    client.force_login(UserFactory())
    assert client.get(LIST).status_code == 403


def test_the_navigation_offers_exports(operator_page):
    html = operator_page.get(LIST).content.decode()

    assert f'<a href="{LIST}" aria-current="page">Exports</a>' in html


# --- a session's page -----------------------------------------------------------------------------


def test_the_session_page_lists_tickets_in_order_with_dependencies_and_keys(operator_page):
    session = ExportSessionFactory()
    first = ExportTicketFactory(session=session, order=1, title="Create catalog")
    second = ExportTicketFactory(
        session=session, order=2, title="Configure fields", jira_export_status="exported",
        jira_ticket_key="OPS-12", jira_ticket_url="http://jira.example/browse/OPS-12",
        labels=["catalog"],
    )  # fmt: skip
    TicketDependency.objects.create(blocker=first, blocked=second)

    html = operator_page.get(reverse("exports:session-detail", args=[session.pk])).content.decode()

    assert html.index("Create catalog") < html.index("Configure fields")
    assert "#1</td>" in html  # #2 depends on #1
    assert 'href="http://jira.example/browse/OPS-12"' in html
    assert review_url(first) in html


def test_user_text_is_escaped_and_bidi_controls_neutralised(operator_page):
    ticket = ExportTicketFactory(title="<script>alert(1)</script>\u202eexe.txt")

    html = operator_page.get(
        reverse("exports:session-detail", args=[ticket.session_id])
    ).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert "\u202e" not in html


def test_an_unknown_session_is_a_404_page(operator_page):
    response = operator_page.get("/exports/00000000-0000-0000-0000-000000000000/")

    assert response.status_code == 404


# --- the review page ------------------------------------------------------------------------------


def test_the_review_page_shows_the_html_the_adf_json_and_a_preview(operator_page):
    ticket = ExportTicketFactory(
        description_html='<h2>Plan</h2><p>Use <a href="https://example.com">the doc</a></p>'
    )

    response = operator_page.get(review_url(ticket))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in html
    assert "&lt;h2&gt;Plan&lt;/h2&gt;" in html  # the HTML in the editor, escaped
    assert "&quot;type&quot;: &quot;heading&quot;" in html  # the ADF JSON, pretty-printed
    assert '<div class="adf-preview" id="adf-preview"><h2>Plan</h2>' in html
    assert '<a href="https://example.com" rel="noopener noreferrer">the doc</a>' in html
    assert "bytes of ADF" in html


def test_the_preview_never_renders_the_users_html(operator_page):
    ticket = ExportTicketFactory(
        description_html='<p onclick="x()">hi</p><script>alert(1)</script><img src=x onerror=y()>'
    )

    html = operator_page.get(review_url(ticket)).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert (
        "onerror=y()"
        not in html.replace("&quot;", '"').split('id="adf-preview"')[1].split("</div>")[0]
    )
    assert 'onclick="x()"' not in html


def test_saving_the_html_converts_it_afresh(operator_page):
    ticket = ExportTicketFactory(description_html="<p>old</p>")

    response = operator_page.post(
        review_url(ticket), {"description_html": "<ul><li>new item</li></ul>"}, follow=True
    )

    ticket.refresh_from_db()
    assert ticket.description_html == "<ul><li>new item</li></ul>"
    html = response.content.decode()
    assert "saved" in html
    assert "<ul><li><p>new item</p></li></ul>" in html  # the preview of the new ADF


def test_the_edit_form_needs_its_csrf_token():
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(UserFactory(roles=["operators"]))
    ticket = ExportTicketFactory(description_html="<p>old</p>")

    response = csrf_client.post(review_url(ticket), {"description_html": "<p>new</p>"})

    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.description_html == "<p>old</p>"


def test_invalid_text_in_the_html_is_refused_with_a_message(operator_page):
    ticket = ExportTicketFactory(description_html="<p>old</p>")

    response = operator_page.post(review_url(ticket), {"description_html": "<p>a\x00b</p>"})

    assert response.status_code == 400
    assert "description_html: the value contains a NUL character" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.description_html == "<p>old</p>"


def test_an_exported_ticket_cannot_be_edited_on_the_page(operator_page):
    ticket = ExportTicketFactory(jira_export_status="exported", jira_ticket_key="OPS-4")

    response = operator_page.post(review_url(ticket), {"description_html": "<p>x</p>"})

    assert response.status_code == 400
    assert "already in Jira as OPS-4" in response.content.decode()


def test_qa_reviews_but_cannot_edit(qa_page):
    ticket = ExportTicketFactory(description_html="<p>old</p>")

    page = qa_page.get(review_url(ticket)).content.decode()
    refused = qa_page.post(review_url(ticket), {"description_html": "<p>new</p>"})

    assert 'id="ticket-html-form"' not in page
    assert refused.status_code == 403


def test_an_attachment_is_uploaded_from_the_review_page(operator_page):
    ticket = ExportTicketFactory()

    response = operator_page.post(
        reverse("exports:ticket-attachment", args=[ticket.session_id, ticket.pk]),
        {"file": SimpleUploadedFile("plan.txt", b"plan")},
        follow=True,
    )

    ticket.refresh_from_db()
    assert ticket.attachment.name.endswith("plan.txt")
    assert "plan.txt" in response.content.decode()


def test_an_oversized_attachment_on_the_page_answers_413_with_the_reason(operator_page, settings):
    settings.EXPORT_ATTACHMENT_MAX_BYTES = 3
    ticket = ExportTicketFactory()

    response = operator_page.post(
        reverse("exports:ticket-attachment", args=[ticket.session_id, ticket.pk]),
        {"file": SimpleUploadedFile("plan.txt", b"plan")},
    )

    assert response.status_code == 413
    assert "over the limit of 3 bytes" in response.content.decode()


# --- the new-session form -------------------------------------------------------------------------


def new_session(client, tickets, **fields):
    data = {
        "jira_project_key": "ops",
        "name": "",
        "export_mode": "sequential",
        "tickets": json.dumps(tickets),
        **fields,
    }
    return client.post(NEW, data)


def test_the_new_session_form_creates_the_session_and_opens_it(operator_page):
    tickets = [
        {"order": 1, "title": "First", "description_html": "<p>a</p>"},
        {"order": 2, "title": "Second", "description_html": "", "depends_on": [1]},
    ]

    response = new_session(operator_page, tickets, export_mode="bulk")

    session = ExportSession.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("exports:session-detail", args=[session.pk])
    assert session.jira_project_key == "OPS" and session.export_mode == "bulk"
    assert session.created_by == operator_page.user
    assert list(session.tickets.values_list("order", flat=True)) == [1, 2]


def test_the_form_offers_an_example_to_start_from(operator_page):
    html = operator_page.get(NEW).content.decode()

    assert "Create the product catalog" in html
    assert 'name="csrfmiddlewaretoken"' in html


@pytest.mark.parametrize(
    ("tickets", "message"),
    [
        ("[not json", "Not valid JSON"),
        ([{"order": 1, "title": "A", "description_html": "", "labels": ["a b"]}], "spaces"),
        ([{"order": 1, "title": "A", "description_html": "", "nope": 1}], "Unknown field"),
        (
            [
                {"order": 1, "title": "A", "description_html": "", "depends_on": [2]},
                {"order": 2, "title": "B", "description_html": "", "depends_on": [1]},
            ],
            "form a cycle",
        ),
    ],
)
def test_bad_tickets_are_shown_on_the_form(operator_page, tickets, message):
    raw = tickets if isinstance(tickets, str) else json.dumps(tickets)
    response = operator_page.post(
        NEW, {"jira_project_key": "OPS", "export_mode": "sequential", "tickets": raw}
    )

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ExportSession.objects.exists()


def test_qa_may_not_create_sessions(qa_page):
    assert qa_page.get(NEW).status_code == 403


def test_invalid_text_in_a_urlencoded_form_is_refused_at_the_edge(operator_page):
    body = "jira_project_key=OPS&export_mode=sequential&name=bad%00name&tickets=%5B%5D"

    response = operator_page.post(NEW, body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert "NUL" in response.content.decode()
    assert not ExportSession.objects.exists()


def test_the_session_page_counts_retries_not_failures(operator_page):
    """export_retry_count counts failures (the seed's SQL); retries are the retry events."""
    session = ExportSessionFactory(status="export_failed", export_retry_count=2)
    session.events.create(kind="export_retried", message="retry 1")

    html = operator_page.get(reverse("exports:session-detail", args=[session.pk])).content.decode()

    assert "1 of 3" in html


def test_the_session_page_leads_to_its_export_page(operator_page):
    session = ExportSessionFactory()

    html = operator_page.get(reverse("exports:session-detail", args=[session.pk])).content.decode()

    assert f'href="{reverse("exports:session-export", args=[session.pk])}"' in html
    assert "Export to Jira" in html
