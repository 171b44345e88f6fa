"""The export engine against the fake Jira: issues created once each in dependency order with
ADF descriptions, links and attachments; graceful fallbacks recorded as manual fixes; hard stops
with the seed's categories; a retry that resumes without duplicates."""

from __future__ import annotations

import pytest

from exports.models import ExportEvent, ExportSession, ExportTicket, ManualFix, TicketDependency
from exports.services import engine, lifecycle
from tests.exports import export_support
from tests.exports.export_support import (
    assert_exactly_once,
    attach,
    export,
    issues_by_ticket,
    make_session,
    run,
)

jira = export_support.jira
dispatched = export_support.dispatched

pytestmark = pytest.mark.django_db

ADA = "5b10ac8d82e05b22cc7d4ef5"
Status = ExportSession.Status


def by_order(session):
    return {t.order: t for t in session.tickets.all()}


def test_a_session_becomes_one_issue_per_ticket_with_adf_links_and_attachment(jira, dispatched):
    session = make_session(3, depends={1: [3], 2: [1, 3]})
    attach(by_order(session)[1])

    assert export(session) == "completed"

    session.refresh_from_db()
    assert session.status == Status.COMPLETED and session.current_stage == "completed"
    assert session.export_task_id is None and session.completed_at is not None
    tickets = by_order(session)
    assert all(t.jira_export_status == "exported" for t in tickets.values())
    assert_exactly_once(jira, session)
    state = jira.state("jira")
    issues = {issue["key"]: issue for issue in state["issues"]}
    # Dependency order: #3 first, then #1, then #2.
    assert [tickets[o].jira_ticket_key for o in (3, 1, 2)] == ["OPS-1", "OPS-2", "OPS-3"]
    description = issues[tickets[1].jira_ticket_key]["fields"]["description"]
    assert description["type"] == "doc" and description["content"][0]["type"] == "heading"
    assert tickets[1].jira_ticket_url.endswith(f"/browse/{tickets[1].jira_ticket_key}")
    links = {(link["inward"], link["outward"]) for link in state["links"]}
    key = {o: t.jira_ticket_key for o, t in tickets.items()}
    assert links == {(key[3], key[1]), (key[1], key[2]), (key[3], key[2])}
    assert session.dependencies_created == 3
    assert TicketDependency.objects.filter(jira_link_created=False).count() == 0
    assert [a["filename"] for a in issues[key[1]]["attachments"]] == ["design.txt"]
    assert tickets[1].attachment_uploaded
    kinds = list(session.events.values_list("kind", flat=True))
    assert kinds[0] == "export_started" and kinds[-1] == "export_completed"
    assert kinds.count("ticket_exported") == 3 and kinds.count("link_created") == 3


def test_invalid_assignee_sprint_and_priority_fall_back_with_manual_fixes(jira, dispatched):
    session = make_session(
        3,
        fields={
            1: {"assignee": "nobody@example.com", "sprint": "25446", "priority": "High"},
            2: {"assignee": "ada@example.com", "sprint": "Sprint that never was"},
            3: {"priority": "Urgent"},
        },
    )

    assert export(session) == "completed"

    tickets = by_order(session)
    fixes = {(f.ticket.order, f.issue_type) for f in ManualFix.objects.select_related("ticket")}
    assert fixes == {(1, "assignee_invalid"), (2, "sprint_not_found"), (3, "priority_unavailable")}
    issues = {issue["key"]: issue["fields"] for issue in jira.state("jira")["issues"]}
    first, second, third = (issues[tickets[o].jira_ticket_key] for o in (1, 2, 3))
    assert first["assignee"] is None and first["customfield_10020"] == 25446
    assert first["priority"] == "High"
    assert second["assignee"] == ADA and second["customfield_10020"] is None
    assert third["priority"] == "Medium"  # Jira's default
    fix = ManualFix.objects.get(issue_type="assignee_invalid")
    assert "nobody@example.com" in fix.recommended_action and "unassigned" in fix.recommended_action


