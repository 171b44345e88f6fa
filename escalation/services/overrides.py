"""Overrides and the pipeline gate (seed 004's ``handle-override-request.sh``, ``approve_override``
and ``escalate_override_approval``).

The policy is the routing matrix's ``override_policy``, as snapshotted by the failure's escalation;
``security_secrets``, ``generator_drift`` and ``security_critical`` are zero tolerance here
whatever the data says, for every user (superusers too) and every path (API, pages, admin,
shell), because each of them calls this module.

- ``request_override``: refused for zero tolerance; otherwise a pending request, auto-approved when
  the policy asks for a confirmed infrastructure issue and the portal has confirmed one.
- ``confirm_infrastructure``: an on-call engineer (operators) or QA confirms the infrastructure
  issue of a pending infrastructure request (not their own), which auto-approves it.
- ``confirm_by_probe``: the recovery service's database probe found the database down: that
  confirms the infrastructure overrides of the escalation's ``database_connectivity`` failures,
  pending now or requested while the escalation stays open.
- ``auto_approvable``: the one rule of auto-approval, asked by every path above.
- ``approve`` / ``deny``: QA's role, never on one's own request. Approval writes the audit record
  (who, when, why, the policy), queues the follow-up ticket on the escalation's tracker, tells the
  scrum master and QA, and opens the gate.
- ``escalate_waiting_overrides``: a request waiting more than 15 minutes tells the scrum master,
  once (claimed by a conditional UPDATE, so two beat runs never both send it).
- ``gate``: whether a pipeline may proceed past the failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from escalation.errors import (
    EscalationError,
    OverrideConflict,
    OverrideDenied,
    OverrideNotAllowed,
)
from escalation.models import (
    LINEAR_PRIORITY,
    ZERO_TOLERANCE_TYPES,
    Escalation,
    EscalationEvent,
    FailureEvent,
    Notification,
    OverridePolicy,
    OverrideRequest,
    RoutingRule,
    Team,
    Tracker,
)
from escalation.services import audit, notifications
from itsm import public
from portal.roles import OPERATORS, QA, user_has_any_role, user_has_role

APPROVAL_WAIT = timedelta(minutes=15)  # the seed's 900 seconds
QA_TEAM = "qa_analyst"
FOLLOWUP_KIND = "escalation.override_ticket"
AUTO_APPROVAL_REASON = "infrastructure_confirmed"
# Who may confirm an infrastructure issue: on call (operators) and QA (admins hold every role).
CONFIRMER_ROLES = (OPERATORS, QA)
# The timeline entry of a confirmation; ``data["source"]`` says whose (a person or a probe).
CONFIRMED_EVENT = "infrastructure_confirmed"
PROBE_SOURCE = "database_probe"
# The failure types a failed database health probe confirms as an infrastructure issue.
PROBE_CONFIRMS = frozenset({"database_connectivity"})


def effective_policy(failure_type: str, policy: str) -> str:
    """The policy the service applies to a type whose matrix row says ``policy``: zero
    tolerance for the seed's three types, whatever the row says."""
    if failure_type in ZERO_TOLERANCE_TYPES:
        return OverridePolicy.ZERO_TOLERANCE
    return policy


def policy_of(failure: FailureEvent) -> str:
    """The policy that governs overrides of ``failure``: zero tolerance for the seed's three types
    whatever the matrix says; else the escalation's snapshot, else the matrix row."""
    if failure.failure_type in ZERO_TOLERANCE_TYPES:
        return OverridePolicy.ZERO_TOLERANCE
    escalation = failure.escalation
    if escalation is not None and escalation.routing.get("override_policy"):
        return escalation.routing["override_policy"]
    rule = RoutingRule.objects.filter(failure_type=failure.failure_type).first()
    return rule.override_policy if rule else OverridePolicy.QA_APPROVAL


def refusal_reason(failure: FailureEvent) -> str:
    return (
        f"Override denied: zero tolerance policy for {failure.failure_type}. "
        "The failure must be fixed; no one can override it."
    )


def who(user: Any) -> str:
    return getattr(user, "username", "") or "the portal"


