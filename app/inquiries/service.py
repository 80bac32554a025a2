from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload, selectinload

from app.deadlines.models import AlertKind, DeadlineAlert
from app.departments.models import Department
from app.departments.service import office_encloses
from app.inquiries.models import (
    ENDED_STATUSES,
    ROUTING_DECISIONS,
    TRANSITIONS,
    EventAction,
    Inquiry,
    InquiryAssignment,
    InquiryChange,
    InquiryEvent,
    InquiryKind,
    InquiryStatus,
)
from app.problems import Conflict, Forbidden, NotFound, PreconditionFailed
from app.roles import Action


class InquiryNotFound(NotFound):
    title = "Inquiry not found"
    slug = "inquiry-not-found"
    example_detail = "No inquiry WX20261124-000123 for this department."


class NotHolder(Forbidden):
    title = "Inquiry held by another department"
    slug = "not-the-holder"
    example_detail = (
        "WX20261124-000123 is held by another department: you may read it, not act on it."
    )


class TransitionNotAllowed(Conflict):
    title = "Status change not allowed"
    slug = "transition-not-allowed"
    example_detail = (
        "An inquiry in status new cannot become closed; allowed: assigned, invalid, referred."
    )


# What may be done to an inquiry in each status: the status table (TRANSITIONS) seen as actions.
# A refused action's 409 lists these. Reading and notes are always allowed.
_OPEN_ACTIONS = frozenset(
    {
        Action.sign_for,
        Action.hand_over,
        Action.reply,
        Action.merge,
        Action.correct_kind,
        Action.mark_routing_wrong,
        Action.refer,
        Action.transfer,
        Action.return_,
        Action.pause,
        Action.resume,
        Action.request_extension,
        Action.record_first_response,
        Action.mark_invalid,
    }
)
ALLOWED_ACTIONS: dict[InquiryStatus, frozenset[Action]] = {
    InquiryStatus.new: _OPEN_ACTIONS,
    InquiryStatus.assigned: _OPEN_ACTIONS,
    InquiryStatus.replied: frozenset(
        {Action.close, Action.note, Action.correct_kind, Action.mark_routing_wrong}
    ),
    InquiryStatus.closed: frozenset({Action.note}),
    InquiryStatus.referred: frozenset({Action.note}),
    InquiryStatus.invalid: frozenset({Action.note}),
    InquiryStatus.merged: frozenset({Action.merge, Action.note}),  # merge: its same-day undo
}


def allowed_now(status: InquiryStatus) -> list[str]:
    return sorted(action.value for action in ALLOWED_ACTIONS[status] | {Action.note})


def check_action(inquiry: Inquiry, action: Action) -> None:
    """Raise a 409 listing what is allowed now unless the status allows `action`."""
    if action not in ALLOWED_ACTIONS[inquiry.status] | {Action.note}:
        allowed = allowed_now(inquiry.status)
        raise TransitionNotAllowed(
            f"{inquiry.reference} is {inquiry.status}: {action} is not allowed now; allowed: "
            f"{', '.join(allowed)}.",
            current_status=inquiry.status.value,
            allowed_actions=allowed,
        )


async def version(session: AsyncSession, inquiry: Inquiry) -> int:
    """An inquiry's version: its latest change (0 before any). Lists, the feed and the view show
    it; actions compare it with If-Match."""
    found = await session.scalar(
        select(func.coalesce(func.max(InquiryChange.id), 0)).where(
            InquiryChange.inquiry_id == inquiry.id
        )
    )
    return int(found or 0)


def _versions(if_match: str) -> set[str] | None:
    """The versions an If-Match header names ("42", W/"42", 42), or None for `*`."""
    tags = [tag.strip() for tag in if_match.split(",")]
    if "*" in tags:
        return None
    return {tag.removeprefix("W/").strip('"') for tag in tags if tag}


async def check_version(session: AsyncSession, inquiry: Inquiry, if_match: str | None) -> None:
    """412 with the current version unless If-Match names it. The caller holds the row lock, so
    a change that committed before is counted, and none can commit until this one does."""
    if if_match is None:
        return
    expected = _versions(if_match)
    current = await version(session, inquiry)
    if expected is not None and str(current) not in expected:
        raise PreconditionFailed(
            f"{inquiry.reference} is at version {current}, not {', '.join(sorted(expected))}: "
            "read it again, then decide.",
            current_version=current,
        )