def test_a_field_jira_refuses_falls_back_when_the_project_data_was_unreadable(jira, dispatched):
    jira.faults(platform="jira", status=403, path_contains="/user/assignable")
    session = make_session(1, fields={1: {"assignee": "someone-unknown"}})

    assert export(session) == "completed"

    ticket = session.tickets.get()
    assert ManualFix.objects.filter(ticket=ticket, issue_type="assignee_invalid").exists()
    (issue,) = jira.state("jira")["issues"]
    assert issue["fields"]["assignee"] is None and issue["key"] == ticket.jira_ticket_key


def test_revoked_credentials_stop_the_export_as_admin_required(jira, dispatched):
    jira.faults(platform="jira", status=401, path_contains="/rest/api/3/issue", method="POST")
    session = make_session(2)

    assert export(session) == "failed"

    session.refresh_from_db()
    assert session.status == Status.EXPORT_FAILED and session.api_status == "failed"
    assert session.error_category == "admin_required"
    assert "token" in session.error_message and session.recovery_actions
    assert session.failed_at_ticket_order == 1 and session.export_retry_count == 1
    assert session.export_failed_at is not None and session.first_error_at is not None
    assert ExportTicket.objects.get(session=session, order=1).jira_export_status == "failed"
    assert jira.state("jira")["issues"] == []


def test_a_missing_create_permission_fails_validation_as_admin_required(jira, dispatched):
    jira.faults(platform="jira", status=403, path_contains="/mypermissions")
    session = make_session(2)

    assert export(session) == "failed"

    session.refresh_from_db()
    assert session.error_category == "admin_required" and "permission" in session.error_message


def test_a_deleted_project_is_a_critical_stop(jira, dispatched):
    session = make_session(1)
    ExportSession.objects.filter(pk=session.pk).update(jira_project_key="GONE")

    assert export(session) == "failed"

    session.refresh_from_db()
    assert session.error_category == "user_fixable"
    assert "GONE does not exist" in session.error_message


def test_an_unavailable_issue_type_is_a_critical_stop(jira, dispatched):
    session = make_session(1, fields={1: {"issue_type": "Initiative"}})

    assert export(session) == "failed"

    session.refresh_from_db()
    assert session.error_category == "admin_required"
    assert "Initiative" in session.error_message and "not available" in session.error_message


def test_a_dependency_cycle_fails_validation_naming_it(jira, dispatched):
    session = make_session(3, depends={1: [2], 2: [3], 3: [1]})

    assert export(session) == "failed"

    session.refresh_from_db()
    assert session.error_category == "user_fixable"
    assert "cycle" in session.error_message and "#1" in session.error_message
    assert jira.state("jira")["issues"] == []


def test_jira_unreachable_stops_as_temporary_and_a_retry_resumes_without_duplicates(
    jira, dispatched, settings
):
    settings.EXPORT_TICKET_DELAY_SECONDS = 0.001
    session = make_session(3, depends={3: [2]})
    outage = []

    def jira_goes_down_after_the_first_ticket(seconds):
        if not outage:
            outage.append(jira.faults(platform="jira", status=503, method="POST"))

    assert export(session, sleep=jira_goes_down_after_the_first_ticket) == "failed"

    session.refresh_from_db()
    assert session.error_category == "temporary" and "could not be reached" in session.error_message
    assert session.failed_at_ticket_order == 2
    first_key = by_order(session)[1].jira_ticket_key
    assert first_key == "OPS-1"

    jira.clear_faults()
    result = lifecycle.retry_export(session.pk)
    assert (result.retry_attempt, result.remaining_retries) == (1, 2)
    assert result.resuming_from_ticket_order == 2 and result.preserved_successful_tickets == 1
    assert run(session) == "completed"

    assert by_order(session)[1].jira_ticket_key == first_key
    assert_exactly_once(jira, session)
    assert len(jira.state("jira")["links"]) == 1


class CrashAfterJiraAnswered(BaseException):
    """The worker dies between Jira's answer and our commit (nothing in the engine catches it)."""