def request_override(
    failure: FailureEvent,
    kind: str,
    justification: str,
    user: Any,
    *,
    infrastructure_confirmed: bool = False,
) -> OverrideRequest:
    """A pending request (or an auto-approved one). ``infrastructure_confirmed`` is the portal's
    own finding (a health probe, an operator's confirmation), never the requester's word: the
    API and the pages do not pass it."""
    policy = policy_of(failure)
    if policy == OverridePolicy.ZERO_TOLERANCE:
        audit.record(
            "override_refused",
            f"Override requested by {who(user)} refused: zero tolerance for {failure.failure_type}",
            escalation=failure.escalation,
            failure=failure,
            actor=user,
            data={"policy": policy, "justification": justification[:500]},
        )
        raise OverrideDenied(refusal_reason(failure))
    if kind not in OverrideRequest.Kind.values:
        raise EscalationError(f"kind is one of {', '.join(OverrideRequest.Kind.values)}.")
    if kind == OverrideRequest.Kind.INFRASTRUCTURE and (
        policy != OverridePolicy.INFRASTRUCTURE_CONFIRMED
    ):
        raise EscalationError(
            f"An infrastructure override is for infrastructure failures; "
            f"{failure.failure_type} needs a hotfix override ({policy})."
        )
    if len(justification.strip()) < 10:
        raise EscalationError("The justification needs 10 characters or more.")
    by_probe = (
        not infrastructure_confirmed
        and kind == OverrideRequest.Kind.INFRASTRUCTURE
        and policy == OverridePolicy.INFRASTRUCTURE_CONFIRMED
        and probe_confirmed(failure)
    )
    infrastructure_confirmed = infrastructure_confirmed or by_probe
    try:
        with transaction.atomic():
            request = OverrideRequest.objects.create(
                failure=failure,
                escalation=failure.escalation,
                kind=kind,
                justification=justification.strip(),
                requested_by=user if getattr(user, "is_authenticated", False) else None,
                policy=policy,
                infrastructure_confirmed=infrastructure_confirmed,
            )
    except IntegrityError as exc:
        raise OverrideConflict(
            f"An override request for failure #{failure.pk} is already waiting for QA."
        ) from exc
    audit.record(
        "override_requested",
        f"Override ({kind}) requested by {who(user)}: {justification.strip()}",
        escalation=failure.escalation,
        failure=failure,
        actor=user,
        data={"override": request.pk, "policy": policy, "kind": kind},
    )
    if auto_approvable(request):
        if by_probe:
            _approve(
                request, None, f"{AUTO_APPROVAL_REASON}: {PROBE_REASON}", confirmed_by=PROBE_NAME
            )
        else:
            _approve(request, None, AUTO_APPROVAL_REASON)
    return request


def auto_approvable(request: OverrideRequest) -> bool:
    """The one rule of auto-approval (the seed's ``auto_approve_override ... infrastructure_confirmed``):
    a pending infrastructure request whose infrastructure issue is confirmed, of a failure whose
    policy, now as when it was requested, asks for a confirmed infrastructure issue. A failure
    reclassified since (to a zero-tolerance type above all) is never auto-approved."""
    return (
        request.status == OverrideRequest.Status.PENDING
        and request.kind == OverrideRequest.Kind.INFRASTRUCTURE
        and request.infrastructure_confirmed
        and request.policy == OverridePolicy.INFRASTRUCTURE_CONFIRMED
        and policy_of(request.failure) == OverridePolicy.INFRASTRUCTURE_CONFIRMED
    )


# --- confirming an infrastructure issue ----------------------------------------------------------

PROBE_NAME = "the database health probe"
PROBE_REASON = "the database health probe found the database down"


def may_confirm_infrastructure(user: Any) -> bool:
    return user_has_any_role(user, CONFIRMER_ROLES)


