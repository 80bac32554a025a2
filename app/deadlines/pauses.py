"""Pauses: the only ways the reply clock stops (政府信息公开条例 art. 30/33, by analogy).

- Only on an open inquiry (new or assigned) that awaits no arbitration, before its due time.
- At most PAUSE_MAX_COUNT per inquiry (a setting, 2), crediting together no more than the rule's
  own length (deadlines/clock.py caps it).
- `awaiting_citizen` stops the clock at once, and the citizen's next message ends it;
  `consulting_agency` and `citizen_unreachable` need the supervising office's approval, as an
  extension does, and the clock stops from the approval.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines.calendar import CHINA
from app.deadlines.models import (
    NEEDS_APPROVAL,
    DeadlineExtension,
    DeadlinePause,
    ExtensionStatus,
    PauseReason,
    PauseStatus,
)
from app.deadlines.service import recount
from app.departments import service as departments
from app.departments.models import Department
from app.inquiries.models import Channel, EventAction, Inquiry, InquiryStatus
from app.inquiries.service import check_version, lock, record
from app.problems import Conflict, Forbidden

PAUSABLE = (InquiryStatus.new, InquiryStatus.assigned)


class PauseConflict(Conflict):
    title = "Pause not possible"
    slug = "pause-conflict"
    example_detail = "The clock is already stopped (awaiting_citizen since 2026-11-24)."


class NotYourOffice(Forbidden):
    title = "Not the deciding office"
    slug = "not-the-deciding-office"
    example_detail = "hefei-office decides this for the holder, hefei-hrss."


async def deciding_office(session: AsyncSession, inquiry: Inquiry) -> Department:
    """The nearest supervising office of the department holding the inquiry now: after a
    transfer, the new holder's."""
    holder = await session.get(Department, inquiry.department_id)
    assert holder is not None  # only routed inquiries have a clock
    offices = await departments.enclosing_offices(session, holder)
    if not offices:
        raise PauseConflict(f"No supervising office is registered above {holder.code}.")
    return offices[0]


def check_clock_can_stop(inquiry: Inquiry, now: datetime) -> None:
    """The state rules every pause meets, asked for and approved alike."""
    if inquiry.reply_due_at is None or inquiry.status not in PAUSABLE:
        raise PauseConflict(f"{inquiry.reference} ({inquiry.status}) has no running deadline.")
    if inquiry.awaiting_arbitration:
        raise PauseConflict(f"{inquiry.reference} awaits the supervising office's arbitration.")
    if now >= inquiry.reply_due_at:
        raise PauseConflict("The clock stops before the due time, not after it.")


async def _pauses(session: AsyncSession, inquiry: Inquiry) -> list[DeadlinePause]:
    return list(
        await session.scalars(
            select(DeadlinePause)
            .where(DeadlinePause.inquiry_id == inquiry.id)
            .order_by(DeadlinePause.id)
            .with_for_update()
        )
    )