def test_a_crash_between_jiras_answer_and_our_commit_never_duplicates(jira, dispatched):
    session = make_session(3)
    client = engine.client_for("jira")
    real_create = client.create_ticket

    def create_then_crash(project, summary, *args, **kwargs):
        created = real_create(project, summary, *args, **kwargs)
        if summary == "Ticket 2":
            raise CrashAfterJiraAnswered
        return created

    client.create_ticket = create_then_crash
    with pytest.raises(CrashAfterJiraAnswered):
        export(session, client=client)
    session.refresh_from_db()
    assert session.status == Status.EXPORTING and not by_order(session)[2].jira_ticket_key
    assert len(jira.state("jira")["issues"]) == 2  # Jira has #2, we do not know its key

    # The same task delivered again resumes: #2 is found by its marker, not created twice.
    assert run(session) == "completed"

    assert_exactly_once(jira, session)
    exported = ExportEvent.objects.get(kind="ticket_exported", ticket__order=2)
    assert exported.data["reconciled"] is True


def test_the_same_task_twice_after_completion_does_nothing(jira, dispatched):
    session = make_session(2)
    task_id = str(lifecycle.start_export(session.pk).session.export_task_id)
    assert run(session, task_id) == "completed"

    assert engine.run_export(session.pk, task_id) == "stale"

    assert_exactly_once(jira, session)


def test_a_retried_export_leaves_the_old_task_stale(jira, dispatched):
    session = make_session(1)
    old_task = str(lifecycle.start_export(session.pk).session.export_task_id)
    lifecycle.fail_export(session.pk, old_task, lifecycle.REAPED_FAILURE, 1)
    lifecycle.retry_export(session.pk)

    assert engine.run_export(session.pk, old_task) == "stale"
    assert jira.state("jira")["issues"] == []


def test_an_unreadable_attachment_is_a_manual_fix_not_a_stop(jira, dispatched):
    session = make_session(1)
    ticket = session.tickets.get()
    attach(ticket)
    ticket.attachment.storage.delete(ticket.attachment.name)

    assert export(session) == "completed"

    fix = ManualFix.objects.get(ticket=ticket)
    assert fix.issue_type == "attachment_failed" and "design" in fix.recommended_action


def test_an_attachment_jira_refuses_is_a_manual_fix(jira, dispatched):
    jira.set_config(jira_max_attachment_bytes=4)
    session = make_session(1)
    attach(session.tickets.get(), content=b"far more than four bytes")

    assert export(session) == "completed"

    assert ManualFix.objects.get().issue_type == "attachment_failed"


def test_issues_with_our_marker_that_no_ticket_owns_are_listed_as_orphans(jira, dispatched):
    session = make_session(2)
    stray = engine.client_for("jira").create_ticket(
        "OPS", "A duplicate from a lost run", None, "Task",
        {"labels": [engine.session_label(session.pk)]},
    )  # fmt: skip

    assert export(session) == "completed"

    (orphan,) = session.orphans.all()
    assert orphan.jira_key == stray.key and "No ticket" in orphan.reason
    assert issues_by_ticket(jira).total() == 2


def test_an_export_past_its_time_limit_stops_as_temporary_whatever_the_worker_pool(
    jira, dispatched, settings
):
    settings.EXPORT_TASK_SOFT_TIME_LIMIT = 0  # Celery's threads pool enforces no limit itself
    session = make_session(2)

    assert export(session) == "failed"

    session.refresh_from_db()
    assert session.error_category == "temporary" and "time limit" in session.error_message
    assert session.failed_at_ticket_order == 1 and jira.state("jira")["issues"] == []


# --- fewer commits, same guarantees (issue #11, performance) -------------------------------------
def test_a_crash_before_the_next_create_is_sent_keeps_the_key_and_the_marker(jira, dispatched):
    """Ticket 2's key and ticket 3's attempt marker share a transaction: both are committed
    before ticket 3's create goes out, so a crash there loses nothing and duplicates nothing."""
    session = make_session(4)
    client = engine.client_for("jira")
    real_create = client.create_ticket

    def crash_before_sending(project, summary, *args, **kwargs):
        if summary == "Ticket 3":
            raise CrashAfterJiraAnswered
        return real_create(project, summary, *args, **kwargs)

    client.create_ticket = crash_before_sending
    with pytest.raises(CrashAfterJiraAnswered):
        export(session, client=client)

    tickets = by_order(session)
    assert tickets[2].jira_ticket_key == "OPS-2"  # committed before #3 was attempted
    assert ExportEvent.objects.filter(kind="ticket_attempt", ticket=tickets[3]).exists()
    assert len(jira.state("jira")["issues"]) == 2

    assert run(session) == "completed"  # the same task again: #3 is looked up, then created

    assert_exactly_once(jira, session)
    assert ExportEvent.objects.filter(kind="ticket_attempt", ticket=tickets[3]).count() == 1