def confirm_infrastructure(request: OverrideRequest, user: Any, note: str) -> OverrideRequest:
    """A person confirms the infrastructure issue behind a pending infrastructure request: on
    call (operators) or QA, never the requester. The confirmation is audited, then the request
    is auto-approved by the policy (the approval's audit record names the confirmation)."""
    if not may_confirm_infrastructure(user):
        raise OverrideNotAllowed(
            "Confirming an infrastructure issue needs the operators or the qa role."
        )
    if request.requested_by_id is not None and request.requested_by_id == user.pk:
        raise OverrideNotAllowed(
            "No one confirms the infrastructure issue of their own override request."
        )
    failure = request.failure
    policy = policy_of(failure)
    if policy == OverridePolicy.ZERO_TOLERANCE or request.policy == OverridePolicy.ZERO_TOLERANCE:
        raise OverrideDenied(refusal_reason(failure))
    if request.kind != OverrideRequest.Kind.INFRASTRUCTURE or (
        policy != OverridePolicy.INFRASTRUCTURE_CONFIRMED
        or request.policy != OverridePolicy.INFRASTRUCTURE_CONFIRMED
    ):
        raise EscalationError(
            f"Override #{request.pk} is not an infrastructure override of an infrastructure "
            f"failure ({failure.failure_type}: {policy}); QA approves or denies it."
        )
    note = note.strip()
    if len(note) < 3:
        raise EscalationError("Say what confirms the infrastructure issue (3 characters or more).")
    confirmer = who(user)
    with transaction.atomic():
        claimed = OverrideRequest.objects.filter(
            pk=request.pk, status=OverrideRequest.Status.PENDING, infrastructure_confirmed=False
        ).update(infrastructure_confirmed=True)
        request.refresh_from_db()
        if not claimed:
            state = request.status if request.status != "pending" else "confirmed already"
            raise OverrideConflict(f"Override #{request.pk} is {state}.")
        audit.record(
            CONFIRMED_EVENT,
            f"Infrastructure issue of override #{request.pk} confirmed by {confirmer}: {note}",
            escalation=request.escalation,
            failure=failure,
            actor=user,
            data={"override": request.pk, "source": "person", "note": note[:500]},
        )
        if auto_approvable(request):
            _approve(
                request,
                None,
                f"{AUTO_APPROVAL_REASON}: confirmed by {confirmer}: {note}",
                confirmed_by=confirmer,
                actor=user,
            )
    return request


def probe_confirmed(failure: FailureEvent) -> bool:
    """Whether the database health probe found the database down while the failure's escalation
    is open, and the failure is of a type that confirms (``database_connectivity``)."""
    escalation = failure.escalation
    if failure.failure_type not in PROBE_CONFIRMS or escalation is None:
        return False
    if escalation.status != Escalation.Status.OPEN:
        return False
    return EscalationEvent.objects.filter(
        escalation=escalation, kind=CONFIRMED_EVENT, data__source=PROBE_SOURCE
    ).exists()


def confirm_by_probe(escalation: Escalation, detail: str) -> list[OverrideRequest]:
    """The recovery service's database probe found the database down: recorded once on the
    escalation's timeline (later requests read it), and the pending infrastructure requests of
    its ``database_connectivity`` failures are confirmed and auto-approved. Returns those."""
    approved = []
    with transaction.atomic():
        already = EscalationEvent.objects.filter(
            escalation=escalation, kind=CONFIRMED_EVENT, data__source=PROBE_SOURCE
        ).exists()
        if not already:
            audit.record(
                CONFIRMED_EVENT,
                f"Infrastructure issue confirmed: {PROBE_REASON} ({detail})",
                escalation=escalation,
                data={"source": PROBE_SOURCE, "detail": detail[:400]},
            )
        pending = OverrideRequest.objects.select_related(
            "failure__escalation", "escalation"
        ).filter(
            failure__escalation=escalation,
            failure__failure_type__in=PROBE_CONFIRMS,
            status=OverrideRequest.Status.PENDING,
            kind=OverrideRequest.Kind.INFRASTRUCTURE,
        )
        for request in pending:
            if _confirm_silently(request) and auto_approvable(request):
                _approve(
                    request,
                    None,
                    f"{AUTO_APPROVAL_REASON}: {PROBE_REASON}",
                    confirmed_by=PROBE_NAME,
                )
                approved.append(request)
    return approved


def _confirm_silently(request: OverrideRequest) -> bool:
    """Marks a pending request's infrastructure issue confirmed (the caller audits why)."""
    OverrideRequest.objects.filter(pk=request.pk, status=OverrideRequest.Status.PENDING).update(
        infrastructure_confirmed=True
    )
    request.refresh_from_db()
    return request.status == OverrideRequest.Status.PENDING and request.infrastructure_confirmed


def _check_decider(request: OverrideRequest, user: Any) -> None:
    if not user_has_role(user, QA):
        raise OverrideNotAllowed("Deciding an override needs the qa role.")
    if request.requested_by_id is not None and request.requested_by_id == user.pk:
        raise OverrideNotAllowed("No one approves or denies their own override request.")
    if request.policy == OverridePolicy.ZERO_TOLERANCE or (
        request.failure.failure_type in ZERO_TOLERANCE_TYPES
    ):
        raise OverrideDenied(refusal_reason(request.failure))


def _claim(request: OverrideRequest, status: str, user: Any, reason: str) -> datetime:
    """Decides the request if it is still pending (one decision wins a race)."""
    now = timezone.now()
    decided = OverrideRequest.objects.filter(
        pk=request.pk, status=OverrideRequest.Status.PENDING
    ).update(
        status=status,
        decided_by=user if getattr(user, "is_authenticated", False) else None,
        decided_at=now,
        decision_reason=reason[:500],
    )
    if not decided:
        request.refresh_from_db()
        raise OverrideConflict(f"Override #{request.pk} is already {request.status}.")
    request.refresh_from_db()
    return now