def record(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    actor: str,
    action: EventAction,
    reason: str = "",
    person_id: int | None = None,
    from_status: InquiryStatus | None = None,
    to_status: InquiryStatus | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an audit event; every change to an inquiry goes through here."""
    session.add(
        InquiryEvent(
            inquiry_id=inquiry.id,
            actor=actor,
            person_id=person_id,
            action=action,
            reason=reason,
            from_status=from_status,
            to_status=to_status,
            details=details or {},
        )
    )


async def acted_on_by_a_key(session: AsyncSession, inquiry: Inquiry) -> bool:
    """Has a person or client system (through an API key) done anything to the inquiry?"""
    return bool(
        await session.scalar(
            select(
                exists().where(
                    InquiryEvent.inquiry_id == inquiry.id,
                    or_(InquiryEvent.person_id.is_not(None), InquiryEvent.actor.like("client:%")),
                )
            )
        )
    )


def owned_by(department: Department) -> Select[Inquiry]:
    """Inquiries a department handles and may act on: those assigned to it."""
    return select(Inquiry).where(Inquiry.department_id == department.id)


def visible_to(department: Department) -> Select[Inquiry]:
    """Inquiries a department may read: its own; for a supervising office every one handled in
    its region (the same `office_encloses` predicate the supervision query uses); and any
    escalated to it after a breach (the parent department first). Reading is not acting."""
    reader, handler = aliased(Department), aliased(Department)
    escalated_to_reader = (
        select(DeadlineAlert.id)
        .where(
            DeadlineAlert.inquiry_id == Inquiry.id,
            DeadlineAlert.kind == AlertKind.escalation,
            DeadlineAlert.department_id == department.id,
        )
        .exists()
    )
    return (
        select(Inquiry)
        .join(handler, handler.id == Inquiry.department_id)
        .join(reader, reader.id == department.id)
        .where(or_(handler.id == reader.id, office_encloses(reader, handler), escalated_to_reader))
    )


async def _one(session: AsyncSession, statement: Select[Inquiry], reference: str) -> Inquiry:
    inquiry = await session.scalar(
        statement.where(Inquiry.reference == reference).options(
            joinedload(Inquiry.account),
            selectinload(Inquiry.messages),
            selectinload(Inquiry.assignments),
        )
    )
    if inquiry is None:
        # Not 403: an inquiry the department may not see must not be seen to exist.
        raise InquiryNotFound(f"No inquiry {reference} for this department.")
    return inquiry


async def get_readable(session: AsyncSession, department: Department, *, reference: str) -> Inquiry:
    """One inquiry `department` may read."""
    return await _one(session, visible_to(department), reference)


async def get_owned(
    session: AsyncSession,
    department: Department,
    *,
    reference: str,
    if_match: str | None = None,
) -> Inquiry:
    """One inquiry `department` may act on, locked for the change (FOR NO KEY UPDATE: the key
    never changes, so audit and alert rows referring to it are not held up). One it may only
    read (an office's region, an escalation) is refused with 403, any other with 404. With
    `if_match`, a version other than the current one is a 412."""
    try:
        inquiry = await _one(
            session,
            owned_by(department)
            .with_for_update(of=Inquiry, key_share=True)
            .execution_options(populate_existing=True),  # what committed before the lock
            reference,
        )
    except InquiryNotFound:
        await get_readable(session, department, reference=reference)  # 404 if not even that
        raise NotHolder(
            f"{reference} is held by another department: you may read it, not act on it."
        ) from None
    await check_version(session, inquiry, if_match)
    return inquiry


async def get_held(session: AsyncSession, department: Department, *, reference: str) -> Inquiry:
    """One inquiry `department` holds, read without a lock (404 if it may not even read it, 403
    if it may only read it): for the holder's own reads, and before locking several rows."""
    inquiry = await get_readable(session, department, reference=reference)
    if inquiry.department_id != department.id:
        raise NotHolder(
            f"{reference} is held by another department: you may read it, not act on it."
        )
    return inquiry


async def lock(session: AsyncSession, inquiry: Inquiry) -> Inquiry:
    """Lock an inquiry read without a lock, and read it again: what a concurrent change
    committed meanwhile is what the caller then decides on."""
    locked = await session.scalar(
        select(Inquiry)
        .where(Inquiry.id == inquiry.id)
        .with_for_update(of=Inquiry, key_share=True)
        .options(
            joinedload(Inquiry.account),
            selectinload(Inquiry.messages),
            selectinload(Inquiry.assignments),
        )
        .execution_options(populate_existing=True)
    )
    assert locked is not None  # inquiries are never deleted
    return locked


def check_transition(current: InquiryStatus, target: InquiryStatus) -> None:
    """Raise unless TRANSITIONS allows `current` → `target`."""
    allowed = TRANSITIONS[current]
    if target not in allowed:
        names = ", ".join(sorted(allowed)) or "none (it has ended)"
        raise TransitionNotAllowed(
            f"An inquiry in status {current} cannot become {target}; allowed: {names}.",
            current_status=current.value,
            allowed=sorted(status.value for status in allowed),
            allowed_actions=allowed_now(current),
        )


def transition(
    session: AsyncSession,
    inquiry: Inquiry,
    target: InquiryStatus,
    *,
    actor: str,
    reason: str,
    person_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Move an inquiry to `target` if the table allows it, and audit the change."""
    check_transition(inquiry.status, target)
    previous = inquiry.status
    inquiry.status = target
    if target in ENDED_STATUSES:
        inquiry.accepts_messages = False  # the citizen's next message opens a new inquiry
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.status_changed,
        reason=reason,
        person_id=person_id,
        from_status=previous,
        to_status=target,
        details=details,
    )


async def change_status(
    session: AsyncSession,
    inquiry: Inquiry,
    target: InquiryStatus,
    *,
    actor: str,
    reason: str,
    person_id: int | None,
    details: dict[str, Any],
) -> None:
    """A department's status change, checked against TRANSITIONS and audited."""
    check_not_awaiting_arbitration(inquiry)
    transition(
        session, inquiry, target, actor=actor, reason=reason, person_id=person_id, details=details
    )
    await session.flush()


class AwaitingArbitration(Conflict):
    title = "Inquiry awaits arbitration"
    slug = "awaiting-arbitration"
    example_detail = "The supervising office decides who handles it first, with /arbitrate."


class NotChangeable(Conflict):
    title = "Inquiry cannot be changed so"
    slug = "not-changeable"
    example_detail = "WX20261124-000123 has ended (invalid)."


def check_not_awaiting_arbitration(inquiry: Inquiry) -> None:
    """While an office arbitrates, it decides first: no other action on the inquiry."""
    if inquiry.awaiting_arbitration:
        raise AwaitingArbitration(
            "The supervising office decides who handles it first, with /arbitrate."
        )


class AlreadyMarkedWrong(Conflict):
    title = "Routing already marked wrong"
    slug = "routing-already-marked-wrong"
    example_detail = "The routing of WX20261124-000123 was marked wrong already."


async def mark_routing_wrong(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    holder_code: str,
    now: datetime,
    actor: str,
    reason: str,
    person_id: int | None,
    details: dict[str, Any],
) -> None:
    """Record that routing sent this inquiry to the wrong department (counts against the rule).

    Only the department routing chose may say so: after a transfer the rule is not to blame."""
    check_not_awaiting_arbitration(inquiry)
    if inquiry.status in ENDED_STATUSES:
        raise NotChangeable(
            f"{inquiry.reference} has ended ({inquiry.status}).",
            current_status=inquiry.status.value,
            allowed_actions=allowed_now(inquiry.status),
        )
    if inquiry.routing_marked_wrong_at is not None:
        raise AlreadyMarkedWrong(f"The routing of {inquiry.reference} was marked wrong already.")
    held = await session.scalar(
        select(InquiryAssignment).where(
            InquiryAssignment.inquiry_id == inquiry.id, InquiryAssignment.until.is_(None)
        )
    )
    routing_chose = held is not None and held.decision in ROUTING_DECISIONS
    if held is None or not routing_chose or held.department.code != holder_code:
        raise NotChangeable(
            f"{inquiry.reference} came to {holder_code} by a hand-over, not by routing; only the "
            "department routing chose can mark the routing wrong."
        )
    inquiry.routing_marked_wrong_at = now
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.routing_marked_wrong,
        reason=reason,
        person_id=person_id,
        details=details | {"routing_rule_id": inquiry.routing_rule_id},
    )
    await session.flush()


async def correct_kind(
    session: AsyncSession,
    inquiry: Inquiry,
    kind: InquiryKind,
    *,
    actor: str,
    reason: str,
    person_id: int | None,
    details: dict[str, Any],
) -> None:
    """A department's correction of the classified kind, audited with the old and new kind."""
    check_not_awaiting_arbitration(inquiry)
    if inquiry.status in ENDED_STATUSES:
        raise NotChangeable(
            f"{inquiry.reference} has ended ({inquiry.status}).",
            current_status=inquiry.status.value,
            allowed_actions=allowed_now(inquiry.status),
        )
    if kind is inquiry.kind:
        return
    previous, inquiry.kind = inquiry.kind, kind
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.kind_changed,
        reason=reason,
        person_id=person_id,
        details=details | {"from": previous.value, "to": kind.value},
    )
    await session.flush()


def events(inquiry: Inquiry) -> Select[InquiryEvent]:
    """An inquiry's audit trail, oldest first."""
    return (
        select(InquiryEvent).where(InquiryEvent.inquiry_id == inquiry.id).order_by(InquiryEvent.id)
    )