async def start_pause(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    reason: PauseReason,
    note: str,
    now: datetime,
    max_count: int,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> DeadlinePause:
    """Stop the clock, or ask the office to; the caller holds the inquiry's row lock."""
    check_clock_can_stop(inquiry, now)
    pauses = [p for p in await _pauses(session, inquiry) if p.status is not PauseStatus.refused]
    for pause in pauses:
        if pause.status is PauseStatus.running and pause.started_at is not None:
            since = pause.started_at.astimezone(CHINA).date()
            raise PauseConflict(f"The clock is already stopped ({pause.reason} since {since}).")
        if pause.status is PauseStatus.requested:
            raise PauseConflict(f"A pause ({pause.reason}) awaits the office's decision.")
    if len(pauses) >= max_count:
        raise PauseConflict(f"At most {max_count} pauses per inquiry; this one had them.")
    credited = sum(p.working_days_added or 0 for p in pauses)
    if inquiry.deadline_length is not None and credited >= inquiry.deadline_length:
        raise PauseConflict(
            f"The pauses have credited the rule's whole length ({inquiry.deadline_length})."
        )
    pause = DeadlinePause(
        inquiry_id=inquiry.id, reason=reason, note=note, requested_at=now, requested_by=actor
    )
    if reason in NEEDS_APPROVAL:
        office = await deciding_office(session, inquiry)
        pause.status, pause.office_id = PauseStatus.requested, office.id
        action, details = EventAction.pause_requested, details | {"office": office.code}
    else:
        await _keep_conversation_open(session, inquiry)
        pause.status, pause.started_at, pause.started_by = PauseStatus.running, now, actor
        action = EventAction.paused
    session.add(pause)
    record(
        session,
        inquiry,
        actor=actor,
        action=action,
        reason=note or reason.value,
        person_id=person_id,
        details=details | {"pause_reason": reason.value},
    )
    await session.flush()
    return pause


async def _keep_conversation_open(session: AsyncSession, inquiry: Inquiry) -> None:
    """The citizen's answer must reach the inquiry that waits for it, whatever the window (the
    intake function keeps it open while the pause runs)."""
    if inquiry.accepts_messages or inquiry.channel is not Channel.private_message:
        return  # comments are never threaded: a pause on one is ended with …/resume
    other = await session.scalar(
        select(Inquiry.reference).where(
            Inquiry.account_id == inquiry.account_id,
            Inquiry.citizen_id == inquiry.citizen_id,
            Inquiry.accepts_messages,
        )
    )
    if other is not None:
        raise PauseConflict(
            f"The citizen's messages now go to {other}: ask there, or merge the two."
        )
    try:
        async with session.begin_nested():
            inquiry.accepts_messages = True
            await session.flush()
    except IntegrityError:  # intake opened a new conversation for the citizen meanwhile
        raise PauseConflict(
            "The citizen has just written again, to a new inquiry: ask there, or merge the two."
        ) from None


async def decide_pause(
    session: AsyncSession,
    inquiry: Inquiry,
    office: Department,
    *,
    approve: bool,
    note: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
    if_match: str | None = None,
) -> DeadlinePause:
    """The holder's nearest supervising office approves (the clock stops now) or refuses."""
    inquiry = await lock(session, inquiry)
    # Who decides comes first: a key that may not decide learns nothing about what is pending.
    deciding = await deciding_office(session, inquiry)
    if deciding.id != office.id:
        raise NotYourOffice(f"{deciding.code} decides this for the holder.")
    await check_version(session, inquiry, if_match)
    pause = next(
        (p for p in await _pauses(session, inquiry) if p.status is PauseStatus.requested), None
    )
    if pause is None:
        raise PauseConflict(f"No pause of {inquiry.reference} awaits a decision.")
    if approve:
        check_clock_can_stop(inquiry, now)
        pause.status, pause.started_at, pause.started_by = PauseStatus.running, now, actor
    else:
        pause.status = PauseStatus.refused
    pause.office_id, pause.decided_at, pause.decided_by = office.id, now, actor
    pause.decision_note = note
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.pause_decided,
        reason=note,
        person_id=person_id,
        details=details | {"approved": approve, "pause_reason": pause.reason.value},
    )
    await session.flush()
    return pause


async def end_pause(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    now: datetime,
    actor: str,
    note: str = "",
    only_reason: PauseReason | None = None,
    person_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> int | None:
    """Restart the clock and count the due times again; returns the days the pause credited,
    or None when no (matching) pause was running. The caller holds the inquiry's row lock."""
    if inquiry.status not in PAUSABLE:
        return None  # answered or ended: its clock is settled, and a resume moves nothing
    pause = next(
        (p for p in await _pauses(session, inquiry) if p.status is PauseStatus.running), None
    )
    if pause is None or (only_reason is not None and pause.reason is not only_reason):
        return None
    assert pause.started_at is not None
    if now < pause.started_at:
        return None  # a message sent before the pause began does not answer it
    pause.status = PauseStatus.ended
    pause.ended_at, pause.ended_by = now, actor
    await recount(
        session,
        inquiry,
        actor=actor,
        action=EventAction.resumed,
        reason=note or f"{pause.reason} ended",
        person_id=person_id,
        details=(details or {}) | {"pause_reason": pause.reason.value},
    )
    return pause.working_days_added


async def follow_holder(session: AsyncSession, inquiry: Inquiry) -> None:
    """After a change of holder, decisions still awaited (a pause, an extension) belong to the
    new holder's office."""
    pending_pause = [
        p for p in await _pauses(session, inquiry) if p.status is PauseStatus.requested
    ]
    pending_extension = await session.scalar(
        select(DeadlineExtension)
        .where(
            DeadlineExtension.inquiry_id == inquiry.id,
            DeadlineExtension.status == ExtensionStatus.requested,
        )
        .with_for_update()
    )
    if not pending_pause and pending_extension is None:
        return
    office = await deciding_office(session, inquiry)
    for pause in pending_pause:
        pause.office_id = office.id
    if pending_extension is not None:
        pending_extension.office_id = office.id