def approve(request: OverrideRequest, user: Any, reason: str) -> OverrideRequest:
    """QA approves: audited, follow-up ticket, scrum master and QA told, the gate opens."""
    _check_decider(request, user)
    if len(reason.strip()) < 3:
        raise EscalationError("Say why it is approved (3 characters or more).")
    return _approve(request, user, reason.strip())


def _approve(
    request: OverrideRequest,
    user: Any,
    reason: str,
    *,
    confirmed_by: str = "",
    actor: Any = None,
) -> OverrideRequest:
    """Approves (QA's decision, or the auto-approval of a confirmed infrastructure issue with
    ``user`` None and ``confirmed_by`` naming who confirmed it). Zero tolerance is checked again
    here, the last step before the gate opens."""
    if policy_of(request.failure) == OverridePolicy.ZERO_TOLERANCE:
        raise OverrideDenied(refusal_reason(request.failure))
    with transaction.atomic():
        now = _claim(request, OverrideRequest.Status.APPROVED, user, reason)
        failure, escalation = request.failure, request.escalation
        if user is not None:
            approver = who(user)
        elif confirmed_by:
            approver = f"auto-approval (infrastructure confirmed by {confirmed_by})"
        else:
            approver = "auto-approval (infrastructure confirmed)"
        # The seed's /var/log/ci-overrides.jsonl line, kept in the timeline instead.
        audit.record(
            "override_approved",
            f"Override #{request.pk} approved by {approver}: {reason}",
            escalation=escalation,
            failure=failure,
            actor=user if user is not None else actor,
            data={
                "override": request.pk,
                "failure_id": failure.pk,
                "approver": approver,
                "confirmed_by": confirmed_by,
                "requested_by": who(request.requested_by),
                "justification": request.justification,
                "reason": reason,
                "policy": request.policy,
                "timestamp": now.isoformat(),
                "requires_followup": True,
            },
        )
        if escalation is not None:
            queue_followup_ticket(request, approver)
            headline = f"✅ Override approved for failure #{failure.pk} by {approver}"
            notifications.notify_scrum_master(
                escalation, headline, kind="override_approved",
                key=f"override:{request.pk}:approved:{notifications.SCRUM_MASTER}",
            )  # fmt: skip
            notify_team(escalation, failure, QA_TEAM, headline, kind="override_approved",
                        key=f"override:{request.pk}:approved:{QA_TEAM}")  # fmt: skip
    return request


def deny(request: OverrideRequest, user: Any, reason: str) -> OverrideRequest:
    _check_decider(request, user)
    if len(reason.strip()) < 3:
        raise EscalationError("Say why it is denied (3 characters or more).")
    with transaction.atomic():
        _claim(request, OverrideRequest.Status.DENIED, user, reason.strip())
        audit.record(
            "override_denied",
            f"Override #{request.pk} denied by {who(user)}: {reason.strip()}",
            escalation=request.escalation,
            failure=request.failure,
            actor=user,
            data={"override": request.pk, "reason": reason.strip(), "policy": request.policy},
        )
    return request


def notify_team(
    escalation: Escalation, failure: FailureEvent, name: str, headline: str, *, kind: str, key: str
) -> None:
    team = Team.objects.filter(name=name).first()
    snapshot = notifications.team_snapshot(team) if team else {"name": name}
    notifications.queue_slack(escalation, failure, snapshot, headline, kind=kind, key=key)


def queue_followup_ticket(request: OverrideRequest, approver: str) -> Notification | None:
    """The seed's ``create_linear_ticket "HIGH" "Override Follow-up"`` on the escalation's
    tracker: the fix is still owed after the pipeline went on."""
    escalation, failure = request.escalation, request.failure
    tracker, fields = notifications.ticket_fields(escalation, failure)
    if tracker == Tracker.NONE:
        return None
    description = (
        f"Fix required for overridden CI failure: {failure.pk} "
        f"({failure.repository}, {failure.job}, run {failure.run_id})\n"
        f"Justification: {request.justification}\nApproved by: {approver}\n\n"
        f"Portal: {notifications.failure_url(failure)}"
    )
    labels = ["ci-failure", "override-followup", failure.failure_type]
    if tracker == Tracker.LINEAR:
        fields.update(
            title="Override Follow-up", description=description,
            priority=LINEAR_PRIORITY["HIGH"], labels=labels,
        )  # fmt: skip
    else:
        fields.update(
            summary=f"Override Follow-up: {failure.repository} {failure.job}"[:255],
            description=description, priority="2", labels=labels,
        )  # fmt: skip
    return notifications.queue_tracker_ticket(
        escalation, tracker, fields, outbox_kind=FOLLOWUP_KIND, kind="override_followup",
        payload={"override_id": request.pk}, idempotency_key=f"override:{request.pk}:followup",
    )  # fmt: skip