def test_an_export_taken_over_after_jiras_answer_still_stores_the_key(jira, dispatched):
    """The key Jira gave is committed even when the export stopped being this task's meanwhile
    (retried or reaped); the next ticket is then neither marked nor created."""
    session = make_session(3)
    client = engine.client_for("jira")
    real_create = client.create_ticket

    def create_then_lose_the_export(project, summary, *args, **kwargs):
        created = real_create(project, summary, *args, **kwargs)
        if summary == "Ticket 1":
            ExportSession.objects.filter(pk=session.pk).update(export_task_id=None)
        return created

    client.create_ticket = create_then_lose_the_export
    assert export(session, client=client) == "stale"

    tickets = by_order(session)
    assert tickets[1].jira_ticket_key == "OPS-1" and tickets[1].jira_export_status == "exported"
    assert not ExportEvent.objects.filter(kind="ticket_attempt", ticket=tickets[2]).exists()
    assert len(jira.state("jira")["issues"]) == 1


def test_a_sequential_export_commits_once_between_two_creates(
    jira, dispatched, django_capture_on_commit_callbacks
):
    session = make_session(12, depends={12: [1]})

    with django_capture_on_commit_callbacks() as hints:
        assert export(session) == "completed"

    # One hint per committed step: start, 13 steps (the previous key + heartbeat + the next
    # marker), one link batch, completion; before, each marker and each key had its own (27).
    hints = [hint for hint in hints if "dispatch" not in hint.__qualname__]
    assert len(hints) <= 12 + 4
    assert_exactly_once(jira, session)
    events = list(session.events.values_list("kind", "ticket__order"))
    for order in range(1, 13):  # each marker committed before its create, each key after
        attempt = events.index(("ticket_attempt", order))
        exported = events.index(("ticket_exported", order))
        assert attempt < exported
        if order < 12:
            assert events.index(("ticket_attempt", order + 1)) == exported + 1


def test_a_bulk_export_commits_its_markers_and_keys_once_per_chunk(
    jira, dispatched, django_capture_on_commit_callbacks
):
    session = make_session(120, mode=ExportSession.Mode.BULK, depends={120: [1], 119: [2]})

    with django_capture_on_commit_callbacks() as hints:
        assert export(session) == "completed"

    assert jira.state("jira")["requests"]["POST /rest/api/3/issue/bulk"] == 3
    hints = [hint for hint in hints if "dispatch" not in hint.__qualname__]
    assert len(hints) <= 2 * 3 + 4  # markers and keys per chunk; start, links, completion
    assert_exactly_once(jira, session)
    assert session.events.filter(kind="ticket_attempt").count() == 120
    assert session.events.filter(kind="ticket_exported").count() == 120
    session.refresh_from_db()
    assert session.dependencies_created == 2


def test_a_secret_in_a_ticket_description_never_reaches_jira(jira, dispatched):
    from portal.redaction import register_secrets

    secret = "Xk9-planning-Secret-77"
    register_secrets(secret)
    session = make_session(2)
    ExportTicket.objects.filter(session=session, order=1).update(
        description_html=f"<ul><li>the <strong>password is {secret}</strong></li></ul>"
        "<p>token 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</p>"
    )

    assert export(session) == "completed"

    sent = str(jira.state("jira")["issues"])
    assert secret not in sent and "ghp_wWPw5k4a" not in sent
    assert "password is [REDACTED]" in sent


def test_a_sprint_named_as_validate_project_offers_it_is_found_without_a_board_setting(
    jira, dispatched, settings
):
    """One rule for both: the project's first Scrum board when EXPORT_JIRA_BOARD_ID is unset."""
    settings.EXPORT_JIRA_BOARD_ID = ""
    session = make_session(1, fields={1: {"sprint": "OPS Sprint 42"}})

    assert export(session) == "completed"

    ticket = by_order(session)[1]
    issue = next(i for i in jira.state("jira")["issues"] if i["key"] == ticket.jira_ticket_key)
    assert issue["fields"]["customfield_10020"] is not None
    assert not ManualFix.objects.filter(ticket=ticket).exists()
