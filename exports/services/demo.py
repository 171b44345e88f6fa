"""A demo planning session for trying the export (``manage.py demo_export_session``, README).

Twelve tickets for a "checkout v2" rollout with dependencies between them (so the export has
``Blocks`` links to create), rich HTML descriptions, one attachment, and three fields the bundled
fake Jira cannot honour (an unknown assignee, a sprint it does not have, a priority it does not
offer), so the results show manual fixes next to the Jira links.
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from exports.models import ExportSession
from exports.services.sessions import SessionInput, TicketInput, attach_file, create_session

ATTACHMENT_NAME = "rollout-plan.txt"
ATTACHMENT = (
    b"Checkout v2 rollout plan\n"
    b"1. Feature flag on for staff\n"
    b"2. 5 % of traffic, watch error rates for a day\n"
    b"3. 50 %, then 100 %\n"
    b"Rollback: switch the flag off; no schema change to undo.\n"
)

# (title, HTML, depends on, extra fields)
TICKETS: list[tuple[str, str, tuple[int, ...], dict[str, str]]] = [
    (
        "Write the checkout v2 design doc",
        "<h2>Design</h2><p>Describe the <strong>new payment flow</strong> and its failure modes. "
        "The rollout plan is attached.</p>",
        (),
        {"priority": "High", "assignee": "Ada Operator"},
    ),
    (
        "Add the payment provider client",
        "<p>Client for the provider's REST API with retries:</p><ul><li>timeouts</li>"
        "<li>idempotency keys</li></ul>",
        (1,),
        {},
    ),
    (
        "Create the orders schema migration",
        "<p>New columns:</p><table><tr><th>column</th><th>type</th></tr>"
        "<tr><td>payment_ref</td><td>text</td></tr></table>",
        (1,),
        {},
    ),
    (
        "Implement the checkout API",
        "<p>Endpoints <code>POST /checkout</code> and <code>GET /checkout/{id}</code>.</p>",
        (2, 3),
        {"priority": "Highest"},
    ),
    (
        "Build the checkout page",
        "<h3>UI</h3><ol><li>cart summary</li><li>payment form</li><li>confirmation</li></ol>",
        (4,),
        {"assignee": "someone.who.left@example.com"},
    ),
    (
        "Send order confirmation emails",
        '<p>Template in <em>Markdown</em>; see the <a href="https://example.com/brand">brand '
        "guide</a>.</p>",
        (4,),
        {},
    ),
    (
        "Add checkout metrics and alerts",
        '<pre><code class="language-promql">rate(checkout_errors_total[5m]) &gt; 0.05</code></pre>',
        (4,),
        {"sprint": "Sprint 99"},
    ),
    (
        "Load test the checkout API",
        "<blockquote><p>Target: 200 checkouts per second at p95 under 300 ms.</p></blockquote>",
        (4,),
        {},
    ),
    (
        "Security review",
        "<p>Threat model the payment form; check <s>card storage</s> tokenisation only.</p>",
        (4, 5),
        {"priority": "Urgent"},
    ),
    (
        "Write the runbook",
        "<p>On-call steps for payment outages.<br>Link it from the alert.</p>",
        (7,),
        {},
    ),
    (
        "Staff rollout behind the flag",
        "<p>Enable for staff accounts and collect feedback.</p>",
        (8, 9, 10),
        {},
    ),
    (
        "Public rollout",
        "<p>Follow the attached plan: 5 %, 50 %, 100 %.</p><hr><p>Done when the old flow is "
        "removed.</p>",
        (11,),
        {"labels": "release"},
    ),
]


def create_demo_session(project_key: str = "OPS", actor: Any = None, *,
                        mode: str = ExportSession.Mode.SEQUENTIAL) -> ExportSession:  # fmt: skip
    """The demo session, created through the same service as the API's (all checks apply)."""
    tickets = tuple(
        TicketInput(
            order=order,
            title=title,
            description_html=html,
            assignee=extra.get("assignee", ""),
            sprint=extra.get("sprint", ""),
            priority=extra.get("priority", ""),
            labels=("checkout-v2", *([extra["labels"]] if "labels" in extra else [])),
            depends_on=depends,
        )
        for order, (title, html, depends, extra) in enumerate(TICKETS, start=1)
    )
    session = create_session(
        SessionInput(project_key, tickets, name="Checkout v2 rollout (demo)", export_mode=mode),
        actor=actor,
    )
    first = session.tickets.get(order=1)
    attach_file(first, SimpleUploadedFile(ATTACHMENT_NAME, ATTACHMENT, "text/plain"), actor=actor)
    return session