@public.outbox_handler(FOLLOWUP_KIND)
def deliver_followup_ticket(message) -> dict[str, Any]:
    request = OverrideRequest.objects.get(pk=message.payload["override_id"])
    if request.followup_key:
        return {"key": request.followup_key, "already": True}
    created = notifications.create_queued_ticket(message)
    OverrideRequest.objects.filter(pk=request.pk).update(
        followup_key=created.key, followup_url=created.url
    )
    audit.record(
        "override_followup_created",
        f"Override follow-up ticket {created.key} created",
        escalation=request.escalation,
        failure=request.failure,
        data={"override": request.pk, "key": created.key, "url": created.url},
    )
    return {"key": created.key, "id": created.id, "url": created.url}


def escalate_waiting_overrides(now: datetime | None = None) -> int:
    """Requests pending for more than 15 minutes: the scrum master is told, once each; a
    confirmed infrastructure issue is approved automatically (escalate_override_approval)."""
    now = now or timezone.now()
    due = OverrideRequest.objects.filter(
        status=OverrideRequest.Status.PENDING,
        escalated_at__isnull=True,
        created_at__lte=now - APPROVAL_WAIT,
    ).values_list("pk", flat=True)[:200]
    escalated = 0
    for pk in list(due):
        with transaction.atomic():
            claimed = OverrideRequest.objects.filter(
                pk=pk, status=OverrideRequest.Status.PENDING, escalated_at__isnull=True
            ).update(escalated_at=now)
            if not claimed:
                continue  # another sweep took it
            request = OverrideRequest.objects.select_related("failure", "escalation").get(pk=pk)
            waited = int((now - request.created_at).total_seconds() // 60)
            if request.escalation is not None:
                notifications.notify_scrum_master(
                    request.escalation,
                    f"⚠️ Override approval delayed: request #{pk} for failure "
                    f"#{request.failure_id} has waited {waited} minutes",
                    kind="override_delayed",
                    key=f"override:{pk}:delayed",
                )
            audit.record(
                "override_delayed",
                f"Override #{pk} waited {waited} minutes; the scrum master was told",
                escalation=request.escalation,
                failure=request.failure,
                data={"override": pk, "waited_minutes": waited},
            )
            by_probe = not request.infrastructure_confirmed and probe_confirmed(request.failure)
            if by_probe:
                _confirm_silently(request)  # a probe that found the database down meanwhile
            if auto_approvable(request) and by_probe:
                _approve(
                    request,
                    None,
                    f"{AUTO_APPROVAL_REASON}: {PROBE_REASON}",
                    confirmed_by=PROBE_NAME,
                )
            elif auto_approvable(request):
                _approve(request, None, AUTO_APPROVAL_REASON)
            escalated += 1
    return escalated


@dataclass
class Gate:
    allowed: bool
    reason: str
    override: OverrideRequest | None = None


def gate(failure: FailureEvent) -> Gate:
    """Whether a pipeline may proceed past ``failure``."""
    if policy_of(failure) == OverridePolicy.ZERO_TOLERANCE:
        return Gate(False, refusal_reason(failure))
    approved = (
        failure.override_requests.filter(status=OverrideRequest.Status.APPROVED)
        .select_related("decided_by")
        .order_by("-decided_at")
        .first()
    )
    if approved is not None:
        by = who(approved.decided_by) if approved.decided_by else "auto-approval"
        return Gate(True, f"Override #{approved.pk} approved by {by}.", approved)
    if failure.status == FailureEvent.Status.FLAKY:
        return Gate(True, "The job passed on a re-run (flaky).")
    escalation = failure.escalation
    if escalation is not None and escalation.status == Escalation.Status.RESOLVED:
        return Gate(True, f"Escalation #{escalation.pk} is resolved.")
    pending = failure.override_requests.filter(status=OverrideRequest.Status.PENDING).first()
    if pending is not None:
        return Gate(False, f"Override #{pending.pk} is waiting for QA.", pending)
    return Gate(False, "The failure is open and no override is approved.")
